//! Graph behaviour the azure-cli recordings of `tests/recordings/azure-cli/` show, each checked
//! through the public surface: service principal passwords, security groups, the order of an
//! application's collections on a read, optional-claim defaults.
mod common;
use common::*;
use serde_json::json;

async fn setup() -> (entra_emulator::Running, reqwest::Client, Graph, Graph) {
    let (emu, c) = start(config()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    (emu, c, op, admin)
}

#[tokio::test]
async fn service_principal_passwords_are_listed_newest_first_sign_in_and_are_removed_by_key_id() {
    let (emu, c, op, admin) = setup().await;
    let (_, app_id) = app_with_service_principal(&op, "sp-passwords").await;
    let sp = format!("/servicePrincipals(appId='{app_id}')");
    let path = |action: &str| format!("{sp}/{action}");
    let first = op
        .post(
            &path("addPassword"),
            json!({"passwordCredential": {"displayName": "key1"}}),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert!(
        first.body["secretText"]
            .as_str()
            .is_some_and(|s| s.len() > 30)
    );
    assert!(
        first.body["hint"].is_null(),
        "recorded null on a service principal"
    );
    assert!(first.headers.contains_key("location"));
    let second = op
        .post(
            &path("addPassword"),
            json!({"passwordCredential": {"displayName": "key2"}}),
        )
        .await;
    let listed = op.get(&sp).await.body;
    let names: Vec<_> = listed["passwordCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["displayName"].clone(), c["secretText"].clone()))
        .collect();
    assert_eq!(
        names,
        vec![(json!("key2"), json!(null)), (json!("key1"), json!(null))]
    );
    let graph = "https://graph.microsoft.com/.default";
    let secret = first.body["secretText"].as_str().unwrap();
    let (status, token) = secret_token(&c, &emu, &app_id, secret, graph).await;
    assert_eq!(status, 200, "{token}");
    let gone = op
        .post(
            &path("removePassword"),
            json!({"keyId": first.body["keyId"]}),
        )
        .await;
    assert_eq!(gone.status, 204);
    let (status, refused) = secret_token(&c, &emu, &app_id, secret, graph).await;
    assert_eq!(status, 401, "{refused}");
    let again = op
        .post(
            &path("removePassword"),
            json!({"keyId": first.body["keyId"]}),
        )
        .await;
    assert_eq!(again.status, 400);
    let left = op.get(&sp).await.body;
    assert_eq!(
        left["passwordCredentials"][0]["keyId"],
        second.body["keyId"]
    );
    assert_eq!(left["passwordCredentials"].as_array().unwrap().len(), 1);
    // An OwnedBy caller may not change a service principal it does not own.
    let (_, foreign) = app_with_service_principal(&admin, "not-the-operators").await;
    let refused = op
        .post(
            &format!("/servicePrincipals(appId='{foreign}')/addPassword"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn groups_are_created_filtered_with_and_and_deleted() {
    let (emu, _, op, admin) = setup().await;
    let body = json!({"displayName": "azure-cli-test-group+/", "mailNickname": "deleteme11",
        "mailEnabled": false, "securityEnabled": true});
    assert_eq!(op.post("/groups", body.clone()).await.status, 403);
    let created = admin.post("/groups", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(
        created.body["securityIdentifier"]
            .as_str()
            .unwrap()
            .starts_with("S-1-12-1-")
    );
    let both = "/groups?$filter=displayName%20eq%20%27azure-cli-test-group%2B%2F%27%20and%20mailNickname%20eq%20%27deleteme11%27";
    assert_eq!(admin.get(both).await.body["value"][0]["id"], json!(id));
    let other = "/groups?$filter=displayName%20eq%20%27azure-cli-test-group%2B%2F%27%20and%20mailNickname%20eq%20%27other%27";
    assert_eq!(admin.get(other).await.body["value"], json!([]));
    let unsupported = admin.get("/groups?$filter=theme%20eq%20%27x%27").await;
    assert_eq!(unsupported.status, 400);
    assert!(
        unsupported.body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("of resource 'Group'."),
        "{:?}",
        unsupported.body
    );
    let missing = admin
        .post(
            "/groups",
            json!({"displayName": "no nickname",
        "mailEnabled": false, "securityEnabled": true}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(admin.delete(&format!("/groups/{id}")).await.status, 204);
    assert_eq!(admin.get(&format!("/groups/{id}")).await.status, 404);
    assert_eq!(admin.delete(&format!("/groups/{id}")).await.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn reads_list_roles_access_and_redirect_uris_in_reverse_and_fill_optional_claims() {
    let (emu, _, op, _) = setup().await;
    let role = |v: &str| {
        json!({"allowedMemberTypes": ["Application"], "description": v,
        "displayName": v, "id": uuid(), "isEnabled": true, "value": v})
    };
    let created = op
        .post(
            "/applications",
            json!({"displayName": "ordered",
                "appRoles": [role("first"), role("second")],
                "web": {"redirectUris": ["https://a.example/1", "https://a.example/2"]},
                "optionalClaims": {"idToken": [{"name": "auth_time", "essential": false}]}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["appRoles"][0]["value"], "first");
    assert_eq!(
        created.body["optionalClaims"],
        json!({"idToken": [{"additionalProperties": [], "essential": false, "name": "auth_time", "source": null}],
            "accessToken": [], "saml2Token": []})
    );
    let read = op
        .get(&format!(
            "/applications/{}",
            created.body["id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(read["appRoles"][0]["value"], "second");
    assert_eq!(
        read["web"]["redirectUris"],
        json!(["https://a.example/2", "https://a.example/1"])
    );
    emu.shutdown().await;
}
