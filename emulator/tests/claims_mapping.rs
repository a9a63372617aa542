//! Directory extensions, claims-mapping policies and the tokens they shape: the AHDS SMART
//! sample's `fhirUser` setup (extension on the FHIR resource app, a user's value, a policy on the
//! resource's and the client's service principals, `acceptMappedClaims`), and Entra's refusals.
mod common;
use common::signin::*;
use common::{Graph, Resp, err_code, verify_with_jwks};
use serde_json::{Value, json};

const VALUE: &str = "Practitioner/123";

fn admin(f: &Fixture) -> Graph {
    Graph::new(&f.c, &f.emu, &f.emu.admin_token(&f.tid))
}

async fn post_extension(g: &Graph, f: &Fixture, name: &str, data_type: &str) -> Resp {
    g.post(
        &format!(
            "/applications(appId='{}')/extensionProperties",
            f.api_app_id
        ),
        json!({"name": name, "dataType": data_type, "targetObjects": ["User"]}),
    )
    .await
}

/// The AHDS `Create-FhirUserDirectoryExtension.ps1` body on the API app; the extension's full name.
async fn fhir_user_extension(g: &Graph, f: &Fixture) -> String {
    let r = post_extension(g, f, "fhirUser", "String").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let name = r.body["name"].as_str().unwrap().to_string();
    assert_eq!(
        name,
        format!("extension_{}_fhirUser", f.api_app_id.replace('-', ""))
    );
    name
}

/// The claims-mapping policy every AHDS sample uses, as Graph's create example sends it.
async fn fhir_user_policy(g: &Graph, ext: &str) -> String {
    let def = format!(
        r#"{{"ClaimsMappingPolicy":{{"Version":1,"IncludeBasicClaimSet":"true","ClaimsSchema":[{{"Source":"user","ExtensionID":"{ext}","JwtClaimType":"fhirUser"}}]}}}}"#
    );
    let r = g
        .post(
            "/policies/claimsMappingPolicies",
            json!({"definition": [def], "displayName": "fhirUser-mapping"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["isOrganizationDefault"], false);
    r.body["id"].as_str().unwrap().to_string()
}

async fn assign(g: &Graph, app_id: &str, policy: &str) -> Resp {
    g.post(
        &format!("/servicePrincipals(appId='{app_id}')/claimsMappingPolicies/$ref"),
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/policies/claimsMappingPolicies/{policy}")}),
    )
    .await
}

async fn unassign(g: &Graph, sp: &str, policy: &str) -> Resp {
    g.delete(&format!(
        "/servicePrincipals/{sp}/claimsMappingPolicies/{policy}/$ref"
    ))
    .await
}

/// The policies assigned to a service principal.
async fn assigned(g: &Graph, sp: &str) -> Vec<Value> {
    let r = g
        .get(&format!("/servicePrincipals/{sp}/claimsMappingPolicies"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["value"].as_array().unwrap().clone()
}

async fn accept_mapped_claims(g: &Graph, app_id: &str) {
    let r = g
        .patch(
            &format!("/applications(appId='{app_id}')"),
            json!({"api": {"acceptMappedClaims": true}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

async fn set_value(g: &Graph, upn: &str, ext: &str, v: Value) -> Resp {
    g.patch(&format!("/users/{upn}"), json!({ ext: v })).await
}

/// `upn` signs in to the web client in a fresh browser; the code is redeemed: (status, body).
async fn sign_in_and_redeem(f: &Fixture, upn: &str) -> (u16, Value) {
    let scope = format!("{API_URI}/user_impersonation openid offline_access");
    sign_in_with_scope(f, upn, &scope).await
}

async fn sign_in_with_scope(f: &Fixture, upn: &str, scope: &str) -> (u16, Value) {
    let mut b = Browser::new(&f.emu);
    let mut r = b.get(&f.web_url(scope, &[("nonce", "n")])).await;
    r = b.sign_in(&f.tid, &r, upn, PW).await;
    if r.body.contains("id=\"permissions\"") {
        r = b.consent(&f.tid, &r, true, false).await;
    }
    assert_eq!(r.status, 302, "{}", r.body);
    redeem_web(f, &r.params()["code"]).await
}

/// The (access token, ID token) claims of a successful redemption.
async fn tokens_of(f: &Fixture, v: &Value) -> (Value, Value) {
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    let idt = verify_with_jwks(&f.c, &f.emu, v["id_token"].as_str().unwrap()).await;
    (at, idt)
}

#[tokio::test]
async fn extension_definitions_and_user_values_round_trip() {
    let f = fixture(1).await;
    let g = admin(&f);
    let ext = fhir_user_extension(&g, &f).await;
    let again = post_extension(&g, &f, "fhiruser", "String").await;
    assert_eq!(
        (again.status, err_code(&again)),
        (400, "Request_MultipleObjectsWithSameKeyValue".into())
    );
    assert_eq!(
        again.body["error"]["message"],
        format!(
            "An extension property exists with the name {}.",
            ext.replace("fhirUser", "fhiruser")
        )
    );
    let bad_type = post_extension(&g, &f, "x", "Text").await;
    assert_eq!(bad_type.status, 400, "{}", bad_type.body);
    let list = g
        .get(&format!(
            "/applications(appId='{}')/extensionProperties",
            f.api_app_id
        ))
        .await;
    assert_eq!(list.status, 200);
    let defs = list.body["value"].as_array().unwrap();
    assert_eq!(
        (defs.len(), defs[0]["appDisplayName"].as_str()),
        (1, Some("fhir-server"))
    );
    assert!(
        list.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/extensionProperties")
    );

    // Values: PATCH 204; only on $select through v1.0; absent for a user without one.
    assert_eq!(set_value(&g, ADA, &ext, json!(VALUE)).await.status, 204);
    let sel = format!("/users/{ADA}?$select=id,displayName,{ext}");
    let ada = g.get(&sel).await;
    assert_eq!(ada.status, 200, "{}", ada.body);
    assert_eq!(ada.body[&ext], VALUE);
    assert!(ada.body["@odata.context"].as_str().unwrap().contains(&ext));
    assert!(
        g.get(&format!("/users/{ADA}"))
            .await
            .body
            .get(&ext)
            .is_none()
    );
    let eve = g.get(&format!("/users/{EVE}?$select=id,{ext}")).await;
    assert!(eve.body.get(&ext).is_none(), "{}", eve.body);
    let listed = g
        .get(&format!("/users?$select=userPrincipalName,{ext}"))
        .await;
    let with: Vec<&Value> = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get(&ext).is_some())
        .collect();
    assert_eq!(with.len(), 1);

    // Refusals: an undefined extension, a wrong type, a caller without User.ReadWrite.All.
    let undefined = set_value(
        &g,
        ADA,
        "extension_00000000000000000000000000000000_x",
        json!("v"),
    )
    .await;
    assert_eq!(undefined.status, 400);
    assert_eq!(
        undefined.body["error"]["message"],
        "The following extension properties are not available: extension_00000000000000000000000000000000_x."
    );
    assert_eq!(set_value(&g, ADA, &ext, json!(42)).await.status, 400);
    assert_eq!(
        set_value(&f.g, ADA, &ext, json!("Practitioner/9"))
            .await
            .status,
        403
    );

    // Deleting the definition hides the value; the same name on the same app brings it back.
    let id = defs[0]["id"].as_str().unwrap();
    let del = g
        .delete(&format!(
            "/applications(appId='{}')/extensionProperties/{id}",
            f.api_app_id
        ))
        .await;
    assert_eq!(del.status, 204, "{}", del.body);
    assert!(g.get(&sel).await.body.get(&ext).is_none());
    assert_eq!(set_value(&g, ADA, &ext, json!("x")).await.status, 400);
    fhir_user_extension(&g, &f).await;
    assert_eq!(g.get(&sel).await.body[&ext], VALUE);
    // null removes it.
    assert_eq!(set_value(&g, ADA, &ext, Value::Null).await.status, 204);
    assert!(g.get(&sel).await.body.get(&ext).is_none());
}

#[tokio::test]
async fn claims_mapping_policies_crud_assignment_and_errors() {
    let f = fixture(1).await;
    let g = admin(&f);
    let ext = fhir_user_extension(&g, &f).await;
    let denied =
        f.g.post(
            "/policies/claimsMappingPolicies",
            json!({"definition": ["{}"], "displayName": "x"}),
        )
        .await;
    assert_eq!(
        denied.status, 403,
        "operator token lacks Policy.ReadWrite.ApplicationConfiguration"
    );
    let bad = g
        .post(
            "/policies/claimsMappingPolicies",
            json!({"definition": ["{\"ClaimsMappingPolicy\":{\"Version\":1,\"ClaimsTransformationz\":[]}}"], "displayName": "x"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body["error"]["message"],
        "Property definition has an invalid value."
    );
    let p = fhir_user_policy(&g, &ext).await;
    let got = g.get(&format!("/policies/claimsMappingPolicies/{p}")).await;
    assert_eq!(
        (got.status, got.body["displayName"].as_str()),
        (200, Some("fhirUser-mapping"))
    );
    assert_eq!(
        g.get("/policies/claimsMappingPolicies").await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(assign(&g, &f.api_app_id, &p).await.status, 204);
    let other = fhir_user_policy(&g, &ext).await;
    let second = assign(&g, &f.api_app_id, &other).await;
    assert_eq!(
        (second.status, err_code(&second)),
        (400, "Request_MultipleObjectsWithSameKeyValue".into())
    );
    let unbound = g
        .post(
            &format!("/servicePrincipals/{}/claimsMappingPolicies", f.api_sp),
            json!({"@odata.id": p}),
        )
        .await;
    assert_eq!(
        (unbound.status, err_code(&unbound)),
        (400, "BadRequest".into())
    );
    assert_eq!(assigned(&g, &f.api_sp).await[0]["id"], p.as_str());
    let applies = g
        .get(&format!("/policies/claimsMappingPolicies/{p}/appliesTo"))
        .await;
    assert_eq!(applies.body["value"][0]["id"], f.api_sp.as_str());
    assert_eq!(
        applies.body["value"][0]["@odata.type"],
        "#microsoft.graph.servicePrincipal"
    );

    let patch = g
        .patch(
            &format!("/policies/claimsMappingPolicies/{p}"),
            json!({"displayName": "renamed"}),
        )
        .await;
    assert_eq!(patch.status, 204);
    let wrong = unassign(&g, &f.api_sp, &other).await;
    assert_eq!(wrong.status, 404);
    let un = unassign(&g, &f.api_sp, &p).await;
    assert_eq!(un.status, 204);
    assert!(assigned(&g, &f.api_sp).await.is_empty());
    assert_eq!(
        g.delete(&format!("/policies/claimsMappingPolicies/{p}"))
            .await
            .status,
        204
    );
    assert_eq!(
        g.get(&format!("/policies/claimsMappingPolicies/{p}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn fhir_user_reaches_the_access_token_and_the_id_token() {
    let f = fixture(1).await;
    let g = admin(&f);
    let ext = fhir_user_extension(&g, &f).await;
    assert_eq!(set_value(&g, ADA, &ext, json!(VALUE)).await.status, 204);
    let p = fhir_user_policy(&g, &ext).await;
    assert_eq!(assign(&g, &f.api_app_id, &p).await.status, 204);
    assert_eq!(assign(&g, &f.web, &p).await.status, 204);

    // Without acceptMappedClaims on the resource app: AADSTS50146 at the token endpoint.
    let (st, v) = sign_in_and_redeem(&f, ADA).await;
    assert_err(st, &v, 400, "invalid_request", 50146);
    assert!(
        v["error_description"].as_str().unwrap().starts_with(
            "AADSTS50146: This application is required to be configured with an application-specific signing key."
        ),
        "{v}"
    );
    accept_mapped_claims(&g, &f.api_app_id).await;
    // The client's policy shapes its ID token: the client app must accept mapped claims too.
    let (st, v) = sign_in_and_redeem(&f, ADA).await;
    assert_err(st, &v, 400, "invalid_request", 50146);
    accept_mapped_claims(&g, &f.web).await;

    let (st, v) = sign_in_and_redeem(&f, ADA).await;
    assert_eq!(st, 200, "{v}");
    let (at, idt) = tokens_of(&f, &v).await;
    assert_eq!(
        (at["aud"].as_str(), at["fhirUser"].as_str()),
        (Some(API_URI), Some(VALUE))
    );
    assert_eq!(
        (idt["aud"].as_str(), idt["fhirUser"].as_str()),
        (Some(f.web.as_str()), Some(VALUE))
    );
    assert_eq!(at["name"], "Ada Lovelace", "the basic claim set stays");

    // A user without a value gets no claim.
    let (st, v) = sign_in_and_redeem(&f, EVE).await;
    assert_eq!(st, 200, "{v}");
    let (at, idt) = tokens_of(&f, &v).await;
    assert!(
        at.get("fhirUser").is_none() && idt.get("fhirUser").is_none(),
        "{at} {idt}"
    );

    // Unassigned from the resource: the access token has no claim, the ID token still does.
    let un = unassign(&g, &f.api_sp, &p).await;
    assert_eq!(un.status, 204);
    let (st, v) = sign_in_and_redeem(&f, ADA).await;
    assert_eq!(st, 200, "{v}");
    let (at, idt) = tokens_of(&f, &v).await;
    assert!(at.get("fhirUser").is_none(), "{at}");
    assert_eq!(idt["fhirUser"], VALUE);
}

#[tokio::test]
async fn accept_mapped_claims_needs_a_verified_audience() {
    let f = fixture(1).await;
    let g = admin(&f);
    let ext = fhir_user_extension(&g, &f).await;
    let p = fhir_user_policy(&g, &ext).await;
    assert_eq!(assign(&g, &f.api_app_id, &p).await.status, 204);
    accept_mapped_claims(&g, &f.api_app_id).await;
    // An `api://` identifier URI that is not the appId (the default app management policy switched
    // off, as an administrator could, to take it) makes v1 tokens' `aud` unverified: AADSTS501461.
    // (`https://` URIs are on verified domains already: Graph refuses others.)
    let off = g
        .patch(
            "/policies/defaultAppManagementPolicy",
            json!({"isEnabled": false}),
        )
        .await;
    assert_eq!(off.status, 204, "{}", off.body);
    let uri = "api://fhir-unverified";
    let r = g
        .patch(
            &format!("/applications(appId='{}')", f.api_app_id),
            json!({"identifierUris": [API_URI, uri]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let scope = format!("{uri}/user_impersonation openid");
    let (st, v) = sign_in_with_scope(&f, ADA, &scope).await;
    assert_err(st, &v, 400, "invalid_request", 501461);
}

#[tokio::test]
async fn app_tokens_and_soft_delete() {
    let f = fixture(1).await;
    let g = admin(&f);
    let ext = fhir_user_extension(&g, &f).await;
    let def = r#"{"ClaimsMappingPolicy":{"Version":1,"IncludeBasicClaimSet":"true","ClaimsSchema":[{"Value":"sandbox","JwtClaimType":"env"},{"Source":"application","ID":"displayname","JwtClaimType":"client_name"}]}}"#;
    let p = g
        .post(
            "/policies/claimsMappingPolicies",
            json!({"definition": [def], "displayName": "static"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let pid = p.body["id"].as_str().unwrap().to_string();
    assert_eq!(assign(&g, &f.api_app_id, &pid).await.status, 204);
    // Client credentials for the API: the resource's policy applies to app tokens too.
    let (client, secret) = (f.emu.client_id(), f.emu.client_secret());
    let scope = format!("{API_URI}/.default");
    let app_token = || common::secret_token(&f.c, &f.emu, &client, &secret, &scope);
    let (st, v) = app_token().await;
    assert_err(st, &v, 400, "invalid_request", 50146);
    accept_mapped_claims(&g, &f.api_app_id).await;
    let (st, v) = app_token().await;
    assert_eq!(st, 200, "{v}");
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(at["env"], "sandbox");
    assert!(at["client_name"].is_string(), "{at}");

    // Deleting the API's service principal drops its policy ("Policies can't be recovered").
    let del = g.delete(&format!("/servicePrincipals/{}", f.api_sp)).await;
    assert_eq!(del.status, 204, "{}", del.body);
    let restored = g
        .post(
            &format!("/directory/deletedItems/{}/restore", f.api_sp),
            json!({}),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert!(assigned(&g, &f.api_sp).await.is_empty());

    // Deleting the owner app hides the extension and its values; restoring the app and its
    // service principal shows them again.
    assert_eq!(set_value(&g, ADA, &ext, json!(VALUE)).await.status, 204);
    let sel = format!("/users/{ADA}?$select=id,{ext}");
    let app = g
        .get(&format!("/applications(appId='{}')", f.api_app_id))
        .await;
    let app_obj = app.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        g.delete(&format!("/applications/{app_obj}")).await.status,
        204
    );
    assert!(g.get(&sel).await.body.get(&ext).is_none());
    let back = g
        .post(
            &format!("/directory/deletedItems/{app_obj}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(
        g.get(&sel).await.body.get(&ext).is_none(),
        "the service principal is still deleted"
    );
    let sp_back = g
        .post(
            &format!("/directory/deletedItems/{}/restore", f.api_sp),
            json!({}),
        )
        .await;
    assert_eq!(sp_back.status, 200, "{}", sp_back.body);
    assert_eq!(g.get(&sel).await.body[&ext], VALUE);
}
