//! Defects users met, each reproduced as they met it (real API server, the emulator, the operator):
//! someone else's Secret or ConfigMap taken over, a recreated application's dead credential, names
//! too long for a label, credentials piling up while Secret writes fail, a taken identifier URI, a
//! renamed scope left granted, roles the managed service does not have, misleading metrics, a
//! Stalled client hiding its application, and the smaller things (field manager, messages).

use std::collections::BTreeMap;
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{
    Harness, client_app, condition, full_permissions, resource_app, secret_data,
    service_spec as service,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

/// Applications registered for resources of this test's namespace.
async fn our_apps(h: &Harness, kind: &str) -> Vec<Value> {
    let part: String = h.ns.name.chars().take(15).collect();
    h.apps_with_unique_name_prefix(&format!("fao-{kind}-{}", part.trim_matches('-')))
        .await
}

async fn app_by_app_id(h: &Harness, app_id: &str) -> Value {
    let (code, app) = h
        .graph(
            Method::GET,
            &format!("/applications(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{app}");
    app
}

/// The scope of the client service principal's delegated grant.
async fn grant_scope(h: &Harness, sp: &str) -> String {
    let (_, v) = h
        .graph(
            Method::GET,
            &format!("/oauth2PermissionGrants?$filter=clientId eq '{sp}'"),
            None,
        )
        .await;
    v["value"][0]["scope"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn passwords(app: &Value) -> usize {
    app["passwordCredentials"].as_array().map_or(0, Vec::len)
}

async fn get_json<K>(h: &Harness, name: &str) -> Value
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    serde_json::to_value(h.api::<K>().get(name).await.unwrap()).unwrap()
}

fn user_secret(name: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"password": "hunter2"}
    }))
    .unwrap()
}

#[tokio::test]
async fn someone_elses_secret_is_left_untouched_and_never_deleted() {
    let mut h = Harness::with_resource_app("def-victim").await;
    let secrets: Api<Secret> = h.api();
    secrets
        .create(&PostParams::default(), &user_secret("victim"))
        .await
        .unwrap();
    h.apply::<FhirClientApp>(client_app("c", service(json!({"secretName": "victim"}))))
        .await
        .unwrap();
    let c = h
        .wait_condition::<FhirClientApp>("c", "Stalled", "True", T)
        .await;
    let stalled = condition(&c, "Stalled");
    assert_eq!(stalled["reason"], "SecretNotOwned", "{stalled}");
    let message = stalled["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Secret {}/victim already exists", h.ns.name))
            && message.contains("spec.secretName"),
        "{message}"
    );
    let victim = secrets.get("victim").await.unwrap();
    assert_eq!(
        victim.data.as_ref().unwrap().keys().collect::<Vec<_>>(),
        vec!["password"],
        "nothing written into it"
    );
    assert!(victim.metadata.owner_references.is_none() && victim.metadata.labels.is_none());
    assert!(
        our_apps(&h, "c").await.is_empty(),
        "no application is registered for a client whose Secret cannot be written"
    );

    // A second client naming the first one's Secret: the first keeps it, the second is told why.
    h.apply::<FhirClientApp>(client_app(
        "first",
        service(json!({"secretName": "shared"})),
    ))
    .await
    .unwrap();
    let first = h
        .wait_condition::<FhirClientApp>("first", "Ready", "True", T)
        .await;
    h.apply::<FhirClientApp>(client_app(
        "second",
        service(json!({"secretName": "shared"})),
    ))
    .await
    .unwrap();
    let second = h
        .wait_condition::<FhirClientApp>("second", "Stalled", "True", T)
        .await;
    let m = condition(&second, "Stalled")["message"].to_string();
    assert!(
        m.contains(&format!("belongs to FhirClientApp {}/first", h.ns.name)),
        "{m}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // a resync of both
    let shared = secret_data(&h.client, &h.ns.name, "shared").await.unwrap();
    assert_eq!(
        shared["AZURE_CLIENT_ID"],
        first["status"]["clientId"].as_str().unwrap()
    );

    // Deleting the client leaves the user's Secret (no ownerReference for the garbage collector).
    h.delete::<FhirClientApp>("c").await.unwrap();
    h.eventually("c deleted", T, || {
        let h = &h;
        async move {
            let gone = h
                .api::<FhirClientApp>()
                .get_opt("c")
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(gone.is_none().then_some(()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = secrets
        .get("victim")
        .await
        .expect("the user's Secret survives");
    assert!(victim.data.unwrap().contains_key("password"));
    h.stop_operator().await;
}

#[tokio::test]
async fn someone_elses_config_map_is_left_untouched() {
    let mut h = Harness::new("def-cm", full_permissions()).await;
    h.start_operator(h.config()).await;
    let cms: Api<ConfigMap> = h.api();
    let theirs: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "fhir-settings"}, "data": {"LOG_LEVEL": "debug"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &theirs).await.unwrap();
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example", "output": {"configMapName": "fhir-settings"}}),
    ))
    .await
    .unwrap();
    let ra = h
        .wait_condition::<FhirResourceApp>("fhir", "Stalled", "True", T)
        .await;
    assert_eq!(condition(&ra, "Stalled")["reason"], "ConfigMapNotOwned");
    let cm = cms.get("fhir-settings").await.unwrap();
    assert_eq!(
        cm.data.unwrap(),
        BTreeMap::from([("LOG_LEVEL".to_string(), "debug".to_string())])
    );
    assert!(cm.metadata.owner_references.is_none());
    assert!(our_apps(&h, "r").await.is_empty(), "nothing registered");
    h.stop_operator().await;
}

#[tokio::test]
async fn a_recreated_application_gets_its_credential_in_the_same_reconcile() {
    let mut h = Harness::with_resource_app_delta_only("def-recreate").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    // An admin deletes the application out of band, well within the 120 s replication grace.
    let new = h.delete_application_out_of_band("etl").await;
    // Ready means the Secret works now, not after another resync.
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert_eq!(
        data["AZURE_CLIENT_ID"],
        new["status"]["clientId"].as_str().unwrap()
    );
    let claims = h
        .token_from_secret(&data)
        .await
        .expect("the Secret's credential belongs to the recreated application");
    assert_eq!(claims["appid"], new["status"]["clientId"]);
    let app = app_by_app_id(&h, new["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(passwords(&app), 1);
    h.stop_operator().await;
}

#[tokio::test]
async fn a_name_too_long_for_a_label_still_gets_a_valid_secret_and_one_credential() {
    let mut h = Harness::with_resource_app("def-long").await;
    let name = format!("c70-{}", "d".repeat(66));
    assert_eq!(name.len(), 70);
    h.apply::<FhirClientApp>(client_app(&name, service(json!({}))))
        .await
        .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>(&name, "Ready", "True", T)
        .await;
    let secret = h
        .api::<Secret>()
        .get(&format!("{name}-fhir-client"))
        .await
        .unwrap();
    let label = &secret.metadata.labels.unwrap()["fhirapps.io/owner-name"];
    assert!(
        label.len() <= 63 && name.starts_with(&label[..54]),
        "{label}"
    );
    let app = app_by_app_id(&h, obj["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(passwords(&app), 1, "{}", app["passwordCredentials"]);
    h.stop_operator().await;
}

#[tokio::test]
async fn refused_secret_writes_stall_the_client_and_never_pile_up_credentials() {
    let mut h = Harness::with_resource_app("def-refused").await;
    let policy = h.refuse_secret_writes().await;
    let mut cfg = h.config();
    cfg.stalled_retry = Duration::from_secs(2);
    h.start_operator(cfg).await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "OutputRejected", "{stalled}");
    let message = stalled["message"].as_str().unwrap();
    assert!(
        message.len() < 300 && message.contains("test: Secret writes are refused"),
        "a short sentence with the API server's reason: {message}"
    );
    // Retries every 2 s for 12 s: never more than the one credential being tried at a time.
    let app_id = obj["status"]["clientId"]
        .as_str()
        .expect("status names the app")
        .to_string();
    let mut most = 0;
    for _ in 0..12 {
        most = most.max(passwords(&app_by_app_id(&h, &app_id).await));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        most <= 1,
        "{most} passwords piled up while the Secret could not be written"
    );
    assert!(
        h.metrics
            .counter_sum("fhir_operator_reconciles_total", "result=\"stalled\"")
            >= 2.0
    );
    h.allow_secret_writes(&policy).await;
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    h.token_from_secret(&data).await.expect("the Secret works");
    assert_eq!(passwords(&app_by_app_id(&h, &app_id).await), 1);
    h.stop_operator().await;
}

#[tokio::test]
async fn a_taken_identifier_uri_stalls_with_who_holds_it_and_no_hot_loop() {
    let mut h = Harness::with_resource_app("def-uri").await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir-copy",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    let ra = h
        .wait_condition::<FhirResourceApp>("fhir-copy", "Stalled", "True", T)
        .await;
    let stalled = condition(&ra, "Stalled");
    assert_eq!(stalled["reason"], "IdentifierUriTaken", "{stalled}");
    let m = stalled["message"].as_str().unwrap();
    assert!(
        m.contains("https://fhir.contoso.example")
            && m.contains(&format!("FhirResourceApp {}/fhir ", h.ns.name))
            && m.contains("identifierUri"),
        "{m}"
    );
    // The emulator's name for `PATCH /applications(uniqueName=…)`, the operator's create.
    let creates = |h: &Harness| {
        h.call_counts()
            .get("applications.upsert")
            .copied()
            .unwrap_or(0)
    };
    let before = creates(&h);
    assert!(
        before >= 2,
        "both resource apps tried to create: {:?}",
        h.call_counts()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = creates(&h);
    assert!(
        after - before <= 1,
        "{} creates in 6 s: a hot loop",
        after - before
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn a_renamed_scope_is_removed_from_the_registration_and_the_grant() {
    let mut h = Harness::new("def-scope", full_permissions()).await;
    h.start_operator(h.config()).await;
    let fhir = |scope: &str| {
        resource_app(
            "fhir",
            json!({"fhirUrl": "https://fhir.contoso.example", "scopes": [{"value": scope}, {"value": "user_impersonation"}]}),
        )
    };
    h.apply::<FhirResourceApp>(fhir("records.read"))
        .await
        .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.apply::<FhirClientApp>(client_app(
        "web",
        json!({
            "type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
            "redirectUris": ["https://web.contoso.example/cb"],
            "scopes": ["records.read", "user_impersonation"], "grantAdminConsent": true
        }),
    ))
    .await
    .unwrap();
    let web = h
        .wait_condition::<FhirClientApp>("web", "Ready", "True", T)
        .await;
    let sp = web["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        grant_scope(&h, &sp).await,
        "records.read user_impersonation"
    );
    let old_scope_id = app_by_app_id(&h, web["status"]["clientId"].as_str().unwrap()).await
        ["requiredResourceAccess"][0]["resourceAccess"][0]["id"]
        .clone();

    h.apply::<FhirResourceApp>(fhir("records.view"))
        .await
        .unwrap();
    let web = h
        .wait_condition::<FhirClientApp>("web", "Stalled", "True", T)
        .await;
    let stalled = condition(&web, "Stalled");
    assert_eq!(stalled["reason"], "UnknownEntitlement");
    // What the resource app publishes is in its status, the one source its clients read.
    let ra = get_json::<FhirResourceApp>(&h, "fhir").await;
    let published: Vec<&str> = ra["status"]["published"]["scopes"]
        .as_array()
        .expect("status.published.scopes")
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert!(
        published.contains(&"records.view") && !published.contains(&"records.read"),
        "{published:?}"
    );
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("records.read"),
        "{stalled}"
    );
    h.eventually("the stale scope leaves the grant", T, || {
        let (h, sp) = (&h, &sp);
        async move {
            let s = grant_scope(h, sp).await;
            if s == "user_impersonation" {
                Ok(Some(()))
            } else {
                Err(s)
            }
        }
    })
    .await;
    let app = app_by_app_id(&h, web["status"]["clientId"].as_str().unwrap()).await;
    let ids: Vec<&Value> = app["requiredResourceAccess"][0]["resourceAccess"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert!(
        !ids.contains(&&old_scope_id),
        "the old scope id is still requested: {ids:?}"
    );
    assert_eq!(ids.len(), 1);
    h.stop_operator().await;
}

#[tokio::test]
async fn a_managed_target_refuses_roles_it_does_not_have_and_metrics_say_stalled() {
    let mut h = Harness::new("def-managed", full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}},
               "roles": ["globalReader"]}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("svc", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "UnknownEntitlement");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("'globalReader'"),
        "{stalled}"
    );
    assert_ne!(condition(&obj, "Ready")["status"], "True");
    let metrics = h.metrics.render(0);
    assert!(
        metrics
            .contains("fhir_operator_reconciles_total{kind=\"FhirClientApp\",result=\"stalled\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("category=\"Finalizer\""), "{metrics}");
    h.stop_operator().await;
}

#[tokio::test]
async fn a_client_stalled_on_a_missing_permission_names_its_application() {
    let perms: Vec<String> = full_permissions()
        .into_iter()
        .filter(|p| p != "AppRoleAssignment.ReadWrite.All")
        .collect();
    let mut h = Harness::new("def-perm", perms).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({"assignAppRoles": true}))))
        .await
        .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Stalled", "True", T)
        .await;
    assert_eq!(condition(&obj, "Stalled")["reason"], "PermissionDenied");
    let client_id = obj["status"]["clientId"]
        .as_str()
        .expect("status carries the client id");
    let app = app_by_app_id(&h, client_id).await;
    assert_eq!(app["id"], obj["status"]["applicationObjectId"]);
    assert!(
        obj["status"]["servicePrincipalObjectId"].is_string(),
        "{}",
        obj["status"]
    );
    // Documented: the Secret waits for the role assignment (pods never start without their roles).
    assert!(
        secret_data(&h.client, &h.ns.name, "etl-fhir-client")
            .await
            .is_none()
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn every_write_carries_the_field_manager_and_public_clients_hold_no_credential() {
    let mut h = Harness::with_resource_app("def-small").await;
    h.apply::<FhirClientApp>(client_app("spa", json!({
        "type": "Public", "target": {"resourceAppRef": {"name": "fhir"}}, "redirectUris": ["http://localhost:3000/cb"]
    })))
    .await
    .unwrap();
    let spa = h
        .wait_condition::<FhirClientApp>("spa", "Ready", "True", T)
        .await;
    let message = condition(&spa, "Ready")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!message.contains("credentials"), "{message}");
    for obj in [spa, get_json::<FhirResourceApp>(&h, "fhir").await] {
        let managers: Vec<&str> = obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap_or_default())
            .collect();
        assert!(
            managers
                .iter()
                .all(|m| *m == "fhirapps.io/operator" || *m == "fhirapps.io/integration-test"),
            "{managers:?}"
        );
    }
    h.stop_operator().await;
}

/// Issue 23 item 7: in single-namespace mode a reference to another namespace's FhirResourceApp is a
/// spec error the user can act on (Stalled, saying why), not a retry every 10 s forever.
#[tokio::test]
async fn single_namespace_mode_stalls_a_cross_namespace_reference() {
    let mut h = Harness::with_resource_app("def-onens").await;
    h.apply::<FhirClientApp>(client_app(
        "etl",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir", "namespace": "elsewhere"}}}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Stalled", "True", T)
        .await;
    let c = condition(&obj, "Stalled");
    assert_eq!(c["reason"], "InvalidSpec", "{obj}");
    assert!(
        c["message"].as_str().unwrap().contains(&format!(
            "this operator watches namespace {} only",
            h.ns.name
        )),
        "{c}"
    );
    assert_eq!(obj["status"]["clientId"], Value::Null, "nothing registered");
    h.stop_operator().await;
}

/// Issue 23 item 7: `credentialsSecretRef` never takes an operator output (another client's
/// credentials) as tenant credentials, and its message is the same whether the Secret exists or not.
#[tokio::test]
async fn a_credentials_ref_to_an_output_secret_is_refused_without_telling_what_exists() {
    let mut h = Harness::with_resource_app("def-credref").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let tenant = h.emu.tenant_id();
    for (name, secret) in [
        ("borrower", "etl-fhir-client"),
        ("prober", "no-such-secret"),
    ] {
        h.apply::<FhirClientApp>(client_app(
            name,
            service(
                json!({"tenant": {"tenantId": tenant, "credentialsSecretRef": {"name": secret}}}),
            ),
        ))
        .await
        .unwrap();
    }
    let mut messages = vec![];
    for (name, secret) in [
        ("borrower", "etl-fhir-client"),
        ("prober", "no-such-secret"),
    ] {
        let obj = h
            .wait_condition::<FhirClientApp>(name, "Stalled", "True", T)
            .await;
        let c = condition(&obj, "Stalled");
        assert_eq!(c["reason"], "TenantCredentials", "{obj}");
        messages.push(c["message"].as_str().unwrap().replace(secret, "X"));
    }
    assert_eq!(
        messages[0], messages[1],
        "the same message for an output and a missing Secret"
    );
    h.stop_operator().await;
}

/// The resource app's access-policy step reads what is held on its API's service principal: when
/// that service principal was deleted out of band, nothing is held on it, and the reconcile goes on
/// to bring it back (found by the shared-cluster run: the step waited out a 404 as replication lag
/// and then failed NotFound, so the API never healed).
#[tokio::test]
async fn a_resource_app_whose_service_principal_was_deleted_heals_with_clients_registered() {
    let mut h = Harness::with_resource_app_delta_only("def-rasp").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let ra = get_json::<FhirResourceApp>(&h, "fhir").await;
    let old_sp = ra["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = h
        .graph(
            Method::DELETE,
            &format!("/servicePrincipals/{old_sp}"),
            None,
        )
        .await;
    assert_eq!(code, 204);
    // Entra keeps the deleted service principal 30 days: the operator restores it (the same object,
    // with its assignments) rather than creating a second one.
    let healed = h
        .eventually("the API's service principal live again", T, || async {
            let ra = get_json::<FhirResourceApp>(&h, "fhir").await;
            let sp = ra["status"]["servicePrincipalObjectId"]
                .as_str()
                .unwrap_or_default();
            let (code, _) = h
                .graph(Method::GET, &format!("/servicePrincipals/{sp}"), None)
                .await;
            let ready = condition(&ra, "Ready")["status"] == "True";
            Ok((ready && code == 200).then_some(ra))
        })
        .await;
    assert_eq!(condition(&healed, "Ready")["reason"], "Ready", "{healed}");
    assert_eq!(
        healed["status"]["servicePrincipalObjectId"],
        old_sp.as_str(),
        "restored, not created anew"
    );
    h.stop_operator().await;
}

/// A role named like a scope the spec publishes by default (here `user_impersonation`) gets past
/// admission, which sees only the explicit lists; Entra refuses one value under two ids, so the
/// resource app is Stalled saying which value, before anything is registered.
#[tokio::test]
async fn a_role_named_like_a_default_scope_is_a_spec_error() {
    let mut h = Harness::new("def-both", full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir-both.contoso.example",
               "appRoles": [{"value": "globalReader"}, {"value": "user_impersonation"}]}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirResourceApp>("fhir", "Stalled", "True", T)
        .await;
    let c = condition(&obj, "Stalled");
    assert_eq!(c["reason"], "InvalidSpec", "{obj}");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains("user_impersonation published both as an app role and as a scope"),
        "{c}"
    );
    assert_eq!(obj["status"]["clientId"], Value::Null, "nothing registered");
    h.stop_operator().await;
}
