//! Who signed in (issue 25 item 5): with `smart.fhirUserClaim` the operator maps the directory
//! extension `fhirUser` into the FHIR API's access tokens and the SMART clients' ID tokens; a user's
//! value is set as provisioning sets it (Graph `PATCH /users/{id}`). Real consumers judge: fhirclient's
//! `client.getFhirUser()` in Chromium, msal-node's `idTokenClaims`, and the FHIR server configured from
//! the ConfigMap alone (`FHIR_USER_CLAIM`), which keeps the user to their compartment and tells a user
//! without a value why they are refused.

use super::*;
use fhir_app_operator_tests::fhir::{config_map_with_fhir_user, set_fhir_user};

/// A second clinician, who has no `fhirUser` value.
const NURSE: &str = "nurse@contoso.example";
const NURSE_OID: &str = "8e2f4c1a-9b3d-4e5f-8a7b-6c5d4e3f2a1b";

fn nurse() -> entra_emulator::UserConfig {
    directory_user(NURSE, NURSE_OID, "Nurse Without Value")
}

/// Lets the operator's app write claims-mapping policies (the permission docs/permissions.md names for
/// `smart.fhirUserClaim`; without it the claim is not set up and a condition says so).
pub(super) fn may_map_claims(cfg: &mut entra_emulator::Config) {
    cfg.tenants[0].apps[0]
        .permissions
        .push("Policy.ReadWrite.ApplicationConfiguration".into());
}

/// `obj`'s `status.fhirUser`, when the operator has put it there.
fn fhir_user_status<K: serde::Serialize>(obj: &K) -> Option<Value> {
    let v = serde_json::to_value(obj).ok()?;
    let s = &v["status"]["fhirUser"];
    (!s.is_null()).then(|| s.clone())
}

/// Once the operator has mapped the claim for the resource app `fhir` (its ConfigMap and status name
/// the extension attribute) and for the client `client` (its status), sets `user`'s value to `value`
/// the way provisioning does; returns the attribute's full name.
pub(super) async fn the_users_value(h: &Harness, client: &str, user: &str, value: &str) -> String {
    let cm = config_map_with_fhir_user(h, "fhir").await;
    assert_eq!(cm["FHIR_USER_CLAIM"], "fhirUser", "{cm:?}");
    let attribute = cm["FHIR_USER_EXTENSION_ATTRIBUTE"].clone();
    let expected = format!("extension_{}_fhirUser", cm["CLIENT_ID"].replace('-', ""));
    assert_eq!(attribute, expected, "the extension on the FHIR API's app");
    let status = h
        .eventually("the resource app's status.fhirUser", T, || async {
            let app = h.api::<FhirResourceApp>().get("fhir").await;
            Ok(fhir_user_status(&app.map_err(|e| e.to_string())?))
        })
        .await;
    assert_eq!(status["extensionAttribute"], attribute, "{status}");
    h.eventually(&format!("{client}'s status.fhirUser"), T, || async {
        let app = h.api::<FhirClientApp>().get(client).await;
        Ok(fhir_user_status(&app.map_err(|e| e.to_string())?))
    })
    .await;
    set_fhir_user(h, user, &attribute, value).await;
    attribute
}

/// The proof in Chromium: a SMART app built with fhirclient, standalone launch, for a
/// clinician whose `fhirUser` is `Practitioner/prac-1`: `client.getFhirUser()` returns it (the ID
/// token's claim), the access token carries it too, and the FHIR server, configured from the ConfigMap
/// alone, lets the app read that Practitioner (`client.user.read()`) and refuses another's. A second
/// user without a value: `getFhirUser()` is null, and the server's 403 says why and what to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_app_learns_who_signed_in_and_the_server_keeps_them_to_their_compartment() {
    let Some((_browser, tools)) = with_a_browser("the SMART launch").await else {
        return;
    };
    let smart = json!({"smart": {"enabled": true, "fhirUserClaim": true}});
    let (h, port) = harness("fhir-user", smart, |cfg| {
        cfg.tenants[0].users = vec![clinician(), nurse()];
        may_map_claims(cfg);
    })
    .await;
    let redirect = format!("http://localhost:{}/callback", free_port());
    h.apply::<FhirClientApp>(client_app(
        "smart",
        json!({"type": "Public", "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": [redirect], "scopes": ["patient/*.read", "launch/patient", "fhirUser"]}),
    ))
    .await
    .unwrap();
    let data = secret(&h, "smart").await;
    let me = format!("Practitioner/{PRACTITIONER}");
    let attribute = the_users_value(&h, "smart", USER_OID, &me).await;
    let cm = config_map(&h, "fhir").await;
    let server = serve(&h, &tools, &cm, port).await;
    assert_eq!(
        server.fhir_user_claim.as_deref(),
        Some("fhirUser"),
        "from the ConfigMap"
    );
    for user in [USER_OID, NURSE_OID] {
        assign_user_role(&h, &cm["CLIENT_ID"], user, "globalReader").await;
    }

    let colleague = format!("Practitioner/{COLLEAGUE}");
    let other = [("OTHER_RESOURCE", colleague.clone())];
    let r = signed_in_app(&h, &tools, "smart-app.mjs", &data, &cm, &other).await;
    assert_eq!(r["fhirUser"], me.as_str(), "client.getFhirUser(): {r}");
    assert_eq!(r["idToken"]["fhirUser"], me.as_str(), "{r}");
    assert_eq!(
        r["token"]["fhirUser"],
        me.as_str(),
        "the FHIR API's access token: {r}"
    );
    assert_eq!(r["user"]["status"], 200, "client.user.read(): {r}");
    assert_eq!(r["user"]["resourceType"], "Practitioner", "{r}");
    assert_eq!(r["user"]["id"], PRACTITIONER, "{r}");
    assert_eq!(r["other"]["status"], 403, "{colleague}: {r}");
    let why = r["other"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("outside the user's compartment"), "{r}");
    assert_eq!(r["patient"]["status"], 200, "{r}");

    let as_nurse = [
        ("OTHER_RESOURCE", colleague.clone()),
        ("USER_NAME", NURSE.to_string()),
    ];
    let r = signed_in_app(&h, &tools, "smart-app.mjs", &data, &cm, &as_nurse).await;
    assert_eq!(r["fhirUser"], Value::Null, "no value, no claim: {r}");
    assert_eq!(r["idToken"]["fhirUser"], Value::Null, "{r}");
    assert_eq!(r["token"]["fhirUser"], Value::Null, "{r}");
    assert_eq!(r["patient"]["status"], 403, "{r}");
    let why = r["patient"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("carries no 'fhirUser' claim"), "{r}");
    assert!(why.contains(&attribute), "names the extension to set: {r}");
    assert_eq!(r["other"]["status"], 403, "{r}");
}

/// MSAL sees the claim: msal-node's `idTokenClaims` and the FHIR API's access token carry the user's
/// `fhirUser` (`Patient/pat-1`, a patient signing in to a portal). A SMART v2 scope
/// (`patient/Patient.rs`) is granted and enforced with the claim on: the user reads their own Patient,
/// a search returns only them (their compartment), another Patient is refused, and a create and an
/// Observation search are refused by the scope (the user's role, globalWriter, would allow them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_sees_fhir_user_and_a_smart_v2_scope_is_enforced_in_the_compartment() {
    let smart = json!({"smart": {"enabled": true, "fhirUserClaim": true,
                                 "scopes": ["patient/Patient.rs", "patient/*.read", "fhirUser"]}});
    let scopes = json!(["patient/Patient.rs"]);
    let me = format!("Patient/{PATIENT}");
    let other = [("OTHER_RESOURCE", format!("Patient/{IN_CONTEXT}"))];
    let Some(r) = web_app_for_the_clinician(
        "fhir-msal",
        smart,
        scopes,
        "globalWriter",
        Some(&me),
        &other,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        r["idToken"]["fhirUser"],
        me.as_str(),
        "MSAL's idTokenClaims: {r}"
    );
    assert_eq!(r["token"]["fhirUser"], me.as_str(), "the access token: {r}");
    patient_rs_is_granted_and_enforced(&r);
    assert_eq!(
        r["search"]["ids"],
        json!([PATIENT]),
        "narrowed to the compartment: {r}"
    );
    assert_eq!(r["otherResource"]["status"], 403, "{r}");
    let why = r["otherResource"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("outside the user's compartment"), "{r}");
}
