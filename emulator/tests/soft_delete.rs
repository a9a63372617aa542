//! Soft delete as Entra does it: deleted applications and service principals wait 30 days in the
//! deleted items, keep their uniqueName and identifier URIs, come back by restore (the service
//! principal separately) or go by purge or expiry (docs/entra-facts/lifecycle-and-policies.md §1).
mod common;
use common::*;
use serde_json::{Value, json};

async fn setup() -> (entra_emulator::Running, reqwest::Client, Graph, Graph) {
    let (emu, c) = start(config()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    (emu, c, op, admin)
}

/// An application created by upsert with `unique` as its uniqueName, and its service principal:
/// (object id, appId, service principal id).
async fn app_with_sp(op: &Graph, unique: &str, extra: Value) -> (String, String, String) {
    let mut body = json!({"displayName": unique});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = upsert(op, unique, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, app_id) = (s(&r.body["id"]), s(&r.body["appId"]));
    let sp = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    (id, app_id, s(&sp.body["id"]))
}

async fn upsert(op: &Graph, unique: &str, body: Value) -> Resp {
    op.req(
        "PATCH",
        &format!("/applications(uniqueName='{unique}')"),
        Some(body),
        &[("Prefer", "create-if-missing")],
    )
    .await
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| s(&x["id"]))
        .collect()
}

async fn expire(c: &reqwest::Client, emu: &entra_emulator::Running, body: Option<Value>) -> Value {
    let mut rb = c.post(format!("{}/_emulator/deleted-items/expire", emu.base_url()));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn deleting_an_app_soft_deletes_it_and_its_sp_and_holds_its_names() {
    let (emu, _c, op, _) = setup().await;
    let extra = json!({"identifierUris": ["api://contoso.example/held-uri"]});
    let (id, app_id, sp_id) = app_with_sp(&op, "held", extra).await;
    let del = op.delete(&format!("/applications(appId='{app_id}')")).await;
    assert_eq!(del.status, 204);
    assert_eq!(op.get(&format!("/applications/{id}")).await.status, 404);
    assert_eq!(
        op.get(&format!("/servicePrincipals/{sp_id}")).await.status,
        404
    );
    let apps = op
        .get("/directory/deletedItems/microsoft.graph.application")
        .await;
    assert_eq!(ids(&apps), vec![id.clone()]);
    let sps = op
        .get(&format!(
            "/directory/deletedItems/microsoft.graph.servicePrincipal?$filter=appId eq '{app_id}'"
        ))
        .await;
    assert_eq!(sps.status, 200, "{}", sps.body);
    assert_eq!(ids(&sps), vec![sp_id.clone()]);
    assert!(sps.body["value"][0]["deletedDateTime"].is_string());
    let one = op.get(&format!("/directory/deletedItems/{sp_id}")).await;
    assert_eq!(one.body["@odata.type"], "#microsoft.graph.servicePrincipal");
    // The name is held, by upsert and by create, with Entra's 400 (not 409).
    for r in [
        upsert(&op, "held", json!({"displayName": "again"})).await,
        op.post(
            "/applications",
            json!({"displayName": "again", "uniqueName": "HELD"}),
        )
        .await,
    ] {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(err_code(&r), "Request_BadRequest");
        assert_eq!(
            r.body["error"]["message"],
            "Another object with the same value for property uniqueName already exists."
        );
        assert_eq!(r.body["error"]["details"][0]["code"], "ObjectConflict");
    }
    // So is the identifier URI.
    let r = op
        .post(
            "/applications",
            json!({"displayName": "u", "identifierUris": ["api://contoso.example/held-uri"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(s(&r.body["error"]["message"]).contains("identifierUris"));
    emu.shutdown().await;
}

#[tokio::test]
async fn restore_brings_back_the_app_then_its_sp_with_assignments() {
    let (emu, _c, op, admin) = setup().await;
    let (id, app_id, sp_id) = app_with_sp(&op, "back", json!({})).await;
    let pw = op
        .post(&format!("/applications/{id}/addPassword"), json!({}))
        .await;
    assert_eq!(pw.status, 200);
    let graph_sp = admin
        .get("/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")
        .await;
    let gid = s(&graph_sp.body["id"]);
    let role = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";
    let a = admin
        .post(
            &format!("/servicePrincipals/{gid}/appRoleAssignedTo"),
            json!({"principalId": sp_id, "resourceId": gid, "appRoleId": role}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(op.delete(&format!("/applications/{id}")).await.status, 204);
    // The service principal cannot come back before its application.
    let early = op
        .post(
            &format!("/directory/deletedItems/{sp_id}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(early.status, 400, "{}", early.body);
    assert!(s(&early.body["error"]["message"]).contains("without backing Application"));
    let r = op
        .post(&format!("/directory/deletedItems/{id}/restore"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["@odata.type"], "#microsoft.graph.application");
    assert_eq!(
        (s(&r.body["id"]), s(&r.body["appId"])),
        (id.clone(), app_id.clone())
    );
    assert!(r.body["deletedDateTime"].is_null());
    // Credentials come back with it; the service principal does not.
    assert_eq!(r.body["passwordCredentials"].as_array().unwrap().len(), 1);
    assert_eq!(
        op.get(&format!("/servicePrincipals/{sp_id}")).await.status,
        404
    );
    let r = op
        .post(
            &format!("/directory/deletedItems/{sp_id}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["@odata.type"], "#microsoft.graph.servicePrincipal");
    let held = op
        .get(&format!("/servicePrincipals/{sp_id}/appRoleAssignments"))
        .await;
    assert_eq!(held.body["value"][0]["appRoleId"], role, "{}", held.body);
    emu.shutdown().await;
}

#[tokio::test]
async fn purge_and_expiry_free_the_name() {
    let (emu, c, op, admin) = setup().await;
    let (id, _, sp_id) = app_with_sp(&op, "gone", json!({})).await;
    assert_eq!(op.delete(&format!("/applications/{id}")).await.status, 204);
    // Only an owner (or Application.ReadWrite.All) may purge or restore.
    let theirs = admin
        .post("/applications", json!({"displayName": "theirs"}))
        .await;
    let tid = s(&theirs.body["id"]);
    assert_eq!(
        admin.delete(&format!("/applications/{tid}")).await.status,
        204
    );
    assert_eq!(
        op.delete(&format!("/directory/deletedItems/{tid}"))
            .await
            .status,
        403
    );
    assert_eq!(
        op.post(&format!("/directory/deletedItems/{tid}/restore"), json!({}))
            .await
            .status,
        403
    );
    assert_eq!(
        op.delete(&format!("/directory/deletedItems/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        op.get(&format!("/directory/deletedItems/{id}"))
            .await
            .status,
        404
    );
    // Purging the application leaves its service principal deleted.
    assert_eq!(
        op.get(&format!("/directory/deletedItems/{sp_id}"))
            .await
            .status,
        200
    );
    let again = upsert(&op, "gone", json!({"displayName": "gone"})).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_ne!(s(&again.body["id"]), id);
    // 29 days on, a deleted item is still there; at 30 it is gone.
    let new_id = s(&again.body["id"]);
    assert_eq!(
        op.delete(&format!("/applications/{new_id}")).await.status,
        204
    );
    assert_eq!(
        expire(&c, &emu, Some(json!({"days": 29}))).await["expired"],
        0
    );
    assert_eq!(
        upsert(&op, "gone", json!({"displayName": "x"}))
            .await
            .status,
        400
    );
    let n = expire(&c, &emu, Some(json!({"days": 1}))).await["expired"]
        .as_u64()
        .unwrap();
    assert!(n >= 3, "app, its SP, the first SP and 'theirs': {n}");
    assert_eq!(
        op.get(&format!("/directory/deletedItems/{new_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        upsert(&op, "gone", json!({"displayName": "x"}))
            .await
            .status,
        201
    );
    assert_eq!(expire(&c, &emu, None).await["expired"], 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn deleting_a_service_principal_alone() {
    let (emu, _c, op, _) = setup().await;
    let (id, app_id, sp_id) = app_with_sp(&op, "sp-only", json!({})).await;
    assert_eq!(
        op.delete(&format!("/servicePrincipals/{sp_id}"))
            .await
            .status,
        204
    );
    assert_eq!(op.get(&format!("/applications/{id}")).await.status, 200);
    let sps = op
        .get("/directory/deletedItems/microsoft.graph.servicePrincipal")
        .await;
    assert_eq!(ids(&sps), vec![sp_id.clone()]);
    // A new service principal may be made meanwhile; then the old one cannot come back (409).
    let new = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(new.status, 201);
    let r = op
        .post(
            &format!("/directory/deletedItems/{sp_id}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    emu.shutdown().await;
}
