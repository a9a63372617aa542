//! Issue 18: the FHIR server's owner decides who may use it. Clients in other namespaces (the
//! Secret lands next to the workload), the FhirResourceApp's access policy, revocation by watch,
//! users and groups assigned app roles, and `appRoleAssignmentRequired`.
//!
//! Every test here runs the operator across all namespaces (a cross-namespace reference needs
//! it), so they take turns: two such operators would reconcile each other's objects.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::TestNamespace;
use fhir_app_operator_tests::operator::{
    Harness, claims, client_app, condition, full_permissions, resource_app, secret_data,
    sign_in_with_code,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Demo-Passw0rd";
const MEMBER: &str = "clinician@contoso.example";
const MEMBER_OID: &str = "7b0c3f0e-5a57-4c5e-9c3e-0d1f2a3b4c01";

async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The operator watching every namespace, a Ready FhirResourceApp `fhir` (spec `extra` merged in)
/// in the harness's namespace, and a second namespace for a team's clients.
async fn platform(prefix: &str, extra: Value) -> (Harness, TestNamespace) {
    let mut h = Harness::with_emulator(prefix, |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        cfg.tenants[0].users = vec![entra_emulator::UserConfig {
            user_principal_name: MEMBER.into(),
            password: PASSWORD.into(),
            object_id: Some(MEMBER_OID.into()),
            groups: vec!["clinicians".into()],
            ..Default::default()
        }];
    })
    .await;
    let team = TestNamespace::new(&h.client, &format!("{prefix}-team-b")).await;
    let mut cfg = h.config();
    cfg.watch_namespace = None;
    // No resync within a test: what changes after a policy change is the watch's doing.
    cfg.resync = Duration::from_secs(600);
    h.start_operator(cfg).await;
    set_resource_app(&h, extra).await;
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    (h, team)
}

/// Deletes the test's objects while the operator still runs (it would otherwise meet them in the
/// next test's emulator, as it watches every namespace), then stops it.
async fn teardown(mut h: Harness, team: TestNamespace) {
    for ns in [team.name.clone(), h.ns.name.clone()] {
        let clients = Api::<FhirClientApp>::namespaced(h.client.clone(), &ns);
        let _ = clients
            .delete_collection(&Default::default(), &Default::default())
            .await;
        gone(&h, clients).await;
    }
    let apps = h.api::<FhirResourceApp>();
    let _ = apps
        .delete_collection(&Default::default(), &Default::default())
        .await;
    gone(&h, apps).await;
    h.stop_operator().await;
}

async fn gone<K>(h: &Harness, api: Api<K>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    h.eventually("deleted", T, || {
        let api = api.clone();
        async move {
            let left = api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(left.items.is_empty().then_some(()))
        }
    })
    .await
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

async fn set_resource_app(h: &Harness, extra: Value) {
    // A host of its own per test: a resource app left over from another test cannot take it.
    let mut spec = json!({"fhirUrl": format!("https://{}.contoso.example", h.ns.name)});
    merge(&mut spec, extra);
    h.apply::<FhirResourceApp>(resource_app("fhir", spec))
        .await
        .unwrap();
}

async fn apply_in(
    client: &kube::Client,
    ns: &str,
    obj: Value,
) -> Result<FhirClientApp, kube::Error> {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    Api::<FhirClientApp>::namespaced(client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply("access-policy-test").force(),
            &Patch::Apply(&obj),
        )
        .await
}

/// Waits for the client's condition `ty` = `status` (for its generation); returns the object.
async fn wait_in(h: &Harness, ns: &str, name: &str, ty: &str, status: &str) -> Value {
    let api = Api::<FhirClientApp>::namespaced(h.client.clone(), ns);
    h.eventually(&format!("{ns}/{name} {ty}={status}"), T, || {
        let api = api.clone();
        async move {
            let o = serde_json::to_value(api.get(name).await.map_err(|e| e.to_string())?).unwrap();
            let c = condition(&o, ty);
            let hit =
                c["status"] == status && c["observedGeneration"] == o["metadata"]["generation"];
            if hit {
                Ok(Some(o))
            } else {
                Err(format!("status: {}", o["status"]))
            }
        }
    })
    .await
}

fn service(name: &str, ra_ns: &str, roles: &[&str]) -> Value {
    client_app(
        name,
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir", "namespace": ra_ns}},
               "roles": roles, "assignAppRoles": true}),
    )
}

fn roles(c: &Value) -> Vec<String> {
    let mut r: Vec<String> = c["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    r.sort();
    r
}

/// The app roles held by the service principal of the client whose app ID is `app_id`.
async fn assignments(h: &Harness, app_id: &str) -> Vec<Value> {
    let (_, sps) = h
        .graph(
            Method::GET,
            &format!("/servicePrincipals?$filter=appId eq '{app_id}'"),
            None,
        )
        .await;
    let sp = sps["value"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, v) = h
        .graph(
            Method::GET,
            &format!("/servicePrincipals/{sp}/appRoleAssignments"),
            None,
        )
        .await;
    v["value"].as_array().cloned().unwrap_or_default()
}

/// Waits until the client whose app ID is `app_id` holds no app role assignment.
async fn holds_nothing(h: &Harness, what: &str, app_id: &str, within: Duration) {
    h.eventually(what, within, || async move {
        let left = assignments(h, app_id).await;
        if left.is_empty() {
            Ok(Some(()))
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

async fn reasons(h: &Harness, ns: &str) -> Vec<String> {
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(h.client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// A client in team-b is refused (nothing registered, and the message the same whether or not the
/// resource app exists) until a rule admits team-b; then it is Ready with its Secret in team-b and
/// a working token. Deleting the rule removes the assignment within 10 s (by watch: the resync is
/// 10 minutes here), with an Event; the client
/// goes not-Ready with the reason and keeps its credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_another_namespace_is_refused_until_a_rule_admits_it_and_revoked_with_it() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-xns", json!({})).await;
    let (fhir_ns, b) = (h.ns.name.clone(), team.name.clone());
    apply_in(&h.client, &b, service("etl", &fhir_ns, &["globalReader"]))
        .await
        .unwrap();
    let mut ghost = service("ghost", &fhir_ns, &["globalReader"]);
    ghost["spec"]["target"]["resourceAppRef"]["name"] = json!("nothing-here");
    apply_in(&h.client, &b, ghost).await.unwrap();
    let etl = wait_in(&h, &b, "etl", "Stalled", "True").await;
    let ghost = wait_in(&h, &b, "ghost", "Stalled", "True").await;
    let (c, g) = (condition(&etl, "Stalled"), condition(&ghost, "Stalled"));
    assert_eq!(c["reason"], "NotPermitted", "{etl}");
    assert_eq!(g["reason"], "NotPermitted", "{ghost}");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("does not admit namespace {b}")),
        "{msg}"
    );
    assert_eq!(
        msg.replace("/fhir ", "/X "),
        g["message"]
            .as_str()
            .unwrap()
            .replace("/nothing-here ", "/X "),
        "the message does not tell whether the resource app exists"
    );
    assert_eq!(
        etl["status"]["clientId"],
        Value::Null,
        "nothing registered: {etl}"
    );
    assert_eq!(etl["status"]["access"]["refusedCount"], 1, "{etl}");
    let named = h.apps_with_unique_name_prefix("").await;
    assert!(
        !named.iter().any(|a| a["displayName"] == format!("{b}/etl")),
        "no application for a refused client"
    );

    set_resource_app(
        &h,
        json!({"accessPolicy": {"rules": [{"namespaces": [b], "appRoles": ["globalReader"]}]}}),
    )
    .await;
    let etl = wait_in(&h, &b, "etl", "Ready", "True").await;
    assert_eq!(etl["status"]["access"]["grantedCount"], 1, "{etl}");
    let data = secret_data(&h.client, &b, "etl-fhir-client").await.unwrap();
    let token = h
        .token_from_secret(&data)
        .await
        .expect("token for the admitted client");
    assert_eq!(roles(&token), ["globalReader"]);
    let app_id = etl["status"]["clientId"].as_str().unwrap().to_string();
    assert_eq!(assignments(&h, &app_id).await.len(), 1);

    // Revocation: the rule goes; the assignment follows within 10 s.
    let start = Instant::now();
    set_resource_app(&h, json!({})).await;
    holds_nothing(
        &h,
        "the assignment is removed",
        &app_id,
        Duration::from_secs(10),
    )
    .await;
    eprintln!("revoked in {:?}", start.elapsed());
    let etl = wait_in(&h, &b, "etl", "Stalled", "True").await;
    assert_eq!(condition(&etl, "Stalled")["reason"], "NotPermitted");
    assert_eq!(condition(&etl, "Ready")["status"], "False", "{etl}");
    assert!(reasons(&h, &b).await.contains(&"AccessRevoked".to_string()));
    let kept = secret_data(&h.client, &b, "etl-fhir-client").await.unwrap();
    assert_eq!(
        kept["AZURE_CLIENT_SECRET"], data["AZURE_CLIENT_SECRET"],
        "the credential is kept"
    );
    let token = h.token_from_secret(&kept).await;
    assert!(
        token.as_ref().is_err_and(|e| e.contains("AADSTS501051")),
        "an unassigned client of an assignment-required API gets no token: {token:?}"
    );
    teardown(h, team).await;
}

/// globalAdmin needs a rule naming it even in the FHIR server's own namespace: the rest of the
/// request is registered and granted, and status says which is which; a rule naming globalAdmin
/// grants it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_admin_is_refused_without_an_explicit_rule_even_in_the_same_namespace() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-admin", json!({})).await;
    let ns = h.ns.name.clone();
    h.apply::<FhirClientApp>(service("ops", &ns, &["globalReader", "globalAdmin"]))
        .await
        .unwrap();
    let ops = h
        .wait_condition::<FhirClientApp>("ops", "Stalled", "True", T)
        .await;
    let c = condition(&ops, "Stalled");
    assert_eq!(c["reason"], "NotPermitted", "{ops}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("AppRole globalAdmin (privileged"),
        "{c}"
    );
    assert_eq!(ops["status"]["access"]["grantedCount"], 1, "{ops}");
    assert_eq!(
        ops["status"]["access"]["refused"][0]["value"], "globalAdmin",
        "{ops}"
    );
    let data = secret_data(&h.client, &ns, "ops-fhir-client")
        .await
        .unwrap();
    let token = h.token_from_secret(&data).await.unwrap();
    assert_eq!(
        roles(&token),
        ["globalReader"],
        "the allowed part is granted"
    );

    set_resource_app(
        &h,
        json!({"accessPolicy": {"rules": [{"namespaces": [ns], "appRoles": ["globalAdmin"]}]}}),
    )
    .await;
    h.wait_condition::<FhirClientApp>("ops", "Ready", "True", T)
        .await;
    let token = h.token_from_secret(&data).await.unwrap();
    assert_eq!(roles(&token), ["globalAdmin", "globalReader"]);
    teardown(h, team).await;
}

/// A group assigned globalReader on the FhirResourceApp gives its signed-in member that role: the
/// member signs in through the emulator's authorize endpoint and login page (auth code), and the
/// access token's `roles` hold it. Without the assignment the API (assignment required by default)
/// stops the member at sign-in with AADSTS50105.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_assigned_to_global_reader_gives_its_signed_in_member_the_role() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-group", json!({})).await;
    let ns = h.ns.name.clone();
    let redirect = "http://localhost:8400/signin-oidc";
    h.apply::<FhirClientApp>(client_app(
        "portal",
        json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": [redirect], "grantAdminConsent": true}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirClientApp>("portal", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &ns, "portal-fhir-client")
        .await
        .unwrap();
    let refused = sign_in(&h, &data, redirect).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("AADSTS50105")),
        "{refused:?}"
    );

    let (_, groups) = h.graph(Method::GET, "/groups", None).await;
    let group = groups["value"]
        .as_array()
        .and_then(|l| l.iter().find(|g| g["displayName"] == "clinicians"))
        .map(|g| g["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("the member's group: {groups}"));
    set_resource_app(
        &h,
        json!({"appRoleAssignments": [{"principalType": "Group", "principalId": group, "appRole": "globalReader"}]}),
    )
    .await;
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let fra = h
        .wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let sp = fra["status"]["servicePrincipalObjectId"].as_str().unwrap();
    let (_, held) = h
        .graph(
            Method::GET,
            &format!("/servicePrincipals/{sp}/appRoleAssignedTo"),
            None,
        )
        .await;
    assert!(
        held["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["principalId"] == group.as_str() && a["principalType"] == "Group"),
        "the group holds the role in Graph: {held}"
    );
    let token = sign_in(&h, &data, redirect)
        .await
        .expect("the member signs in");
    assert_eq!(roles(&token), ["globalReader"], "{token}");
    assert_eq!(token["oid"], MEMBER_OID);

    // A group ID that is not in the directory is a spec error naming it, not an object to recreate.
    let missing = "7b0c3f0e-5a57-4c5e-9c3e-0d1f2a3b4cff";
    set_resource_app(
        &h,
        json!({"appRoleAssignments": [{"principalType": "Group", "principalId": missing, "appRole": "globalReader"}]}),
    )
    .await;
    let fra = h
        .wait_condition::<FhirResourceApp>("fhir", "Stalled", "True", T)
        .await;
    let c = condition(&fra, "Stalled");
    assert_eq!(c["reason"], "InvalidSpec", "{fra}");
    assert!(c["message"].as_str().unwrap().contains(missing), "{c}");
    teardown(h, team).await;
}

/// The member signs in to the client of `data` (`sign_in_with_code`); the access token's claims.
async fn sign_in(
    h: &Harness,
    data: &BTreeMap<String, String>,
    redirect: &str,
) -> Result<Value, String> {
    let body = sign_in_with_code(&h.emu, data, redirect, (MEMBER, PASSWORD)).await?;
    claims(body["access_token"].as_str().ok_or(body.to_string())?)
}

/// With `appRoleAssignmentRequired` (the default) an app holding no role is refused a token
/// (AADSTS501051); with the documented opt-out it gets one, without roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_assignment_required_an_unassigned_app_is_refused_a_token() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-req", json!({})).await;
    let ns = h.ns.name.clone();
    h.apply::<FhirClientApp>(client_app(
        "idle",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"]}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirClientApp>("idle", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &ns, "idle-fhir-client")
        .await
        .unwrap();
    let refused = h.token_from_secret(&data).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("AADSTS501051")),
        "{refused:?}"
    );

    set_resource_app(&h, json!({"appRoleAssignmentRequired": false})).await;
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let token = h
        .eventually("a token once assignment is not required", T, || {
            let (h, data) = (&h, &data);
            async move { h.token_from_secret(data).await.map(Some) }
        })
        .await;
    assert_eq!(roles(&token), Vec::<String>::new());
    teardown(h, team).await;
}

/// A developer whose RBAC allows FhirClientApps only in team-b cannot obtain a role the policy does
/// not give team-b: the request is refused and no assignment exists; nor can they edit the policy
/// or create a client in the FHIR server's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_developer_cannot_obtain_a_role_outside_the_policy() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-rbac", json!({})).await;
    let (fhir_ns, b) = (h.ns.name.clone(), team.name.clone());
    set_resource_app(
        &h,
        json!({"accessPolicy": {"rules": [{"namespaces": [b], "appRoles": ["globalReader"]}]}}),
    )
    .await;
    let user = format!("dev-{b}");
    let rbac = json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "fhir-clients", "namespace": b},
         "rules": [{"apiGroups": ["fhirapps.io"], "resources": ["fhirclientapps"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "fhir-clients", "namespace": b},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "fhir-clients"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    ]);
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(rbac[0].clone()).unwrap();
    let binding: k8s_openapi::api::rbac::v1::RoleBinding =
        serde_json::from_value(rbac[1].clone()).unwrap();
    Api::namespaced(h.client.clone(), &b)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::namespaced(h.client.clone(), &b)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(user);
    let dev = kube::Client::try_from(config).unwrap();

    let forbidden = |r: Result<FhirClientApp, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(
        apply_in(
            &dev,
            &fhir_ns,
            service("sneaky", &fhir_ns, &["globalAdmin"])
        )
        .await
    ));
    let edit = Api::<FhirResourceApp>::namespaced(dev.clone(), &fhir_ns)
        .patch("fhir", &PatchParams::apply("dev").force(), &Patch::Apply(&resource_app("fhir", json!({"fhirUrl": "https://x.contoso.example", "accessPolicy": {"rules": [{"namespaces": [b], "appRoles": ["globalAdmin"]}]}}))))
        .await;
    assert!(
        matches!(edit, Err(kube::Error::Api(s)) if s.code == 403),
        "the policy is the owner's"
    );
    apply_in(
        &dev,
        &b,
        service(
            "etl",
            &fhir_ns,
            &["globalReader", "globalAdmin", "globalWriter"],
        ),
    )
    .await
    .expect("team-b may create its clients");
    let etl = wait_in(&h, &b, "etl", "Stalled", "True").await;
    assert_eq!(condition(&etl, "Stalled")["reason"], "NotPermitted");
    let app_id = etl["status"]["clientId"].as_str().unwrap().to_string();
    let held = assignments(&h, &app_id).await;
    assert_eq!(held.len(), 1, "only globalReader: {held:?}");
    let data = secret_data(&h.client, &b, "etl-fhir-client").await.unwrap();
    assert_eq!(
        roles(&h.token_from_secret(&data).await.unwrap()),
        ["globalReader"]
    );
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &fhir_ns);
    assert!(
        secrets.get_opt("etl-fhir-client").await.unwrap().is_none(),
        "the Secret is in team-b only"
    );
    teardown(h, team).await;
}

/// Issue 23 item 1: emptying the rules takes every grant away from team-b's clients, whatever the
/// team did to them first — turned `assignAppRoles` off, broke its spec (a tenant credentials
/// Secret that does not exist), took its output Secret over, pointed it at a resource app of its
/// own, orphaned and deleted it — and a client of a second resource app whose owner's same edit
/// also broke that resource app (a typo in appRoleAssignments: Stalled) loses its role too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_the_rules_takes_every_grant_away_whatever_the_team_did_first() {
    let _serial = one_at_a_time().await;
    let rule = |b: &str| json!({"accessPolicy": {"rules": [{"namespaces": [b], "appRoles": ["globalWriter"]}]}});
    let (h, team) = platform("ap-rev", json!({})).await;
    let (fhir_ns, b) = (h.ns.name.clone(), team.name.clone());
    set_resource_app(&h, rule(&b)).await;
    let mut second = rule(&b);
    merge(
        &mut second,
        json!({"fhirUrl": format!("https://{fhir_ns}-2.contoso.example")}),
    );
    h.apply::<FhirResourceApp>(resource_app("fhir2", second.clone()))
        .await
        .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir2", "Ready", "True", T)
        .await;
    let names = ["alone", "optout", "broken", "taken", "moved", "orphan"];
    for n in names {
        apply_in(&h.client, &b, service(n, &fhir_ns, &["globalWriter"]))
            .await
            .unwrap();
    }
    let mut other = service("other", &fhir_ns, &["globalWriter"]);
    other["spec"]["target"]["resourceAppRef"]["name"] = json!("fhir2");
    apply_in(&h.client, &b, other).await.unwrap();
    let mut app_ids = BTreeMap::new();
    for n in names.iter().chain(&["other"]) {
        let c = wait_in(&h, &b, n, "Ready", "True").await;
        assert_eq!(
            assignments(&h, c["status"]["clientId"].as_str().unwrap())
                .await
                .len(),
            1
        );
        assert_eq!(
            c["status"]["grantedOn"][0]["resourceApp"],
            format!("{fhir_ns}/{}", if *n == "other" { "fhir2" } else { "fhir" }),
            "status records where it holds grants: {c}"
        );
        app_ids.insert(*n, c["status"]["clientId"].as_str().unwrap().to_string());
    }

    // The team's moves, each before the owner's edit.
    let clients = Api::<FhirClientApp>::namespaced(h.client.clone(), &b);
    let merge_patch = |v: Value| Patch::Merge(v);
    clients
        .patch(
            "optout",
            &PatchParams::default(),
            &merge_patch(json!({"spec": {"assignAppRoles": false}})),
        )
        .await
        .unwrap();
    clients
        .patch(
            "broken",
            &PatchParams::default(),
            &merge_patch(
                json!({"spec": {"tenant": {"tenantId": h.emu.tenant_id(), "credentialsSecretRef": {"name": "no-such-secret"}}}}),
            ),
        )
        .await
        .unwrap();
    Api::<Secret>::namespaced(h.client.clone(), &b)
        .patch(
            "taken-fhir-client",
            &PatchParams::default(),
            &merge_patch(json!({"metadata": {"ownerReferences": null}})),
        )
        .await
        .unwrap();
    let own = json!({"fhirUrl": format!("https://{b}.contoso.example")});
    Api::<FhirResourceApp>::namespaced(h.client.clone(), &b)
        .patch(
            "own",
            &PatchParams::apply("access-policy-test").force(),
            &Patch::Apply(&resource_app("own", own)),
        )
        .await
        .unwrap();
    clients
        .patch("moved", &PatchParams::default(), &merge_patch(json!({"spec": {"target": {"resourceAppRef": {"name": "own", "namespace": null}}, "roles": []}})))
        .await
        .unwrap();
    clients
        .patch(
            "orphan",
            &PatchParams::default(),
            &merge_patch(json!({"spec": {"deletionPolicy": "Orphan"}})),
        )
        .await
        .unwrap();
    wait_in(&h, &b, "orphan", "Ready", "True").await;
    clients.delete("orphan", &Default::default()).await.unwrap();
    h.eventually("the orphaned client is gone", T, || {
        let clients = clients.clone();
        async move {
            Ok(clients
                .get_opt("orphan")
                .await
                .map_err(|e| e.to_string())?
                .is_none()
                .then_some(()))
        }
    })
    .await;
    assert!(
        assignments(&h, &app_ids["orphan"]).await.is_empty(),
        "an orphaned client from another namespace loses its grants before its finalizer goes"
    );
    let moved = wait_in(&h, &b, "moved", "Ready", "True").await;
    assert!(
        !moved["status"]["grantedOn"]
            .to_string()
            .contains(&format!("{fhir_ns}/fhir\"")),
        "{moved}"
    );
    assert!(
        assignments(&h, &app_ids["moved"]).await.is_empty(),
        "a client pointed elsewhere loses what it held on its old target"
    );

    // The owner's edit: no rules; the second resource app's edit also has a typo.
    set_resource_app(&h, json!({"accessPolicy": {"rules": []}})).await;
    let typo = json!({"fhirUrl": format!("https://{fhir_ns}-2.contoso.example"), "accessPolicy": {"rules": []},
        "appRoleAssignments": [{"principalType": "Group", "principalId": "00000000-0000-0000-0000-00000000abcd", "appRole": "globalWritter"}]});
    h.apply::<FhirResourceApp>(resource_app("fhir2", typo))
        .await
        .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir2", "Stalled", "True", T)
        .await;
    for n in ["alone", "optout", "broken", "taken", "other"] {
        let what = format!("{n} holds nothing");
        holds_nothing(&h, &what, &app_ids[n], Duration::from_secs(30)).await;
    }
    let data = secret_data(&h.client, &b, "optout-fhir-client")
        .await
        .unwrap();
    let token = h.token_from_secret(&data).await;
    assert!(
        token.as_ref().is_err_and(|e| e.contains("AADSTS501051")),
        "no token for the client that opted out of assignments: {token:?}"
    );
    teardown(h, team).await;
}

/// Issue 23 item 3: a host rule admits https on that host, not a custom scheme that names the host
/// (the scheme decides which app on a device receives the code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_scheme_naming_an_admitted_host_is_refused() {
    let _serial = one_at_a_time().await;
    let (h, team) = platform("ap-scheme", json!({})).await;
    let (fhir_ns, b) = (h.ns.name.clone(), team.name.clone());
    set_resource_app(
        &h,
        json!({"accessPolicy": {"rules": [{"namespaces": [b], "scopes": ["*"], "redirectHosts": ["portal.contoso.example"]}]}}),
    )
    .await;
    let app = client_app(
        "mobile",
        json!({"type": "Public", "publicPlatform": "MobileDesktop", "target": {"resourceAppRef": {"name": "fhir", "namespace": fhir_ns}},
               "redirectUris": ["com.attacker.app://portal.contoso.example/cb", "https://portal.contoso.example/cb"],
               "grantAdminConsent": true}),
    );
    apply_in(&h.client, &b, app).await.unwrap();
    let c = wait_in(&h, &b, "mobile", "Stalled", "True").await;
    assert_eq!(condition(&c, "Stalled")["reason"], "NotPermitted", "{c}");
    let refused = c["status"]["access"]["refused"].to_string();
    assert!(
        refused.contains("com.attacker.app://portal.contoso.example/cb"),
        "{refused}"
    );
    let app_id = c["status"]["clientId"].as_str().unwrap();
    let (_, apps) = h
        .graph(
            Method::GET,
            &format!("/applications?$filter=appId eq '{app_id}'"),
            None,
        )
        .await;
    let registered = apps["value"][0].to_string();
    assert!(
        !registered.contains("com.attacker.app"),
        "not registered: {registered}"
    );
    teardown(h, team).await;
}
