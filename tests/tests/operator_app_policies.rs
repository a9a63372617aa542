//! Tenant app management policies and a client's credential (issue 24 items 7 and 9): a tenant that
//! blocks client secrets stalls a ClientSecret client before its application exists while a
//! Certificate client is Ready; a lifetime cap sets the Secret's expiry and the rotation inside it; a
//! policy assigned to the application replaces the default; and an operator that may not read the
//! policies says so and still works where Entra allows, mapping Entra's refusal where it does not.
//! Each test has its own emulator (`Harness::new` starts one), so one test's policy never reaches
//! another's tenant.

use std::time::Duration;

use fhir_app_operator::api::FhirClientApp;
use fhir_app_operator_tests::operator::{
    Harness, client_app, condition, full_permissions, secret_data, service_spec as service,
};
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);
const DEFAULT_POLICY: &str = "/policies/defaultAppManagementPolicy";
const DEFAULT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The operator's permissions plus one that reads app management policies (Learn lists
/// `Policy.Read.All` as least privileged for the default policy).
fn with_policy_read() -> Vec<String> {
    let mut p = full_permissions();
    p.push("Policy.Read.All".into());
    p
}

/// Turns the tenant default policy on with these password and key restrictions, keeping its
/// identifier-URI settings (an admin's PATCH through Graph).
async fn set_default_policy(h: &Harness, passwords: Value, keys: Value) {
    let (code, mut policy) = h.graph(Method::GET, DEFAULT_POLICY, None).await;
    assert_eq!(code, 200, "{policy}");
    let mut restrictions = policy["applicationRestrictions"].take();
    if !restrictions.is_object() {
        restrictions = json!({});
    }
    restrictions["passwordCredentials"] = passwords;
    restrictions["keyCredentials"] = keys;
    let body = json!({"isEnabled": true, "applicationRestrictions": restrictions});
    let (code, answer) = h.graph(Method::PATCH, DEFAULT_POLICY, Some(body)).await;
    assert_eq!(code, 204, "{answer}");
}

/// A Harness with `permissions`, the policy set by `setup` before the operator starts (so its first
/// read sees it), and the FhirResourceApp `fhir` Ready.
async fn harness(prefix: &str, permissions: Vec<String>, passwords: Value) -> Harness {
    let mut h = Harness::new(prefix, permissions).await;
    set_default_policy(&h, passwords, json!([])).await;
    h.start_with_resource_app().await;
    h
}

/// Applies ClientSecret client `etl` and waits until it is Stalled with
/// `CredentialTypeNotAllowedByPolicy` naming the tenant default policy; returns it and the message.
async fn secret_client_stalls_naming_the_default_policy(h: &Harness) -> (Value, String) {
    let etl = client_app("etl", service(json!({})));
    let stalled = h
        .apply_and_wait::<FhirClientApp>(etl, "Stalled", "True")
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "CredentialTypeNotAllowedByPolicy", "{c}");
    let message = c["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(DEFAULT_POLICY_ID),
        "names the policy: {message}"
    );
    (stalled, message)
}

fn days_from_now(ts: &str) -> f64 {
    let t: Timestamp = ts.parse().unwrap();
    t.duration_since(Timestamp::now()).as_secs_f64() / 86_400.0
}

#[tokio::test]
async fn a_tenant_that_blocks_client_secrets_stalls_the_secret_client_before_registering_it() {
    let block = json!([{"restrictionType": "passwordAddition", "maxLifetime": null,
        "restrictForAppsCreatedAfterDateTime": null}]);
    let h = harness("pol-block", with_policy_read(), block).await;
    let apps_before = h.apps_with_unique_name_prefix("fao-it-").await.len();

    let (stalled, message) = secret_client_stalls_naming_the_default_policy(&h).await;
    assert!(
        message.contains("it allows Certificate, WorkloadIdentity"),
        "says what it allows: {message}"
    );
    let policy = condition(&stalled, "AppManagementPolicy");
    assert_eq!(
        (policy["status"].as_str(), policy["reason"].as_str()),
        (Some("True"), Some("PolicyRead")),
        "{policy}"
    );
    assert_eq!(
        stalled["status"]["credentialPolicy"]["allowedTypes"],
        json!(["Certificate", "WorkloadIdentity"])
    );
    assert!(
        stalled["status"]["clientId"].is_null(),
        "{}",
        stalled["status"]
    );
    assert_eq!(
        h.apps_with_unique_name_prefix("fao-it-").await.len(),
        apps_before,
        "no application was created for the stalled client"
    );

    // A Certificate client in the same tenant is Ready, and its certificate gets a token.
    let cert = client_app(
        "etl-cert",
        service(json!({"credential": {"type": "Certificate"}})),
    );
    let ready = h
        .apply_and_wait::<FhirClientApp>(cert, "Ready", "True")
        .await;
    assert_eq!(ready["status"]["credential"]["type"], "Certificate");
    assert_eq!(
        ready["status"]["credentialPolicy"]["policyId"],
        DEFAULT_POLICY_ID
    );

    // No loop: the stalled client is retried only at the slow Stalled retry, and the default policy
    // is read from the cache, not on every reconcile.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let calls = h.call_counts();
    assert_eq!(calls.get("applications.addPassword"), None, "{calls:?}");
    let reads = calls
        .get("defaultAppManagementPolicy.get")
        .copied()
        .unwrap_or(0);
    assert!(reads <= 2, "{reads} default-policy reads: {calls:?}");
    let assigned = calls.get("applications.appManagementPolicies.list");
    let reconciles = h
        .metrics
        .counter_sum("fhir_operator_reconciles_total", "FhirClientApp");
    println!(
        "policy reads: default {reads}, assigned {assigned:?}, client reconciles {reconciles}"
    );
}

#[tokio::test]
async fn a_90_day_cap_sets_the_secrets_expiry_and_renews_inside_it() {
    let cap = json!([{"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}]);
    let h = harness("pol-cap", with_policy_read(), cap).await;
    let etl = client_app("etl", service(json!({})));
    let ready = h
        .apply_and_wait::<FhirClientApp>(etl, "Ready", "True")
        .await;
    let status = &ready["status"];
    let expires = status["credential"]["expiresAt"].as_str().unwrap();
    let days = days_from_now(expires);
    assert!((89.0..90.0).contains(&days), "expires in {days} days");
    let policy = &status["credentialPolicy"];
    assert_eq!(policy["maxLifetime"], "P90D", "{policy}");
    assert_eq!(policy["policyId"], DEFAULT_POLICY_ID);
    assert_eq!(
        policy["validity"], "2159h",
        "the cap less an hour: {policy}"
    );
    assert_eq!(
        policy["renewBefore"], "720h",
        "renewal on day 60 still fits"
    );
    let message = condition(&ready, "AppManagementPolicy")["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("caps a ClientSecret at P90D"),
        "{message}"
    );

    // The Secret holds that credential, its expiry annotation agrees, and Entra accepts it.
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    let claims = h.token_from_secret(&data).await.expect("a token");
    // And the real consumer: azure-identity's EnvironmentCredential with nothing but the Secret.
    let tools = fhir_app_operator_tests::fhir::installed();
    let empty = std::collections::BTreeMap::new();
    fhir_app_operator_tests::fhir::service_calls(&h, &tools, &data, &empty, &[]).await;
    assert_eq!(claims["appid"], status["clientId"]);
    let secret = h
        .api::<k8s_openapi::api::core::v1::Secret>()
        .get("etl-fhir-client")
        .await
        .unwrap();
    let ann = secret.metadata.annotations.unwrap_or_default();
    assert_eq!(
        ann.get("fhirapps.io/expires-at").map(String::as_str),
        Some(expires)
    );
    let (_, app) = h
        .graph(
            Method::GET,
            &format!(
                "/applications/{}",
                status["applicationObjectId"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let end = app["passwordCredentials"][0]["endDateTime"]
        .as_str()
        .unwrap();
    assert!(days_from_now(end) < 90.0, "Entra's copy: {end}");

    // The metrics: the cap, and a renewal 30 days before expiry.
    let metrics = h.metrics.render(Timestamp::now().as_second());
    let series = format!(
        "fhir_operator_credential_max_lifetime_seconds{{name=\"etl\",namespace=\"{}\"}} 7776000\n",
        h.ns.name
    );
    assert!(metrics.contains(&series), "{metrics}");
    let renewal = metrics
        .lines()
        .find(|l| l.starts_with("fhir_operator_credential_renewal_seconds{name=\"etl\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("a renewal series");
    assert!(
        (58.9..60.0).contains(&(renewal / 86_400.0)),
        "renewal in {} days",
        renewal / 86_400.0
    );
}

#[tokio::test]
async fn a_policy_assigned_to_the_application_replaces_the_default() {
    let h = harness("pol-assign", with_policy_read(), json!([])).await;
    let etl = client_app("etl", service(json!({})));
    let first = h
        .apply_and_wait::<FhirClientApp>(etl, "Ready", "True")
        .await;
    let days = days_from_now(first["status"]["credential"]["expiresAt"].as_str().unwrap());
    assert!(days > 360.0, "no cap yet: {days}");
    let oid = first["status"]["applicationObjectId"].as_str().unwrap();

    // An admin assigns the application a policy with a 30-day cap, and blocks secrets for everyone
    // else through the default.
    let (code, custom) = h
        .graph(
            Method::POST,
            "/policies/appManagementPolicies",
            Some(json!({"displayName": "FHIR clients: 30-day secrets",
                "description": "exempt from the password block", "isEnabled": true,
                "restrictions": {"passwordCredentials": [
                    {"restrictionType": "passwordLifetime", "maxLifetime": "P30D"}],
                    "keyCredentials": []}})),
        )
        .await;
    assert_eq!(code, 201, "{custom}");
    let policy_id = custom["id"].as_str().unwrap();
    let reference =
        format!("https://graph.microsoft.com/v1.0/policies/appManagementPolicies/{policy_id}");
    let (code, answer) = h
        .graph(
            Method::POST,
            &format!("/applications/{oid}/appManagementPolicies/$ref"),
            Some(json!({"@odata.id": reference})),
        )
        .await;
    assert_eq!(code, 204, "{answer}");
    set_default_policy(
        &h,
        json!([{"restrictionType": "passwordAddition"}]),
        json!([]),
    )
    .await;

    // A spec change reconciles at once: the assigned policy applies, and the one-year secret, which
    // outlives its cap, is replaced by one inside it.
    h.apply::<FhirClientApp>(client_app(
        "etl",
        service(json!({"credential": {"type": "ClientSecret", "rotation": {"overlap": "1h"}}})),
    ))
    .await
    .unwrap();
    let again = h
        .eventually("the assigned policy in status", T, || async {
            let o = h
                .api::<FhirClientApp>()
                .get("etl")
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&o).unwrap();
            let status = v["status"].clone();
            let done = status["credentialPolicy"]["policyId"] == policy_id
                && status["credential"]["keyId"] != first["status"]["credential"]["keyId"]
                && condition(&v, "Ready")["status"] == "True";
            Ok::<_, String>(done.then_some(v))
        })
        .await;
    let status = &again["status"];
    assert_eq!(
        status["credentialPolicy"]["policyName"],
        "FHIR clients: 30-day secrets"
    );
    assert_eq!(status["credentialPolicy"]["maxLifetime"], "P30D");
    assert_eq!(
        status["credentialPolicy"]["renewBefore"], "239h40m",
        "720h no longer fits: a third of the validity (719h): {}",
        status["credentialPolicy"]
    );
    let days = days_from_now(status["credential"]["expiresAt"].as_str().unwrap());
    assert!((29.0..30.0).contains(&days), "{days}");
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    h.token_from_secret(&data)
        .await
        .expect("the renewed secret gets a token");
}

#[tokio::test]
async fn without_permission_to_read_policies_the_condition_says_so_and_entras_refusal_is_mapped() {
    let cap = json!([{"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}]);
    let h = harness("pol-noread", full_permissions(), cap).await;
    // Inside the cap the operator does not know of: Ready, and the condition says it could not read.
    let short = client_app(
        "short",
        service(json!({"credential": {"type": "ClientSecret",
            "rotation": {"validity": "720h", "renewBefore": "240h"}}})),
    );
    let ready = h
        .apply_and_wait::<FhirClientApp>(short, "Ready", "True")
        .await;
    let c = condition(&ready, "AppManagementPolicy");
    assert_eq!(c["status"], "Unknown", "{c}");
    assert_eq!(c["reason"], "PolicyUnreadable");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("Policy.Read.ApplicationConfiguration"),
        "{c}"
    );
    assert!(ready["status"]["credentialPolicy"].is_null());

    // The default one-year secret: Entra refuses it, and the client is Stalled with the policy Entra
    // named, retried slowly.
    let long = client_app("long", service(json!({})));
    let stalled = h
        .apply_and_wait::<FhirClientApp>(long, "Stalled", "True")
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "CredentialLifetimeNotAllowedByPolicy", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains(DEFAULT_POLICY_ID),
        "{c}"
    );
    let refused = |h: &Harness| {
        (h.emu.calls().iter())
            .filter(|c| c.operation == "applications.addPassword" && c.status == 400)
            .count()
    };
    let n = refused(&h);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(refused(&h), n, "no retry before the Stalled retry");
}

#[tokio::test]
async fn without_permission_to_read_policies_entras_password_block_names_its_policy() {
    let block = json!([{"restrictionType": "passwordAddition"}]);
    let h = harness("pol-noread-block", full_permissions(), block).await;
    let (stalled, _) = secret_client_stalls_naming_the_default_policy(&h).await;
    assert_eq!(
        condition(&stalled, "AppManagementPolicy")["reason"],
        "PolicyUnreadable"
    );
    // The application exists (the operator could not know), with no credential.
    let oid = stalled["status"]["applicationObjectId"].as_str().unwrap();
    let (_, app) = h
        .graph(Method::GET, &format!("/applications/{oid}"), None)
        .await;
    assert_eq!(app["passwordCredentials"], json!([]), "{app}");
}

#[tokio::test]
async fn a_certificate_cap_set_after_the_policy_was_read_is_followed_after_entras_refusal() {
    let h = harness("pol-cert", with_policy_read(), json!([])).await;
    // A first client makes the operator read (and cache) the default policy; then an admin
    // tightens it.
    let first = client_app(
        "first",
        service(json!({"credential": {"type": "Certificate"}})),
    );
    let ready = h
        .apply_and_wait::<FhirClientApp>(first, "Ready", "True")
        .await;
    assert!(ready["status"]["credentialPolicy"]["maxLifetime"].is_null());
    set_default_policy(
        &h,
        json!([]),
        json!([{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P30D"}]),
    )
    .await;
    // The cached copy says no cap: Entra refuses the one-year certificate, the copy is dropped,
    // and the next reconcile reads the policy again and issues one inside the cap (with the copy
    // kept, every retry would meet the same refusal until it expired, 5 minutes on).
    let etl = client_app(
        "etl",
        service(json!({"credential": {"type": "Certificate"}})),
    );
    h.apply::<FhirClientApp>(etl).await.unwrap();
    let ready = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", Duration::from_secs(120))
        .await;
    let status = &ready["status"];
    assert_eq!(
        status["credentialPolicy"]["maxLifetime"], "P30D",
        "{status}"
    );
    let days = days_from_now(status["credential"]["expiresAt"].as_str().unwrap());
    assert!((29.0..30.0).contains(&days), "{days}");
    let refusals = (h.emu.calls().iter())
        .filter(|c| c.error_code.as_deref() == Some("CredentialInvalidLifetimeAsPerAppPolicy"))
        .count();
    assert_eq!(refusals, 1, "one refusal, then the cap was read again");
}
