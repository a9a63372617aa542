//! App management policies: the default policy and custom ones, their assignment, and where Entra
//! enforces them (addPassword, key credentials, newly added identifier URIs). Bodies are the ones
//! the Graph docs' examples and az cli send (docs/entra-facts/lifecycle-and-policies.md §3).
mod common;
use common::*;
use serde_json::{Value, json};

const DEFAULT_ID: &str = "00000000-0000-0000-0000-000000000000";
const URI_REFUSED: &str = "All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, as per the default tenant policy of your organization. See https://aka.ms/identifier-uri-addition-error for more information on this error.";

async fn setup() -> (entra_emulator::Running, Graph, Graph) {
    let (emu, c) = start(config()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    (emu, op, admin)
}

/// az cli's `az ad app credential reset --append --end-date …` body.
fn password(days: i64) -> Value {
    let end = chrono::Utc::now() + chrono::Duration::days(days);
    json!({"passwordCredential": {"displayName": "rbac", "endDateTime": end.to_rfc3339()}})
}

async fn new_app(g: &Graph, body: Value) -> (String, String) {
    let r = g.post("/applications", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s = |k: &str| r.body[k].as_str().unwrap().to_string();
    (s("id"), s("appId"))
}

async fn patch_default(admin: &Graph, body: Value) {
    let r = admin
        .patch("/policies/defaultAppManagementPolicy", body)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

#[tokio::test]
async fn a_fresh_tenant_has_microsofts_default_policy_and_permissions_are_checked() {
    let (emu, op, admin) = setup().await;
    let r = admin.get("/policies/defaultAppManagementPolicy").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/$metadata#policies/defaultAppManagementPolicy/$entity")
    );
    assert_eq!(r.body["id"], DEFAULT_ID);
    assert_eq!(
        r.body["displayName"],
        "Default app management tenant policy"
    );
    assert_eq!(r.body["isEnabled"], true);
    let rule = &r.body["applicationRestrictions"]["identifierUris"]["uriAdditionWithoutUniqueTenantIdentifier"];
    assert_eq!(
        (
            &rule["state"],
            &rule["excludeAppsReceivingV2Tokens"],
            &rule["isStateSetByMicrosoft"]
        ),
        (&json!("enabled"), &json!(true), &json!(true))
    );
    // Application.ReadWrite.OwnedBy reads and writes no policy: the emulator's usual 403.
    for r in [
        op.get("/policies/defaultAppManagementPolicy").await,
        op.get("/policies/appManagementPolicies").await,
        op.patch(
            "/policies/defaultAppManagementPolicy",
            json!({"isEnabled": false}),
        )
        .await,
    ] {
        assert_eq!(
            (r.status, err_code(&r).as_str()),
            (403, "Authorization_RequestDenied")
        );
    }
    // The docs' update example (Learn tenantappmanagementpolicy-update).
    patch_default(&admin, json!({"isEnabled": true, "applicationRestrictions": {
        "passwordCredentials": [
            {"restrictionType": "passwordAddition", "maxLifetime": null, "restrictForAppsCreatedAfterDateTime": "2021-01-01T10:37:00Z"},
            {"restrictionType": "passwordLifetime", "maxLifetime": "P90D", "restrictForAppsCreatedAfterDateTime": "2017-01-01T10:37:00Z"},
            {"restrictionType": "symmetricKeyAddition", "maxLifetime": null, "restrictForAppsCreatedAfterDateTime": "2021-01-01T10:37:00Z"},
            {"restrictionType": "symmetricKeyLifetime", "maxLifetime": "P90D", "restrictForAppsCreatedAfterDateTime": "2021-01-01T10:37:00Z"}],
        "keyCredentials": [
            {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P90D", "restrictForAppsCreatedAfterDateTime": "2021-01-01T10:37:00Z"}]}}))
        .await;
    let r = admin.get("/policies/defaultAppManagementPolicy").await;
    assert_eq!(
        r.body["applicationRestrictions"]["passwordCredentials"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        r.body["applicationRestrictions"]["identifierUris"]["uriAdditionWithoutUniqueTenantIdentifier"]
            ["state"],
        "enabled",
        "a PATCH without identifierUris keeps them"
    );
    // A restriction type twice, or a lifetime without a duration: refused.
    for bad in [
        json!([{"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}, {"restrictionType": "passwordLifetime", "maxLifetime": "P30D"}]),
        json!([{"restrictionType": "passwordLifetime", "maxLifetime": "ninety days"}]),
    ] {
        let r = admin
            .patch(
                "/policies/defaultAppManagementPolicy",
                json!({"applicationRestrictions": {"passwordCredentials": bad}}),
            )
            .await;
        assert_eq!(
            (r.status, err_code(&r).as_str()),
            (400, "Request_BadRequest")
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn add_password_blocked_or_capped_by_the_default_policy_unless_disabled() {
    let (emu, op, admin) = setup().await;
    let (id, _) = new_app(&op, json!({"displayName": "secrets"})).await;
    let path = format!("/applications/{id}/addPassword");
    let add = |body: Value| op.post(&path, body);
    patch_default(&admin, json!({"applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordAddition", "maxLifetime": null, "restrictForAppsCreatedAfterDateTime": null}]}}))
        .await;
    let r = add(password(30)).await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "CredentialTypeNotAllowedAsPerAppPolicy".into(),
            format!("Credential type not allowed as per assigned policy '{DEFAULT_ID}'.")
        )
    );
    // The lifetime cap: a two-year default (body `{}`, as azure-cli#28522 sent it) is refused with
    // that body; 30 days pass.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}]}}),
    )
    .await;
    let r = add(json!({})).await;
    let message = format!(
        "Credential lifetime exceeds the max value allowed as per assigned policy '{DEFAULT_ID}'."
    );
    assert_eq!(
        refusal(&r),
        (
            400,
            "CredentialInvalidLifetimeAsPerAppPolicy".into(),
            message.clone()
        )
    );
    assert_eq!(
        r.body["error"]["details"],
        json!([{"code": "InvalidKeyEndDate", "message": message, "target": "EndDate"}])
    );
    assert_eq!(add(password(30)).await.status, 200);
    assert_eq!(add(password(91)).await.status, 400);
    // A restriction for apps created after a date in the future does not apply to this app.
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordAddition", "restrictForAppsCreatedAfterDateTime": later}]}}),
    )
    .await;
    assert_eq!(add(json!({})).await.status, 200);
    // Disabled restriction, then disabled policy: nothing is enforced.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordAddition", "state": "disabled"}]}}),
    )
    .await;
    assert_eq!(add(json!({})).await.status, 200);
    patch_default(
        &admin,
        json!({"isEnabled": false, "applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordAddition"}]}}),
    )
    .await;
    assert_eq!(add(json!({})).await.status, 200);
    emu.shutdown().await;
}

/// A service principal's password (`POST /servicePrincipals/{id}/addPassword`, azure-cli's
/// `test_sp_credential` body) obeys `servicePrincipalRestrictions`, not the application's
/// restrictions (Learn `resources/tenantappmanagementpolicy`).
#[tokio::test]
async fn a_service_principals_password_obeys_the_service_principal_restrictions() {
    let (emu, op, admin) = setup().await;
    let (id, app_id) = new_app(&op, json!({"displayName": "sp-secrets"})).await;
    let r = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sp_path = format!(
        "/servicePrincipals/{}/addPassword",
        r.body["id"].as_str().unwrap()
    );
    let app_path = format!("/applications/{id}/addPassword");
    patch_default(&admin, json!({"servicePrincipalRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordAddition", "maxLifetime": null, "restrictForAppsCreatedAfterDateTime": null}]}}))
        .await;
    let r = op.post(&sp_path, password(30)).await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "CredentialTypeNotAllowedAsPerAppPolicy".into(),
            format!("Credential type not allowed as per assigned policy '{DEFAULT_ID}'.")
        )
    );
    assert_eq!(
        op.post(&app_path, password(30)).await.status,
        200,
        "the application's own restrictions are empty"
    );
    patch_default(&admin, json!({"servicePrincipalRestrictions": {"passwordCredentials": []},
        "applicationRestrictions": {"passwordCredentials": [{"restrictionType": "passwordAddition"}]}}))
        .await;
    assert_eq!(op.post(&sp_path, password(30)).await.status, 200);
    assert_eq!(op.post(&app_path, password(30)).await.status, 400);
    emu.shutdown().await;
}

/// The docs' create example (Learn appmanagementpolicy-post), with a password block.
fn custom_body() -> Value {
    json!({"displayName": "Credential management policy",
        "description": "Cred policy sample", "isEnabled": true,
        "restrictions": {"passwordCredentials": [
            {"restrictionType": "passwordAddition", "maxLifetime": null, "restrictForAppsCreatedAfterDateTime": "2019-10-19T10:37:00Z"}],
            "keyCredentials": []}})
}

#[tokio::test]
async fn a_custom_policy_assigned_to_an_application_replaces_the_default() {
    let (emu, op, admin) = setup().await;
    let r = admin
        .post("/policies/appManagementPolicies", custom_body())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#policies/appManagementPolicies/$entity")
    );
    let pid = r.body["id"].as_str().unwrap().to_string();
    let missing = admin
        .post(
            "/policies/appManagementPolicies",
            json!({"displayName": "no description"}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        admin.get("/policies/appManagementPolicies").await.body["value"][0]["id"],
        pid
    );
    let (id, app_id) = new_app(&op, json!({"displayName": "assigned"})).await;
    // The default caps at 90 days; the custom policy blocks passwords and caps nothing.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"passwordCredentials": [
        {"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}]}}),
    )
    .await;
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/policies/appManagementPolicies/{pid}")});
    let by_app_id = format!("/applications(appId='{app_id}')/appManagementPolicies/$ref");
    let r = op.post(&by_app_id, reference.clone()).await;
    assert_eq!(
        r.status, 403,
        "assigning needs Policy.ReadWrite.ApplicationConfiguration"
    );
    assert_eq!(admin.post(&by_app_id, reference.clone()).await.status, 204);
    let second = admin
        .post("/policies/appManagementPolicies", custom_body())
        .await;
    let other = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/policies/appManagementPolicies/{}", second.body["id"].as_str().unwrap())});
    let r = admin
        .post(
            &format!("/applications/{id}/appManagementPolicies/$ref"),
            other,
        )
        .await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "Request_MultipleObjectsWithSameKeyValue"),
        "only one policy per object"
    );
    let listed = admin
        .get(&format!("/applications/{id}/appManagementPolicies"))
        .await;
    assert_eq!(listed.body["value"][0]["id"], pid);
    let applies = admin
        .get(&format!("/policies/appManagementPolicies/{pid}/appliesTo"))
        .await;
    assert_eq!(applies.body["value"][0]["id"], id.as_str());
    assert_eq!(
        applies.body["value"][0]["@odata.type"],
        "#microsoft.graph.application"
    );
    let path = format!("/applications/{id}/addPassword");
    let add = || op.post(&path, json!({}));
    let r = add().await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "CredentialTypeNotAllowedAsPerAppPolicy".into(),
            format!("Credential type not allowed as per assigned policy '{pid}'.")
        )
    );
    // Disabled, the custom policy is not evaluated and the default is not inherited.
    let r = admin
        .patch(
            &format!("/policies/appManagementPolicies/{pid}"),
            json!({"isEnabled": false}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(add().await.status, 200, "a two-year secret");
    // Unassigned, the default applies again.
    let r = admin
        .delete(&format!(
            "/applications/{id}/appManagementPolicies/{pid}/$ref"
        ))
        .await;
    assert_eq!(r.status, 204);
    assert!(
        admin
            .get(&format!("/applications/{id}/appManagementPolicies"))
            .await
            .body["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        err_code(&add().await),
        "CredentialInvalidLifetimeAsPerAppPolicy"
    );
    assert_eq!(
        admin
            .delete(&format!("/policies/appManagementPolicies/{pid}"))
            .await
            .status,
        204
    );
    assert_eq!(
        admin
            .get(&format!("/policies/appManagementPolicies/{pid}"))
            .await
            .status,
        404
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_service_principals_policy_is_not_restored_with_it() {
    let (emu, op, admin) = setup().await;
    let (_, app_id) = app_with_service_principal(&op, "restored").await;
    let sp = op
        .get(&format!("/servicePrincipals(appId='{app_id}')"))
        .await;
    let sp_id = sp.body["id"].as_str().unwrap().to_string();
    let pid = admin
        .post("/policies/appManagementPolicies", custom_body())
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/policies/appManagementPolicies/{pid}")});
    let path = format!("/servicePrincipals/{sp_id}/appManagementPolicies");
    assert_eq!(
        admin.post(&format!("{path}/$ref"), reference).await.status,
        204
    );
    assert_eq!(admin.get(&path).await.body["value"][0]["id"], pid);
    assert_eq!(
        admin
            .delete(&format!("/servicePrincipals/{sp_id}"))
            .await
            .status,
        204
    );
    let r = admin
        .post(
            &format!("/directory/deletedItems/{sp_id}/restore"),
            json!(null),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin.get(&path).await.body["value"],
        json!([]),
        "policies can't be recovered (Learn delete-recover-faq)"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn newly_added_identifier_uris_obey_the_tenant_identifier_rule() {
    let (emu, op, admin) = setup().await;
    let tid = emu.tenant_id();
    let r = op
        .post(
            "/applications",
            json!({"displayName": "fhir", "identifierUris": ["api://fhir-server"]}),
        )
        .await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "InvalidUniqueTenantIdentifierAsPerAppPolicy".into(),
            format!("Failed to add identifier URI api://fhir-server. {URI_REFUSED}")
        )
    );
    for ok in [
        format!("api://{tid}/fhir-server"),
        "https://fhir.contoso.example".into(),
        "https://contoso.onmicrosoft.com/fhir".into(),
    ] {
        new_app(&op, json!({"displayName": "fhir", "identifierUris": [ok]})).await;
    }
    // The upsert checks the same way.
    let r = op
        .req(
            "PATCH",
            "/applications(uniqueName='fhir-upsert')",
            Some(json!({"displayName": "fhir", "identifierUris": ["api://fhir-upsert"]})),
            &[("Prefer", "create-if-missing")],
        )
        .await;
    assert_eq!(err_code(&r), "InvalidUniqueTenantIdentifierAsPerAppPolicy");
    // A v2-token app is exempt, and cannot go back to v1 while it holds such a URI.
    let (v2, _) = new_app(
        &op,
        json!({"displayName": "v2", "api": {"requestedAccessTokenVersion": 2},
        "identifierUris": ["api://fhir-v2"]}),
    )
    .await;
    let r = op
        .patch(
            &format!("/applications/{v2}"),
            json!({"api": {"requestedAccessTokenVersion": 1}}),
        )
        .await;
    assert_eq!(err_code(&r), "InvalidUniqueTenantIdentifierAsPerAppPolicy");
    // Only newly added URIs are checked: one added while the policy was off stays.
    patch_default(&admin, json!({"isEnabled": false})).await;
    let (old, app_id) = new_app(
        &op,
        json!({"displayName": "legacy", "identifierUris": ["api://legacy"]}),
    )
    .await;
    patch_default(&admin, json!({"isEnabled": true})).await;
    let path = format!("/applications/{old}");
    let patch = |uris: Value| op.patch(&path, json!({"identifierUris": uris}));
    assert_eq!(
        patch(json!(["api://legacy", format!("api://{app_id}")]))
            .await
            .status,
        204
    );
    assert_eq!(
        err_code(&patch(json!(["api://legacy", "api://other"])).await),
        "InvalidUniqueTenantIdentifierAsPerAppPolicy"
    );
    // The stricter rule: only api://{appId} and api://{tenantId}/{appId}.
    patch_default(&admin, json!({"applicationRestrictions": {"identifierUris": {
        "nonDefaultUriAddition": {"state": "enabled", "excludeAppsReceivingV2Tokens": true, "excludeSaml": true}}}}))
        .await;
    let r = patch(json!(["api://legacy", format!("api://{tid}/other")])).await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "InvalidNonDefaultUriAsPerAppPolicy".into(),
            format!(
                "The newly added URI api://{tid}/other must comply with the format 'api://{{appId}}' or 'api://{{tenantId}}/{{appId}}' as per the default app management policy of your organization. If the requestedAccessTokenVersion is set to 2, this restriction may not apply. See https://aka.ms/identifier-uri-addition-error for more information on this error."
            )
        )
    );
    assert_eq!(
        patch(json!(["api://legacy", format!("api://{tid}/{app_id}")]))
            .await
            .status,
        204
    );
    // Turned off by the tenant, the URI rule is not evaluated.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"identifierUris": {
        "nonDefaultUriAddition": null,
        "uriAdditionWithoutUniqueTenantIdentifier": {"state": "disabled"}}}}),
    )
    .await;
    new_app(
        &op,
        json!({"displayName": "free", "identifierUris": ["api://free"]}),
    )
    .await;
    let p = admin.get("/policies/defaultAppManagementPolicy").await;
    assert_eq!(
        p.body["applicationRestrictions"]["identifierUris"]["uriAdditionWithoutUniqueTenantIdentifier"]
            ["isStateSetByMicrosoft"],
        false
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn certificate_lifetime_capped_on_new_key_credentials_only() {
    let (emu, op, admin) = setup().await;
    let (id, _) = new_app(&op, json!({"displayName": "certs"})).await;
    let der = entra_emulator::crypto::cert_der_from_pem(CLIENT_CERT).unwrap();
    // What azure-cli's `az ad app credential reset --cert` PATCHes.
    let key = json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify",
        "key": entra_emulator::crypto::b64(&der), "displayName": "CN=test"}]});
    // The fixture certificate is valid for ten years.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"keyCredentials": [
        {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P365D"}]}}),
    )
    .await;
    let r = op.patch(&format!("/applications/{id}"), key.clone()).await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "CredentialInvalidLifetimeAsPerAppPolicy".into(),
            format!(
                "Credential lifetime exceeds the max value allowed as per assigned policy '{DEFAULT_ID}'."
            )
        )
    );
    let r = op
        .post(
            "/applications",
            json!({"displayName": "certs2", "keyCredentials": key["keyCredentials"]}),
        )
        .await;
    assert_eq!(err_code(&r), "CredentialInvalidLifetimeAsPerAppPolicy");
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"keyCredentials": [
        {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P3660D"}]}}),
    )
    .await;
    assert_eq!(
        op.patch(&format!("/applications/{id}"), key).await.status,
        204
    );
    // Kept (same keyId) under a tighter cap: not new, not checked.
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"keyCredentials": [
        {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P30D"}]}}),
    )
    .await;
    let kept = op.get(&format!("/applications/{id}")).await.body["keyCredentials"].clone();
    let r = op
        .patch(
            &format!("/applications/{id}"),
            json!({"keyCredentials": kept, "displayName": "certs renamed"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    emu.shutdown().await;
}

/// A self-signed certificate (DER, base64) valid between the two dates.
fn certificate(from: (i32, u8, u8), to: (i32, u8, u8)) -> String {
    let mut params = rcgen::CertificateParams::new(vec!["added.contoso.example".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    entra_emulator::crypto::b64(cert.der())
}

/// The proof of possession the docs' sample builds: signed by the application's certificate,
/// `aud` 00000002-0000-0000-c000-000000000000, `iss` the application's object id, 10 minutes.
fn proof(iss: &str) -> String {
    let der = entra_emulator::crypto::cert_der_from_pem(CLIENT_CERT).unwrap();
    let key = entra_emulator::crypto::parse_private_key(CLIENT_KEY).unwrap();
    let now = chrono::Utc::now().timestamp();
    entra_emulator::crypto::sign_rs256(
        &key,
        &json!({"alg": "RS256", "typ": "JWT", "x5t": entra_emulator::crypto::b64(&entra_emulator::crypto::sha1(&der))}),
        &json!({"aud": "00000002-0000-0000-c000-000000000000", "iss": iss, "nbf": now, "exp": now + 600}),
    )
}

#[tokio::test]
async fn add_key_needs_a_proof_and_obeys_the_certificate_lifetime_cap() {
    let (emu, op, admin) = setup().await;
    let (id, _) = new_app(&op, json!({"displayName": "rolled"})).await;
    let der = entra_emulator::crypto::cert_der_from_pem(CLIENT_CERT).unwrap();
    let r = op
        .patch(
            &format!("/applications/{id}"),
            json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify",
                "key": entra_emulator::crypto::b64(&der)}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let path = format!("/applications/{id}/addKey");
    // The docs' example body.
    let body = |key: String, proof: Option<String>| {
        json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": key},
            "passwordCredential": null, "proof": proof})
    };
    let one_year = || certificate((2026, 6, 1), (2027, 5, 1));
    let r = op.post(&path, body(one_year(), None)).await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (403, "Authorization_RequestDenied")
    );
    let r = op
        .post(&path, body(one_year(), Some(proof("someone-else"))))
        .await;
    assert_eq!(
        refusal(&r),
        (
            401,
            "Authentication_MissingOrMalformed".into(),
            "Access Token missing or malformed.".into()
        )
    );
    patch_default(
        &admin,
        json!({"applicationRestrictions": {"keyCredentials": [
        {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P400D"}]}}),
    )
    .await;
    let ten_years = certificate((2026, 6, 1), (2036, 6, 1));
    let r = op.post(&path, body(ten_years, Some(proof(&id)))).await;
    assert_eq!(err_code(&r), "CredentialInvalidLifetimeAsPerAppPolicy");
    let r = op.post(&path, body(one_year(), Some(proof(&id)))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], "AsymmetricX509Cert");
    assert_eq!(r.body["key"], Value::Null);
    let keys = op.get(&format!("/applications/{id}")).await.body["keyCredentials"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn microsofts_exemption_guide_exempts_one_application_from_the_uri_rule() {
    let (emu, op, admin) = setup().await;
    let (id, app_id) = new_app(&op, json!({"displayName": "exempt"})).await;
    // microsoft/entra-apps-identifier-uri-protection `grant-app-exemption.md`, as written (beta).
    let beta = emu.graph_url().replace("/v1.0", "/beta");
    let r = admin
        .post(
            &format!("{beta}/policies/appManagementPolicies"),
            json!({"isEnabled": true, "applicationRestrictions": {"identifierUris": {
                "uriAdditionWithoutUniqueTenantIdentifier": {"state": "disabled",
                    "excludeAppsReceivingV2Tokens": true, "excludeSaml": true}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.body["id"].as_str().unwrap();
    let r = admin
        .post(
            &format!("{beta}/applications(appId='{app_id}')/appManagementPolicies/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/beta/policies/appManagementPolicies/{pid}")}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = op
        .patch(
            &format!("/applications/{id}"),
            json!({"identifierUris": ["api://exempt"]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Another application is still held to the tenant default.
    let r = op
        .post(
            "/applications",
            json!({"displayName": "not exempt", "identifierUris": ["api://not-exempt"]}),
        )
        .await;
    assert_eq!(err_code(&r), "InvalidUniqueTenantIdentifierAsPerAppPolicy");
    emu.shutdown().await;
}
