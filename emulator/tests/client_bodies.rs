//! Bodies real Entra clients send, accepted or refused as Entra does (issue 24: nais/azurerator's
//! role/scope pairs, certificates as base64 of PEM), and what the call log keeps of a request.
mod common;
use common::*;
use entra_emulator::crypto;
use serde_json::{Value, json};

async fn setup() -> (entra_emulator::Running, reqwest::Client, Graph) {
    let (emu, c) = start(config()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    (emu, c, op)
}

/// An app role as nais/azurerator builds one (`approle.New`: description = displayName = value).
fn azurerator_role(id: &str, name: &str) -> Value {
    json!({"allowedMemberTypes": ["Application"], "description": name, "displayName": name,
           "id": id, "isEnabled": true, "value": name})
}

/// A scope as nais/azurerator builds one (`permissionscope.New`).
fn azurerator_scope(id: &str, name: &str) -> Value {
    json!({"adminConsentDescription": name, "adminConsentDisplayName": name, "id": id,
           "isEnabled": true, "type": "User", "value": name})
}

/// azurerator's create body: the default role `access_as_application` also registered as a scope
/// under the same id, next to its default scope `defaultaccess`.
fn azurerator_create_body(name: &str) -> Value {
    let pair_id = "00000001-abcd-9001-0000-000000000000";
    json!({
        "displayName": name,
        "appRoles": [azurerator_role(pair_id, "access_as_application")],
        "api": {"oauth2PermissionScopes": [
            azurerator_scope(pair_id, "access_as_application"),
            azurerator_scope("00000000-1337-d34d-b33f-000000000000", "defaultaccess"),
        ]},
    })
}

#[tokio::test]
async fn role_and_scope_may_share_an_id_only_as_one_permission() {
    let (emu, _c, op) = setup().await;
    let r = op
        .post("/applications", azurerator_create_body("azurerator-app"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["appRoles"][0]["id"],
        r.body["api"]["oauth2PermissionScopes"][0]["id"]
    );

    // One id, different values: refused with the text Entra gives (MicrosoftDocs/azure-docs#81899).
    let id = uuid();
    let r = op
        .post(
            "/applications",
            json!({"displayName": "mismatch",
            "appRoles": [azurerator_role(&id, "Read.All")],
            "api": {"oauth2PermissionScopes": [azurerator_scope(&id, "Write.All")]}}),
        )
        .await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "Request_BadRequest")
    );
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("The following values must match for the 'oauth2Permissions' and 'appRoles' properties with identifier '{id}'")),
        "{msg}"
    );
    // One id and value, but another description: refused the same way.
    let mut scope = azurerator_scope(&id, "Read.All");
    scope["adminConsentDescription"] = json!("something else");
    let r = op
        .post(
            "/applications",
            json!({"displayName": "mismatch",
            "appRoles": [azurerator_role(&id, "Read.All")],
            "api": {"oauth2PermissionScopes": [scope]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // One value under two ids: "It contains duplicate value".
    let r = op
        .post(
            "/applications",
            json!({"displayName": "two ids",
            "appRoles": [azurerator_role(&uuid(), "Read.All")],
            "api": {"oauth2PermissionScopes": [azurerator_scope(&uuid(), "Read.All")]}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (400, Some("It contains duplicate value"))
    );
    // An id twice within one collection stays refused.
    let r = op
        .post(
            "/applications",
            json!({"displayName": "twice",
            "appRoles": [azurerator_role(&id, "A"), azurerator_role(&id, "B")]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = op
        .post("/applications", json!({"displayName": "twice",
            "api": {"oauth2PermissionScopes": [azurerator_scope(&id, "a"), azurerator_scope(&id, "b")]}}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    emu.shutdown().await;
}

/// `keyCredentials[].key` as the Terraform azuread provider and azurerator send it: base64 of the
/// certificate's PEM text.
#[tokio::test]
async fn certificate_as_base64_of_pem_is_accepted_and_signs_in() {
    let (emu, c, op) = setup().await;
    let (id, app_id) = app_with_service_principal(&op, "pem-cert").await;
    let app_id = app_id.as_str();

    let generated = rcgen::generate_simple_self_signed(vec!["pem.example".into()]).unwrap();
    let pem = generated.cert.pem();
    let key = |b64: String| json!({"type": "AsymmetricX509Cert", "usage": "Verify", "key": b64});
    let pem_key = |pem: &str| key(crypto::b64(pem.as_bytes()));
    let path = format!("/applications/{id}");
    let patch = |k: Value| op.patch(&path, json!({"keyCredentials": [k]}));
    let r = op
        .patch(
            &path,
            json!({"keyCredentials": [pem_key(&pem), pem_key(CLIENT_CERT)]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let kc = op.get(&path).await.body["keyCredentials"].clone();
    let thumbprint = crypto::b64(&crypto::sha1(generated.cert.der()));
    assert_eq!(
        kc[0]["customKeyIdentifier"],
        json!(thumbprint),
        "thumbprint of the DER"
    );
    assert_eq!(kc[0]["displayName"], "CN=rcgen self signed cert");
    assert!(kc[0]["key"].is_null());

    // The fixture certificate, uploaded as PEM, signs its client in.
    let (st, v) = cert_token(&c, &emu, app_id).await;
    assert_eq!(st, 200, "{v}");

    // base64url is not Edm.Binary: refused, as Graph does.
    let url_safe = crypto::b64url(generated.cert.der());
    assert!(
        url_safe.contains(['-', '_']),
        "the test needs a key with '-' or '_'"
    );
    let message = refusal(patch(key(url_safe)).await);
    assert!(
        message.ends_with("to the expected type 'Edm.Binary'."),
        "{message}"
    );

    // PEM of something else than a certificate is still refused.
    let not_a_cert = generated.signing_key.serialize_pem();
    let message = refusal(patch(pem_key(&not_a_cert)).await);
    assert!(
        message.starts_with("Key credential is not a valid X.509 certificate"),
        "{message}"
    );
    emu.shutdown().await;
}

/// The message of a 400 answer.
fn refusal(r: Resp) -> String {
    assert_eq!(r.status, 400, "{}", r.body);
    r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn call_log_keeps_the_query_and_the_error_code() {
    let (emu, c, op) = setup().await;
    // As an SDK sends it: the quotes percent-encoded; logged byte for byte.
    let filter = "$filter=startswith(displayName,%27pem%27)&$top=5";
    assert_eq!(op.get(&format!("/applications?{filter}")).await.status, 200);
    let r = op
        .post(
            "/applications",
            json!({"displayName": "x", "appRoles": [azurerator_role("not-a-guid", "A")]}),
        )
        .await;
    assert_eq!(r.status, 400);
    let (st, _) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        "wrong-secret",
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 401);

    let calls = emu.calls();
    let list = calls
        .iter()
        .find(|c| c.method == "GET" && c.path.ends_with("/applications"))
        .expect("the list is logged");
    assert_eq!(list.query, filter);
    assert_eq!(list.error_code, None);
    let refused = calls
        .iter()
        .find(|c| c.method == "POST" && c.path.ends_with("/applications"))
        .expect("the create is logged");
    assert_eq!(
        (refused.status, refused.error_code.as_deref()),
        (400, Some("Request_BadRequest"))
    );
    let token = calls
        .iter()
        .rev()
        .find(|c| c.path.ends_with("/oauth2/v2.0/token"))
        .unwrap();
    assert_eq!(
        (token.status, token.error_code.as_deref(), token.aadsts_code),
        (401, Some("invalid_client"), Some(7000215))
    );
    assert_eq!(token.query, "", "a form body is not logged");
    emu.shutdown().await;
}
