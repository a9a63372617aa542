//! A tenant's limits, as a real tenant has them: an app-management policy that refuses identifier
//! URIs without a unique tenant identifier (with the v2-token exemption), and the directory's object
//! quota, which deleted applications keep using for 30 days (issue 24 items 2, 8 and 9). Through the
//! real API server, against the emulator's enforcement of both.

use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator::desired::naming::{AppKind, ResourceIdentity};
use fhir_app_operator_tests::fhir::{FhirServer, config_map, installed, modules, raw_token};
use fhir_app_operator_tests::operator::{
    Harness, claims, client_app, condition, full_permissions, resource_app, secret_data,
};
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(90);
/// The harness's slow retry of a Stalled resource, short enough for a test to see it recover.
const STALLED_RETRY: Duration = Duration::from_secs(8);

/// The tenant default policy of a tenant that took Microsoft's 2025 rollout of
/// `uriAdditionWithoutUniqueTenantIdentifier`, with apps receiving v2 tokens exempt (Learn
/// `identifier-uri-restrictions`; facts §3.3).
fn uri_policy() -> Value {
    json!({"isEnabled": true, "applicationRestrictions": {"identifierUris": {
        "uriAdditionWithoutUniqueTenantIdentifier": {"state": "enabled",
            "restrictForAppsCreatedAfterDateTime": null, "excludeAppsReceivingV2Tokens": true}}}})
}

fn unique_name(h: &Harness, kind: AppKind, name: &str) -> String {
    ResourceIdentity {
        cluster: "it",
        kind,
        namespace: &h.ns.name,
        name,
    }
    .unique_name()
}

/// The Graph calls since `from` (an index into the call log) that touched `unique_name`.
fn calls_for(h: &Harness, from: usize, unique_name: &str) -> Vec<String> {
    h.emu.calls()[from..]
        .iter()
        .filter(|c| c.path.contains(unique_name))
        .map(|c| format!("{} {} {}", c.operation, c.path, c.status))
        .collect()
}

/// A Stalled resource is retried only by the slow Stalled retry: within most of one interval, no
/// Graph call for its application.
async fn no_retry_loop(h: &Harness, unique_name: &str) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from = h.emu.calls().len();
    tokio::time::sleep(STALLED_RETRY - Duration::from_secs(3)).await;
    let calls = calls_for(h, from, unique_name);
    assert!(calls.is_empty(), "no retry loop: {calls:?}");
}

/// Service client `name` of FhirResourceApp `target`, holding globalReader there.
fn reader(name: &str, target: &str) -> Value {
    client_app(
        name,
        json!({"type": "Service", "target": {"resourceAppRef": {"name": target}},
               "roles": ["globalReader"], "assignAppRoles": true}),
    )
}

async fn ready_secret(h: &Harness, client: &str) -> std::collections::BTreeMap<String, String> {
    h.wait_condition::<FhirClientApp>(client, "Ready", "True", T)
        .await;
    secret_data(&h.client, &h.ns.name, &format!("{client}-fhir-client"))
        .await
        .expect("the client's Secret")
}

/// In a tenant whose policy refuses identifier URIs without a unique tenant identifier but exempts
/// apps receiving v2 tokens: a v1 FhirResourceApp with such a URI is Stalled naming the URI and the
/// allowed forms, with nothing created in Entra and no retry loop; a v2 one with the same kind of URI
/// is Ready, and a FHIR server configured from its ConfigMap alone accepts a client's v2 token and
/// refuses a v1 token for another audience.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fhir_url_stalls_while_a_v2_resource_app_is_exempt_and_served() {
    let tools = installed();
    let mut h = Harness::new("tl-uri", full_permissions()).await;
    let (code, body) = h
        .graph(
            Method::PATCH,
            "/policies/defaultAppManagementPolicy",
            Some(uri_policy()),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let mut cfg = h.config();
    cfg.stalled_retry = STALLED_RETRY;
    h.start_operator(cfg).await;
    let port = testenv::free_port();
    let fhir_url = format!("http://127.0.0.1:{port}/4_0_1");

    // v1 with `api://fhir-v1`: no verified domain, tenant ID or app ID in it.
    h.apply::<FhirResourceApp>(resource_app(
        "v1",
        json!({"fhirUrl": fhir_url, "identifierUri": "api://fhir-v1"}),
    ))
    .await
    .unwrap();
    let stalled = h
        .wait_condition::<FhirResourceApp>("v1", "Stalled", "True", T)
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "IdentifierUriNotAllowedByPolicy", "{c}");
    let message = c["message"].as_str().unwrap();
    for names in [
        "api://fhir-v1",
        "verified domain",
        "api://{appId}",
        "requestedAccessTokenVersion: 2",
    ] {
        assert!(message.contains(names), "names {names}: {message}");
    }
    let v1_name = unique_name(&h, AppKind::Resource, "v1");
    assert!(
        h.apps_with_unique_name_prefix(&v1_name).await.is_empty(),
        "nothing half-made in Entra"
    );
    assert!(stalled["status"]["clientId"].is_null(), "{stalled}");
    no_retry_loop(&h, &v1_name).await;

    // v2 with the same kind of URI: exempt.
    let v2_spec = |version: i32| {
        resource_app(
            "v2",
            json!({"fhirUrl": fhir_url, "identifierUri": "api://fhir-v2",
                   "requestedAccessTokenVersion": version}),
        )
    };
    h.apply::<FhirResourceApp>(v2_spec(2)).await.unwrap();
    let ready = h
        .wait_condition::<FhirResourceApp>("v2", "Ready", "True", T)
        .await;
    let app_id = ready["status"]["clientId"].as_str().unwrap().to_string();
    let cm = config_map(&h, "v2").await;
    assert_eq!(cm["AUDIENCE"], app_id, "v2 tokens' audience is the app ID");
    assert!(cm["ISSUER"].ends_with("/v2.0"), "{cm:?}");
    assert!(
        cm["FhirServer__Security__Authentication__Authority"].ends_with("/v2.0"),
        "{cm:?}"
    );

    // A v1 API the policy allows (`api://{appId}`), for the token of another audience.
    h.apply::<FhirResourceApp>(resource_app(
        "other",
        json!({"fhirUrl": "https://other.contoso.example", "identifierUri": "api://{appId}"}),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(reader("reader", "v2"))
        .await
        .unwrap();
    h.apply::<FhirClientApp>(reader("elsewhere", "other"))
        .await
        .unwrap();
    let data = ready_secret(&h, "reader").await;
    let v2_token = raw_token(&h, &data).await;
    let c2 = claims(&v2_token).unwrap();
    assert_eq!(
        (c2["ver"].as_str(), c2["aud"].as_str()),
        (Some("2.0"), Some(app_id.as_str())),
        "{c2}"
    );
    let other_token = raw_token(&h, &ready_secret(&h, "elsewhere").await).await;
    let c1 = claims(&other_token).unwrap();
    assert_eq!(c1["ver"], "1.0", "{c1}");
    assert_ne!(c1["aud"].as_str(), Some(app_id.as_str()), "{c1}");

    let seed =
        json!([{"resourceType": "Patient", "id": "pat-1", "name": [{"family": "Chalmers"}]}]);
    let modules = modules(&tools, "FHIR_SERVER_NODE_MODULES");
    let server = FhirServer::start(&h, &modules, &cm, port, seed).await;
    assert!(server.issuer.ends_with("/v2.0"), "{}", server.issuer);
    let (status, body, _) = server.get(&h, "Patient/pat-1", Some(&v2_token)).await;
    assert_eq!(status, 200, "the client's v2 token: {body}");
    let (status, body, challenge) = server.get(&h, "Patient/pat-1", Some(&other_token)).await;
    assert_eq!(status, 401, "a v1 token for another audience: {body}");
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // Back to v1 tokens with that URI: Entra checks every URI then and refuses; the application
    // stays on v2 and so does the ConfigMap, so the server keeps taking the client's tokens.
    h.apply::<FhirResourceApp>(v2_spec(1)).await.unwrap();
    let back = h
        .wait_condition::<FhirResourceApp>("v2", "Stalled", "True", T)
        .await;
    let c = condition(&back, "Stalled");
    assert_eq!(c["reason"], "IdentifierUriNotAllowedByPolicy", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("api://fhir-v2"),
        "{c}"
    );
    let oid = ready["status"]["applicationObjectId"].as_str().unwrap();
    let (code, app) = h
        .graph(Method::GET, &format!("/applications/{oid}"), None)
        .await;
    assert_eq!(code, 200, "{app}");
    assert_eq!(
        app["api"]["requestedAccessTokenVersion"], 2,
        "unchanged in Entra"
    );
    assert_eq!(
        config_map(&h, "v2").await,
        cm,
        "the ConfigMap is left as it was"
    );
    let fresh = raw_token(&h, &data).await;
    let (status, body, _) = server.get(&h, "Patient/pat-1", Some(&fresh)).await;
    assert_eq!(status, 200, "still served: {body}");
    h.apply::<FhirResourceApp>(v2_spec(2)).await.unwrap();
    h.wait_condition::<FhirResourceApp>("v2", "Ready", "True", T)
        .await;
    h.stop_operator().await;
}

/// The directory objects a tenant of `cfg` holds before anyone acts (the bootstrap applications and
/// service principals): measured on an emulator of its own, so the quota below leaves exactly the
/// room the test means.
async fn objects_at_start(cfg: &entra_emulator::Config) -> u64 {
    let emu = entra_emulator::start(cfg.clone()).await.unwrap();
    let http = fhir_app_operator::graph::http_client(Some(emu.ca_pem().as_bytes())).unwrap();
    let mut n = 0;
    for list in ["applications", "servicePrincipals"] {
        let v: Value = http
            .get(format!("{}/{list}?$top=999", emu.graph_url()))
            .bearer_auth(emu.admin_token(&emu.tenant_id()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        n += v["value"].as_array().map_or(0, Vec::len) as u64;
    }
    let t = &cfg.tenants[0];
    emu.shutdown().await;
    n + (t.users.len() + t.groups.len()) as u64
}

/// A directory whose object quota is used up, partly by a deleted client's application and service
/// principal (Entra counts them for their 30 days): a new client is Stalled DirectoryQuotaExceeded,
/// saying that and how to purge them, nothing half-made and no retry loop; once an administrator
/// purges them, the client is Ready by itself at the slow retry, its credential accepted. With room
/// for its application only, a client's application made before the refusal is the one it goes on
/// with once there is room: no orphan, no twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_directory_stalls_a_create_until_deleted_objects_are_purged() {
    let mut cfg = entra_emulator::Config::default();
    cfg.tenants[0].apps[0].permissions = full_permissions();
    // Room for the resource app and one client, each an application and its service principal.
    cfg.tenants[0].directory_quota = Some(objects_at_start(&cfg).await + 4);
    let mut h = Harness::with_emulator("tl-quota", |c, _| *c = cfg).await;
    let mut op = h.config();
    op.stalled_retry = STALLED_RETRY;
    h.start_operator(op).await;
    h.resource_app_ready().await;
    h.apply::<FhirClientApp>(reader("first", "fhir"))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("first", "Ready", "True", T)
        .await;
    let deleted = delete_registered(&h, "first").await;

    h.apply::<FhirClientApp>(reader("second", "fhir"))
        .await
        .unwrap();
    let stalled = h
        .wait_condition::<FhirClientApp>("second", "Stalled", "True", T)
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "DirectoryQuotaExceeded", "{c}");
    let message = c["message"].as_str().unwrap();
    for names in [
        "30 days",
        "deletionPolicy: Purge",
        &format!("{}/directory/deletedItems/<id>", h.emu.graph_url()),
    ] {
        assert!(message.contains(names), "names {names}: {message}");
    }
    let second = unique_name(&h, AppKind::Client, "second");
    assert!(
        h.apps_with_unique_name_prefix(&second).await.is_empty(),
        "nothing half-made in Entra"
    );
    no_retry_loop(&h, &second).await;

    for id in &deleted {
        h.purge_deleted(id).await;
    }
    let ready = h
        .wait_condition::<FhirClientApp>("second", "Ready", "True", STALLED_RETRY + T)
        .await;
    assert_eq!(condition(&ready, "Stalled")["status"], "False", "{ready}");
    let data = ready_secret(&h, "second").await;
    h.token_from_secret(&data).await.unwrap();

    // Room for one object: the application is created and its service principal refused. That
    // application is no orphan and gets no twin: the next try, once there is room, goes on with it.
    let [app, sp] = delete_registered(&h, "second").await;
    h.purge_deleted(&sp).await;
    h.apply::<FhirClientApp>(reader("third", "fhir"))
        .await
        .unwrap();
    let stalled = h
        .wait_condition::<FhirClientApp>("third", "Stalled", "True", T)
        .await;
    assert_eq!(
        condition(&stalled, "Stalled")["reason"],
        "DirectoryQuotaExceeded"
    );
    let third = unique_name(&h, AppKind::Client, "third");
    let made = h.apps_with_unique_name_prefix(&third).await;
    assert_eq!(
        made.len(),
        1,
        "its application, without a service principal"
    );
    h.purge_deleted(&app).await;
    let ready = h
        .wait_condition::<FhirClientApp>("third", "Ready", "True", STALLED_RETRY + T)
        .await;
    assert_eq!(
        ready["status"]["applicationObjectId"], made[0]["id"],
        "the same application"
    );
    assert_eq!(h.apps_with_unique_name_prefix(&third).await.len(), 1);
    h.token_from_secret(&ready_secret(&h, "third").await)
        .await
        .unwrap();
    h.stop_operator().await;
}

/// Deletes Ready FhirClientApp `name` (`deletionPolicy: Delete`: Entra keeps its application and
/// service principal, and counts them) and waits until it is gone; returns their object IDs.
async fn delete_registered(h: &Harness, name: &str) -> [String; 2] {
    let obj = h.api::<FhirClientApp>().get(name).await.unwrap();
    let status = obj.status.expect("a registered client");
    let ids = [
        status.application_object_id,
        status.service_principal_object_id,
    ]
    .map(|id| id.expect("its application and service principal"));
    h.delete::<FhirClientApp>(name).await.unwrap();
    h.eventually(&format!("{name} gone"), T, || async {
        let left = h.api::<FhirClientApp>().get_opt(name).await;
        Ok::<_, String>(left.map_err(|e| e.to_string())?.is_none().then_some(()))
    })
    .await;
    ids
}
