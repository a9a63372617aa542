//! Delta queries on applications and service principals as Graph documents them (Learn
//! `application-delta`, `serviceprincipal-delta`, `delta-query-overview`, `delta-query-users`;
//! docs/entra-facts/claims-and-delta.md part B): the initial round in pages, then exactly what
//! changed, `@removed` for deletions, `$select`, expired tokens, permissions.
mod common;
use common::*;
use entra_emulator::{BootstrapApp, Config, DeltaConfig, Running};
use serde_json::{Value, json};
use std::collections::HashSet;

/// A client with only `Application.Read.All` and one with no directory read permission.
fn reader_and_stranger() -> (BootstrapApp, BootstrapApp) {
    let app = |perms: &[&str]| BootstrapApp {
        client_id: uuid(),
        display_name: "other".into(),
        client_secret: Some(entra_emulator::random_secret()),
        permissions: perms.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    (
        app(&["Application.Read.All"]),
        app(&["DelegatedPermissionGrant.ReadWrite.All"]),
    )
}

fn small_pages(page_size: usize) -> Config {
    let mut cfg = config();
    cfg.delta = DeltaConfig {
        page_size,
        ..DeltaConfig::default()
    };
    cfg
}

async fn setup(cfg: Config) -> (Running, reqwest::Client, Graph, Graph) {
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    (emu, c, op, admin)
}

/// One round: every page from `first` until the deltaLink. (items, deltaLink, pages).
async fn round(g: &Graph, first: &str) -> (Vec<Value>, String, usize) {
    let (mut items, mut url, mut pages) = (vec![], first.to_string(), 0);
    loop {
        let r = g.get(&url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        pages += 1;
        items.extend(r.body["value"].as_array().unwrap().iter().cloned());
        let next = r.body["@odata.nextLink"].as_str();
        let delta = r.body["@odata.deltaLink"].as_str();
        match (next, delta) {
            (Some(n), None) => {
                assert!(n.contains("/delta?$skiptoken="), "{n}");
                url = n.to_string();
            }
            (None, Some(d)) => {
                assert!(d.contains("/delta?$deltatoken="), "{d}");
                return (items, d.to_string(), pages);
            }
            _ => panic!(
                "a page has exactly one of nextLink and deltaLink: {}",
                r.body
            ),
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn item<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {items:?}"))
}

/// A PATCH of an application that succeeds.
async fn patch_app(g: &Graph, id: &str, body: Value) {
    let r = g.patch(&format!("/applications/{id}"), body).await;
    assert_eq!(r.status, 204, "{}", r.body);
}

async fn new_app(g: &Graph, name: &str) -> (String, String) {
    let r = g.post("/applications", json!({"displayName": name})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    (id, r.body["appId"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_initial_round_pages_through_every_application_then_a_deltalink() {
    let (emu, _c, op, _) = setup(small_pages(2)).await;
    let mut made = vec![];
    for n in 0..4 {
        made.push(new_app(&op, &format!("paged-{n}")).await.0);
    }
    let all = op.get("/applications").await;
    let listed: HashSet<String> = ids(all.body["value"].as_array().unwrap())
        .into_iter()
        .collect();
    let first = op.get("/applications/delta").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body["@odata.context"],
        format!("{}/$metadata#applications", emu.graph_url())
    );
    let ct = first.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(first.headers.contains_key("request-id"));
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let (items, delta, pages) = round(&op, "/applications/delta").await;
    assert_eq!(pages, 3, "5 applications in pages of 2");
    let seen = ids(&items);
    assert_eq!(seen.len(), listed.len(), "each application once");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), listed);
    for id in &made {
        assert_eq!(
            item(&items, id)["web"]["redirectUris"],
            json!([]),
            "whole objects"
        );
    }
    // Nothing changed: no objects, and a new token.
    let again = op.get(&delta).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["value"], json!([]));
    let next = again.body["@odata.deltaLink"].as_str().unwrap();
    assert_ne!(
        next, delta,
        "a different deltatoken is returned with no results"
    );
    assert!(again.body.get("@odata.nextLink").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_deltalink_returns_exactly_the_changes_and_removals() {
    let (emu, _c, op, admin) = setup(config()).await;
    let (edited, _) = new_app(&op, "edited").await;
    let (secret_holder, _) = new_app(&op, "with-secret").await;
    let added = op
        .post(
            &format!("/applications/{secret_holder}/addPassword"),
            json!({"passwordCredential": {"displayName": "s"}}),
        )
        .await;
    let key_id = added.body["keyId"].as_str().unwrap().to_string();
    let (doomed, doomed_app_id) = new_app(&op, "doomed").await;
    let sp = op
        .post("/servicePrincipals", json!({"appId": doomed_app_id}))
        .await;
    let doomed_sp = sp.body["id"].as_str().unwrap().to_string();
    let (_, mut apps_link, _) = round(&op, "/applications/delta").await;
    let (_, mut sps_link, _) = round(&op, "/servicePrincipals/delta").await;

    // A create.
    let (created, _) = new_app(&admin, "created").await;
    let (items, link, _) = round(&op, &apps_link).await;
    assert_eq!(ids(&items), [created.as_str()]);
    assert_eq!(items[0]["displayName"], "created");
    apps_link = link;

    // An edited redirect URI: the object, with the new value.
    let uri = "https://edited.contoso.example/callback";
    patch_app(&admin, &edited, json!({"web": {"redirectUris": [uri]}})).await;
    let (items, link, _) = round(&op, &apps_link).await;
    assert_eq!(ids(&items), [edited.as_str()]);
    assert_eq!(items[0]["web"]["redirectUris"], json!([uri]));
    apps_link = link;

    // A removed password.
    let r = admin
        .post(
            &format!("/applications/{secret_holder}/removePassword"),
            json!({"keyId": key_id}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (items, link, _) = round(&op, &apps_link).await;
    assert_eq!(ids(&items), [secret_holder.as_str()]);
    assert_eq!(items[0]["passwordCredentials"], json!([]));
    apps_link = link;

    // A soft delete: the application and its service principal are removed, restorable.
    assert_eq!(
        admin
            .delete(&format!("/applications/{doomed}"))
            .await
            .status,
        204
    );
    let (items, link, _) = round(&op, &apps_link).await;
    assert_eq!(
        items,
        [json!({"id": doomed, "@removed": {"reason": "changed"}})]
    );
    apps_link = link;
    let (items, link, _) = round(&op, &sps_link).await;
    assert_eq!(
        items,
        [json!({"id": doomed_sp, "@removed": {"reason": "changed"}})]
    );
    sps_link = link;

    // The purge: gone for good.
    let purge = admin
        .delete(&format!("/directory/deletedItems/{doomed}"))
        .await;
    assert_eq!(purge.status, 204);
    let (items, _, _) = round(&op, &apps_link).await;
    assert_eq!(
        items,
        [json!({"id": doomed, "@removed": {"reason": "deleted"}})]
    );
    let (items, _, _) = round(&op, &sps_link).await;
    assert_eq!(
        items,
        Vec::<Value>::new(),
        "the service principal stays deleted, unchanged"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn what_delta_does_not_track_and_what_restore_looks_like() {
    let (emu, _c, op, admin) = setup(config()).await;
    let (id, app_id) = new_app(&op, "navigation").await;
    let sp = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    let sp_id = sp.body["id"].as_str().unwrap().to_string();
    let (_, apps_link, _) = round(&op, "/applications/delta").await;
    let (_, sps_link, _) = round(&op, "/servicePrincipals/delta").await;
    // Navigation properties (federated credentials, owners, app role assignments) are not tracked.
    let fic = json!({"name": "k8s", "issuer": "https://issuer.example", "subject": "system:serviceaccount:ns:sa", "audiences": ["api://AzureADTokenExchange"]});
    let r = op
        .post(
            &format!("/applications/{id}/federatedIdentityCredentials"),
            fic,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let graph_sp = admin
        .get("/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")
        .await;
    let gid = graph_sp.body["id"].as_str().unwrap().to_string();
    // Application.Read.All, assigned to the new service principal.
    let role = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";
    let assignment = json!({"principalId": sp_id, "resourceId": gid, "appRoleId": role});
    let r = admin
        .post(
            &format!("/servicePrincipals/{gid}/appRoleAssignedTo"),
            assignment,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (items, apps_link, _) = round(&op, &apps_link).await;
    assert_eq!(
        items,
        Vec::<Value>::new(),
        "a federated credential is no change of the application"
    );
    let (items, _, _) = round(&op, &sps_link).await;
    assert_eq!(
        items,
        Vec::<Value>::new(),
        "an app role assignment is no change of the service principal"
    );
    // Restored: shown as a newly created object.
    assert_eq!(
        admin.delete(&format!("/applications/{id}")).await.status,
        204
    );
    let restored = admin
        .post(&format!("/directory/deletedItems/{id}/restore"), json!({}))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    let (items, _, _) = round(&op, &apps_link).await;
    assert_eq!(ids(&items), [id.as_str()]);
    assert_eq!(items[0]["displayName"], "navigation");
    assert!(items[0].get("@removed").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn select_limits_what_is_returned_and_what_counts_as_a_change() {
    let (emu, _c, op, admin) = setup(config()).await;
    let (id, app_id) = new_app(&op, "selected").await;
    op.post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    // As msgraph-sdk sends it: `delta()`, the `$` of the option percent-encoded.
    let first = op
        .get("/applications/delta()?%24select=displayName,web")
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.body["@odata.context"],
        format!(
            "{}/$metadata#applications(displayName,web)",
            emu.graph_url()
        )
    );
    let mine = item(first.body["value"].as_array().unwrap(), &id);
    let keys: Vec<&str> = mine
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["displayName", "web", "id"],
        "the id is always returned"
    );
    let link = first.body["@odata.deltaLink"].as_str().unwrap().to_string();
    assert!(
        !link.contains("select"),
        "the selection travels in the token: {link}"
    );
    // A change to a property not selected does not show.
    patch_app(&admin, &id, json!({"notes": "unselected"})).await;
    let (items, link, _) = round(&op, &link).await;
    assert_eq!(items, Vec::<Value>::new());
    patch_app(&admin, &id, json!({"displayName": "renamed"})).await;
    let (items, _, _) = round(&op, &link).await;
    assert_eq!(
        items,
        [json!({"displayName": "renamed", "web": mine["web"], "id": id})]
    );
    // `$select` together with a `$skiptoken` is refused; `$filter` only takes ids.
    let (emu2, _c2, op2, _) = setup(small_pages(1)).await;
    let page = op2.get("/servicePrincipals/delta?$select=appId").await;
    let next = page.body["@odata.nextLink"].as_str().unwrap();
    let r = op2.get(&format!("{next}&$select=displayName")).await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "Request_BadRequest")
    );
    let r = op
        .get("/applications/delta?$filter=displayName eq 'renamed'")
        .await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "Request_UnsupportedQuery")
    );
    let r = op
        .get(&format!("/applications/delta?$filter=id eq '{id}'"))
        .await;
    assert_eq!(ids(r.body["value"].as_array().unwrap()), [id.as_str()]);
    emu2.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn latest_starts_from_now_and_service_principals_follow_their_application() {
    let (emu, _c, op, _) = setup(config()).await;
    let latest = op.get("/servicePrincipals/delta?$deltatoken=latest").await;
    assert_eq!(latest.status, 200, "{}", latest.body);
    assert_eq!(latest.body["value"], json!([]), "no resource data");
    let link = latest.body["@odata.deltaLink"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, app_id) = new_app(&op, "followed").await;
    let sp = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    let sp_id = sp.body["id"].as_str().unwrap().to_string();
    let (items, link, _) = round(&op, &link).await;
    assert_eq!(ids(&items), [sp_id.as_str()]);
    assert_eq!(items[0]["appId"], app_id);
    // Renaming the application renames its service principal: a change there too.
    patch_app(&op, &id, json!({"displayName": "followed-2"})).await;
    let (items, _, _) = round(&op, &link).await;
    assert_eq!(ids(&items), [sp_id]);
    assert_eq!(items[0]["appDisplayName"], "followed-2");
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_and_reset_tokens_and_a_new_round_after_them() {
    let (emu, c, op, admin) = setup(config()).await;
    let (_, link, _) = round(&op, "/applications/delta?$select=displayName").await;
    let expire = |body: Option<Value>| {
        let mut rb = c.post(format!("{}/_emulator/delta/expire", emu.base_url()));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    assert_eq!(expire(None).await.unwrap().status(), 204);
    let r = op.get(&link).await;
    assert_eq!(
        refusal(&r),
        (
            400,
            "syncStateNotFound".into(),
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.".into()
        )
    );
    assert!(r.body["error"]["innerError"]["request-id"].is_string());
    // A new round works, and sees later changes.
    let (_, link, _) = round(&op, "/applications/delta?$select=displayName").await;
    let (created, _) = new_app(&admin, "after-expiry").await;
    let (items, _, _) = round(&op, &link).await;
    assert_eq!(ids(&items), [created]);
    // The synchronization reset: 410 and where to start again.
    assert_eq!(
        expire(Some(json!({"reset": true}))).await.unwrap().status(),
        204
    );
    let r = op.get(&link).await;
    assert_eq!((r.status, err_code(&r).as_str()), (410, "resyncRequired"));
    let location = r.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!(
            "{}/applications/delta?$select=displayName&$deltatoken=",
            emu.graph_url()
        )
    );
    let (items, _, _) = round(&op, &location).await;
    assert!(
        items.iter().all(|v| v.as_object().unwrap().len() == 2),
        "{items:?}"
    );
    // A token that is not one: 400.
    let r = op.get("/applications/delta?$deltatoken=not-a-token").await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "Request_BadRequest")
    );
    let sps = op
        .get(&link.replace("/applications/", "/servicePrincipals/"))
        .await;
    assert_eq!(
        sps.status, 400,
        "an applications token on service principals"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime_and_with_the_changes_they_need() {
    let mut cfg = config();
    cfg.delta = DeltaConfig {
        token_lifetime_secs: 1,
        retained_changes: 2,
        ..DeltaConfig::default()
    };
    let (emu, _c, op, _) = setup(cfg).await;
    let (_, aged, _) = round(&op, "/applications/delta").await;
    let (_, kept, _) = round(&op, "/applications/delta").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = op.get(&aged).await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "syncStateNotFound")
    );
    let (_, fresh, _) = round(&op, "/applications/delta").await;
    for n in 0..3 {
        new_app(&op, &format!("churn-{n}")).await;
    }
    let r = op.get(&fresh).await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "syncStateNotFound"),
        "three changes, two kept"
    );
    drop(kept);
    emu.shutdown().await;
}

#[tokio::test]
async fn permissions_are_those_of_reading_applications() {
    let mut cfg = config();
    let (reader, stranger) = reader_and_stranger();
    cfg.tenants[0]
        .apps
        .extend([reader.clone(), stranger.clone()]);
    let (emu, c, _op, _) = setup(cfg).await;
    let graph = |app: BootstrapApp| {
        let (c, emu) = (c.clone(), &emu);
        async move {
            let scope = "https://graph.microsoft.com/.default";
            let secret = app.client_secret.unwrap();
            let (st, v) = secret_token(&c, emu, &app.client_id, &secret, scope).await;
            assert_eq!(st, 200, "{v}");
            Graph::new(&c, emu, v["access_token"].as_str().unwrap())
        }
    };
    let reader = graph(reader).await;
    let stranger = graph(stranger).await;
    for path in ["/applications/delta", "/servicePrincipals/delta"] {
        assert_eq!(reader.get(path).await.status, 200, "{path}");
        let r = stranger.get(path).await;
        assert_eq!(
            refusal(&r),
            (
                403,
                "Authorization_RequestDenied".into(),
                "Insufficient privileges to complete the operation.".into()
            ),
            "{path}"
        );
        let r = reader.post(path, json!({})).await;
        assert_eq!(
            (r.status, err_code(&r).as_str()),
            (405, "Request_BadRequest")
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn changes_wait_for_replication() {
    let (emu, _c, op, _) = setup(config()).await;
    let (_, link, _) = round(&op, "/applications/delta").await;
    emu.set_realism(entra_emulator::Realism {
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let (created, _) = new_app(&op, "lagging").await;
    let (items, early, _) = round(&op, &link).await;
    assert_eq!(items, Vec::<Value>::new(), "not replicated yet");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let (items, _, _) = round(&op, &early).await;
    assert_eq!(
        ids(&items),
        [created],
        "the earlier deltaLink still finds it"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn applications_the_admin_api_adds_show_in_delta() {
    let (emu, c, op, _) = setup(config()).await;
    let (_, link, _) = round(&op, "/applications/delta?$select=appId").await;
    let extra = BootstrapApp {
        client_id: uuid(),
        ..Default::default()
    };
    let tenant = entra_emulator::TenantConfig {
        tenant_id: emu.tenant_id(),
        apps: vec![extra.clone()],
        ..Default::default()
    };
    let r = c
        .post(format!("{}/_emulator/tenants", emu.base_url()))
        .json(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (items, _, _) = round(&op, &link).await;
    let app_ids: Vec<&Value> = items.iter().map(|v| &v["appId"]).collect();
    assert_eq!(app_ids, [&json!(extra.client_id)]);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_deltalink_survives_a_restart_with_a_state_file() {
    let dir = std::env::temp_dir().join(format!("entra-emu-delta-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = config();
    cfg.state_file = Some(dir.join("state.json"));
    let (emu, _c, op, _) = setup(cfg.clone()).await;
    new_app(&op, "before-restart").await;
    let (_, link, _) = round(&op, "/applications/delta").await;
    emu.shutdown().await;
    let (emu, _c, op, _) = setup(cfg).await;
    let (created, _) = new_app(&op, "after-restart").await;
    // The listener's port is new; the token is what carries the position.
    let path = &link[link.find("/applications/delta").unwrap()..];
    let (items, _, _) = round(&op, path).await;
    assert_eq!(ids(&items), [created]);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
