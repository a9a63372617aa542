//! Graph surface: authorization, applications, credentials, FICs, SPs, assignments, grants, validation.
mod common;
use common::*;
use serde_json::{Value, json};

async fn setup() -> (entra_emulator::Running, reqwest::Client, Graph, Graph) {
    let (emu, c) = start(config()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    (emu, c, op, admin)
}

#[tokio::test]
async fn bearer_token_required() {
    let (emu, c, _op, _) = setup().await;
    let g = Graph::new(&c, &emu, "");
    let r = g.get("/applications").await;
    assert_eq!(r.status, 401);
    assert_eq!(err_code(&r), "InvalidAuthenticationToken");
    assert!(r.headers.contains_key("request-id"));
    let inner = &r.body["error"]["innerError"];
    assert!(
        inner["date"].is_string()
            && inner["request-id"].is_string()
            && inner["client-request-id"].is_string()
    );
    let g = Graph::new(&c, &emu, "not.a.jwt");
    assert_eq!(g.get("/applications").await.status, 401);
    // A token for another resource is refused.
    let (_, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://azurehealthcareapis.com/.default",
    )
    .await;
    let g = Graph::new(&c, &emu, v["access_token"].as_str().unwrap());
    let r = g.get("/applications").await;
    assert_eq!(r.status, 401);
    // client-request-id is echoed
    let r = _op
        .req(
            "GET",
            "/applications",
            None,
            &[("client-request-id", "abc-123")],
        )
        .await;
    assert_eq!(r.headers["client-request-id"], "abc-123");
    assert_eq!(r.body["error"], Value::Null);
    emu.shutdown().await;
}

#[tokio::test]
async fn owned_by_only_manages_own_apps() {
    let (emu, _c, op, admin) = setup().await;
    let mine = op
        .post("/applications", json!({"displayName": "mine"}))
        .await;
    assert_eq!(mine.status, 201);
    let theirs = admin
        .post("/applications", json!({"displayName": "theirs"}))
        .await;
    assert_eq!(theirs.status, 201);
    let tid = theirs.body["id"].as_str().unwrap();
    let mid = mine.body["id"].as_str().unwrap();
    // May list and read everything
    let l = op.get("/applications").await;
    assert_eq!(l.status, 200);
    assert!(l.body["value"].as_array().unwrap().len() >= 3);
    assert_eq!(op.get(&format!("/applications/{tid}")).await.status, 200);
    // May not change others' apps
    for r in [
        op.patch(&format!("/applications/{tid}"), json!({"notes": "x"}))
            .await,
        op.delete(&format!("/applications/{tid}")).await,
        op.post(&format!("/applications/{tid}/addPassword"), json!({}))
            .await,
        op.post("/servicePrincipals", json!({"appId": theirs.body["appId"]}))
            .await,
    ] {
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(err_code(&r), "Authorization_RequestDenied");
        assert_eq!(
            r.body["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
    }
    // Own app: fine; creator is the owner
    assert_eq!(
        op.patch(&format!("/applications/{mid}"), json!({"notes": "x"}))
            .await
            .status,
        204
    );
    let owners = op.get(&format!("/applications/{mid}/owners")).await;
    assert_eq!(owners.body["value"][0]["appId"], emu.client_id());
    assert_eq!(
        owners.body["value"][0]["@odata.type"],
        "#microsoft.graph.servicePrincipal"
    );
    // Cannot grant app roles or consent
    let graph_sp = admin
        .get("/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")
        .await;
    assert_eq!(graph_sp.status, 200);
    let sp = op
        .post("/servicePrincipals", json!({"appId": mine.body["appId"]}))
        .await;
    assert_eq!(sp.status, 201);
    let r = op.post(&format!("/servicePrincipals/{}/appRoleAssignedTo", graph_sp.body["id"].as_str().unwrap()),
        json!({"principalId": sp.body["id"], "resourceId": graph_sp.body["id"], "appRoleId": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"})).await;
    assert_eq!(r.status, 403);
    let r = op.post("/oauth2PermissionGrants", json!({"clientId": sp.body["id"], "consentType": "AllPrincipals", "resourceId": graph_sp.body["id"], "scope": "User.Read"})).await;
    assert_eq!(r.status, 403);
    // Cannot add owners
    let r = op.post(&format!("/applications/{mid}/owners/$ref"), json!({"@odata.id": format!("{}/directoryObjects/{}", emu.graph_url(), sp.body["id"].as_str().unwrap())})).await;
    assert_eq!(r.status, 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn application_lifecycle_get_forms_update_delete_restore_purge() {
    let (emu, _c, op, _) = setup().await;
    let r = op.post("/applications", json!({"displayName": "app1", "uniqueName": "app-one", "tags": ["fhir-app-operator", "x"],
        "web": {"redirectUris": ["https://a.example/cb", "http://localhost:8080/cb"]}})).await;
    assert_eq!(r.status, 201);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .contains("/directoryObjects/")
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    let app_id = r.body["appId"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["@odata.context"],
        format!("{}/$metadata#applications/$entity", emu.graph_url())
    );
    for path in [
        format!("/applications/{id}"),
        format!("/applications(appId='{app_id}')"),
        "/applications(uniqueName='app-one')".to_string(),
    ] {
        let g = op.get(&path).await;
        assert_eq!(g.status, 200, "{path}");
        assert_eq!(g.body["id"], id.as_str());
        assert!(
            g.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json;odata.metadata=minimal")
        );
        assert_eq!(g.headers["odata-version"], "4.0");
    }
    // $select
    let g = op
        .get(&format!("/applications/{id}?$select=Id,displayName"))
        .await;
    assert_eq!(g.body.as_object().unwrap().len(), 3);
    assert!(
        g.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#applications(id,displayName)/$entity")
    );
    // Update replaces collections whole, merges objects
    let u = op
        .patch(
            &format!("/applications/{id}"),
            json!({"web": {"redirectUris": ["https://b.example/cb"]}, "tags": ["y"]}),
        )
        .await;
    assert_eq!(u.status, 204);
    assert!(u.headers.get("odata-version").is_none());
    let g = op.get(&format!("/applications/{id}")).await;
    assert_eq!(
        g.body["web"]["redirectUris"],
        json!(["https://b.example/cb"])
    );
    assert_eq!(
        g.body["web"]["implicitGrantSettings"]["enableIdTokenIssuance"],
        false
    );
    assert_eq!(g.body["tags"], json!(["y"]));
    // Unknown property
    let bad = op
        .patch(&format!("/applications/{id}"), json!({"nope": 1}))
        .await;
    assert_eq!(bad.status, 400);
    // Delete: gone from the applications (soft delete, restore and purge: tests/soft_delete.rs)
    assert_eq!(op.delete(&format!("/applications/{id}")).await.status, 204);
    let g = op.get(&format!("/applications/{id}")).await;
    assert_eq!(g.status, 404);
    assert_eq!(err_code(&g), "Request_ResourceNotFound");
    emu.shutdown().await;
}

#[tokio::test]
async fn upsert_by_unique_name() {
    let (emu, _c, op, _) = setup().await;
    let p = "/applications(uniqueName='fhir-server-1')";
    let r = op.patch(p, json!({"displayName": "x"})).await;
    assert_eq!(r.status, 404);
    let r = op
        .req(
            "PATCH",
            p,
            Some(json!({"displayName": "fhir server"})),
            &[("Prefer", "create-if-missing")],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["uniqueName"], "fhir-server-1");
    let r = op
        .req(
            "PATCH",
            p,
            Some(json!({"displayName": "fhir server 2"})),
            &[("Prefer", "create-if-missing")],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(op.get(p).await.body["displayName"], "fhir server 2");
    let r = op
        .req(
            "PATCH",
            "/applications(uniqueName='no-name')",
            Some(json!({"notes": "n"})),
            &[("Prefer", "create-if-missing")],
        )
        .await;
    assert_eq!(r.status, 400, "displayName is required on create");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_filters_paging_and_advanced_queries() {
    let (emu, _c, op, _) = setup().await;
    for i in 0..7 {
        let r = op
            .post(
                "/applications",
                json!({"displayName": format!("pager-{i}"), "tags": [format!("t{}", i % 2)],
            "identifierUris": [format!("api://contoso.example/pager-{i}")]}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let v = |r: &Resp| r.body["value"].as_array().unwrap().len();
    assert_eq!(
        v(&op
            .get("/applications?$filter=startswith(displayName,'pager-')")
            .await),
        7
    );
    assert_eq!(
        v(&op
            .get("/applications?$filter=displayName eq 'pager-3'")
            .await),
        1
    );
    assert_eq!(
        v(&op.get("/applications?$filter=tags/any(t:t eq 't1')").await),
        3
    );
    assert_eq!(
        v(&op
            .get("/applications?$filter=identifierUris/any(x:x eq 'api://contoso.example/pager-2')")
            .await),
        1
    );
    assert_eq!(
        v(&op
            .get("/applications?$filter=startswith(displayName,'pager-') and tags/any(t:t eq 't0')")
            .await),
        4
    );
    let app_id = op
        .get("/applications?$filter=displayName eq 'pager-5'")
        .await
        .body["value"][0]["appId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        v(&op
            .get(&format!(
                "/applications?$filter=appId eq '{app_id}'&$select=id"
            ))
            .await),
        1
    );
    // Paging
    let mut next = Some(format!(
        "{}/applications?$filter=startswith(displayName,'pager-')&$top=3",
        emu.graph_url()
    ));
    let mut seen = 0;
    let mut pages = 0;
    while let Some(n) = next {
        let r = op.get(&n).await;
        assert_eq!(r.status, 200);
        seen += v(&r);
        pages += 1;
        next = r.body["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!((seen, pages), (7, 3));
    // Advanced queries need ConsistencyLevel + $count
    for q in [
        "$filter=displayName ne 'pager-1'",
        "$filter=not(displayName eq 'pager-1')",
        "$filter=endswith(displayName,'-1')",
        "$filter=startswith(displayName,'pager-')&$orderby=displayName",
    ] {
        let r = op.get(&format!("/applications?{q}")).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(err_code(&r), "Request_UnsupportedQuery", "{q}");
    }
    let ev = [("ConsistencyLevel", "eventual")];
    let r = op
        .req(
            "GET",
            "/applications?$filter=endswith(displayName,'-1')&$count=true",
            None,
            &ev,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["@odata.count"], 1);
    let r = op.req("GET", "/applications?$filter=startswith(displayName,'pager-')&$orderby=displayName desc&$count=true", None, &ev).await;
    assert_eq!(r.body["value"][0]["displayName"], "pager-6");
    let r = op.req("GET", "/applications?$filter=displayName ne 'pager-1' and startswith(displayName,'pager')&$count=true", None, &ev).await;
    assert_eq!(r.body["@odata.count"], 6);
    let r = op.req("GET", "/applications/$count", None, &ev).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!(8));
    assert_eq!(
        op.get("/applications?$filter=bogus eq 'x'").await.status,
        400
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn passwords_add_remove_and_sign_in() {
    let (emu, c, op, _) = setup().await;
    let app = op.post("/applications", json!({"displayName": "pw"})).await;
    let id = app.body["id"].as_str().unwrap();
    let _sp = op
        .post("/servicePrincipals", json!({"appId": app.body["appId"]}))
        .await;
    for path in [
        format!("/applications/{id}/addPassword"),
        format!("/applications/{id}/microsoft.graph.addPassword"),
        format!(
            "/applications(appId='{}')/addPassword",
            app.body["appId"].as_str().unwrap()
        ),
    ] {
        let r = op
            .post(&path, json!({"passwordCredential": {"displayName": "k"}}))
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let secret = r.body["secretText"].as_str().unwrap();
        assert_eq!(r.body["hint"], &secret[..3]);
        assert!(
            r.body["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#microsoft.graph.passwordCredential")
        );
        let start = chrono::DateTime::parse_from_rfc3339(r.body["startDateTime"].as_str().unwrap())
            .unwrap();
        let end =
            chrono::DateTime::parse_from_rfc3339(r.body["endDateTime"].as_str().unwrap()).unwrap();
        assert!((end - start).num_days() >= 729 && (end - start).num_days() <= 731);
        // A new secret works at once (no replication lag configured).
        let (st, v) = secret_token(
            &c,
            &emu,
            app.body["appId"].as_str().unwrap(),
            secret,
            "https://graph.microsoft.com/.default",
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    let g = op.get(&format!("/applications/{id}")).await;
    let creds = g.body["passwordCredentials"].as_array().unwrap();
    assert_eq!(creds.len(), 3);
    assert!(creds.iter().all(|c| c["secretText"].is_null()));
    let key_id = creds[0]["keyId"].as_str().unwrap();
    assert_eq!(
        op.post(
            &format!("/applications/{id}/removePassword"),
            json!({"keyId": key_id})
        )
        .await
        .status,
        204
    );
    assert_eq!(
        op.get(&format!("/applications/{id}")).await.body["passwordCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn key_credentials_via_patch_enable_certificate_sign_in() {
    let (emu, c, op, _) = setup().await;
    let (id, app_id) = app_with_service_principal(&op, "cert").await;
    let app_id = app_id.as_str();
    let der = entra_emulator::crypto::cert_der_from_pem(CLIENT_CERT).unwrap();
    let r = op.patch(&format!("/applications/{id}"), json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": entra_emulator::crypto::b64(&der), "displayName": "CN=test"}]})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let g = op.get(&format!("/applications/{id}")).await;
    let kc = &g.body["keyCredentials"][0];
    assert!(kc["key"].is_null() && kc["keyId"].is_string() && kc["endDateTime"].is_string());
    let (st, v) = cert_token(&c, &emu, app_id).await;
    assert_eq!(st, 200, "{v}");
    // Bad certificate bytes are refused
    let r = op.patch(&format!("/applications/{id}"), json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "AAAA"}]})).await;
    assert_eq!(r.status, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn federated_identity_credentials_crud_limits() {
    let (emu, _c, op, _) = setup().await;
    let app = op
        .post("/applications", json!({"displayName": "fic"}))
        .await;
    let base = format!(
        "/applications/{}/federatedIdentityCredentials",
        app.body["id"].as_str().unwrap()
    );
    let f = |n: &str, s: &str| json!({"name": n, "issuer": "https://issuer.example", "subject": s, "audiences": ["api://AzureADTokenExchange"]});
    let r = op.post(&base, f("one", "sub-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.headers.contains_key("location"));
    let fid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        op.post(&base, f("two", "sub-1")).await.status,
        400,
        "issuer+subject unique"
    );
    assert_eq!(op.post(&base, f("bad name!", "sub-9")).await.status, 400);
    let mut noaud = f("noaud", "sub-8");
    noaud["audiences"] = json!([]);
    assert_eq!(op.post(&base, noaud).await.status, 400);
    assert_eq!(op.get(&format!("{base}/{fid}")).await.body["name"], "one");
    assert_eq!(
        op.get(&format!("{base}/one")).await.body["id"],
        fid.as_str()
    );
    assert_eq!(
        op.patch(&format!("{base}/{fid}"), json!({"subject": "sub-2"}))
            .await
            .status,
        204
    );
    assert_eq!(
        op.get(&format!("{base}/{fid}")).await.body["subject"],
        "sub-2"
    );
    assert_eq!(
        op.patch(&format!("{base}/{fid}"), json!({"name": "renamed"}))
            .await
            .status,
        400,
        "name immutable"
    );
    // Upsert by name
    let r = op.req("PATCH", &format!("{base}(name='up')"), Some(json!({"issuer": "https://issuer.example", "subject": "sub-up", "audiences": ["api://AzureADTokenExchange"]})), &[("Prefer", "create-if-missing")]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = op
        .req(
            "PATCH",
            &format!("{base}(name='up')"),
            Some(json!({"subject": "sub-up2"})),
            &[("Prefer", "create-if-missing")],
        )
        .await;
    assert_eq!(r.status, 204);
    // 20 per app
    for i in 0..18 {
        assert_eq!(
            op.post(&base, f(&format!("n{i}"), &format!("s{i}")))
                .await
                .status,
            201
        );
    }
    let r = op.post(&base, f("n21", "s21")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        op.get(&base).await.body["value"].as_array().unwrap().len(),
        20
    );
    assert_eq!(op.delete(&format!("{base}/{fid}")).await.status, 204);
    assert_eq!(op.get(&format!("{base}/{fid}")).await.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn validation_rules() {
    let (emu, _c, op, _) = setup().await;
    let post = |b: Value| op.post("/applications", b);
    let r = post(json!({"displayName": "v", "identifierUris": ["https://not-verified.example/x"]}))
        .await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "HostNameNotOnVerifiedDomain")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Values of identifierUris property must use a verified domain")
    );
    assert_eq!(
        post(json!({"displayName": "v", "identifierUris": ["https://api.contoso.example/x"]}))
            .await
            .status,
        201,
        "subdomain of a verified domain"
    );
    // A fresh tenant refuses an api:// URI without a tenant identifier (the default policy as
    // Microsoft set it in 2025; tests/app_policies.rs covers it), and takes one with its domain.
    let r = post(json!({"displayName": "v", "identifierUris": ["api://anything"]})).await;
    assert_eq!(
        (r.status, err_code(&r).as_str()),
        (400, "InvalidUniqueTenantIdentifierAsPerAppPolicy")
    );
    assert_eq!(
        post(json!({"displayName": "v", "identifierUris": ["api://contoso.example/anything"]}))
            .await
            .status,
        201
    );
    let dup =
        post(json!({"displayName": "v2", "identifierUris": ["api://contoso.example/anything"]}))
            .await;
    assert_eq!(dup.status, 400, "identifier URIs unique in the tenant");
    assert_eq!(
        post(json!({"displayName": "v", "web": {"redirectUris": ["http://example.com/cb"]}}))
            .await
            .status,
        400
    );
    assert_eq!(
        post(json!({"displayName": "v", "web": {"redirectUris": ["http://127.0.0.1:3000/cb"]}}))
            .await
            .status,
        201
    );
    assert_eq!(
        post(json!({"displayName": "x".repeat(257)})).await.status,
        400
    );
    assert_eq!(post(json!({"displayName": ""})).await.status, 400);
    assert_eq!(post(json!({"description": "no name"})).await.status, 400);
    let role = |id: &str, v: &str| json!({"id": id, "value": v, "displayName": v, "description": v, "allowedMemberTypes": ["Application"], "isEnabled": true});
    let r = post(json!({"displayName": "v", "appRoles": [role(&uuid(), "a"), role(&uuid(), "a")]}))
        .await;
    assert_eq!(r.status, 400, "duplicate role values");
    let scope = |id: &str, v: &str| json!({"id": id, "value": v, "type": "User", "isEnabled": true, "adminConsentDisplayName": v, "adminConsentDescription": v});
    let r = post(json!({"displayName": "v", "api": {"oauth2PermissionScopes": [scope(&uuid(), "s"), scope(&uuid(), "s")]}})).await;
    assert_eq!(r.status, 400, "duplicate scope values");
    // Enabled entitlements must be disabled first
    let rid = uuid();
    let sid = uuid();
    let a = post(json!({"displayName": "ent", "appRoles": [role(&rid, "r")], "api": {"oauth2PermissionScopes": [scope(&sid, "s")]}})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let p = format!("/applications/{}", a.body["id"].as_str().unwrap());
    for body in [
        json!({"appRoles": []}),
        json!({"appRoles": [role(&rid, "renamed")]}),
        json!({"api": {"oauth2PermissionScopes": []}}),
    ] {
        let r = op.patch(&p, body).await;
        assert_eq!(
            (r.status, err_code(&r).as_str()),
            (400, "CannotDeleteOrUpdateEnabledEntitlement")
        );
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with(
            "Permission (scope or role) cannot be deleted or updated unless disabled first"
        ));
    }
    let mut disabled = role(&rid, "r");
    disabled["isEnabled"] = json!(false);
    assert_eq!(
        op.patch(&p, json!({"appRoles": [disabled]})).await.status,
        204
    );
    assert_eq!(op.patch(&p, json!({"appRoles": []})).await.status, 204);
    emu.shutdown().await;
}

#[tokio::test]
async fn service_principals_assignments_grants() {
    let (emu, c, op, admin) = setup().await;
    let app = op
        .post(
            "/applications",
            json!({"displayName": "sp-app", "identifierUris": ["api://contoso.example/sp-app"], "tags": ["t"]}),
        )
        .await;
    let app_id = app.body["appId"].as_str().unwrap();
    let sp = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    assert_eq!(
        sp.body["servicePrincipalNames"],
        json!([app_id, "api://contoso.example/sp-app"])
    );
    assert_eq!(sp.body["appOwnerOrganizationId"], emu.tenant_id());
    let again = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(
        (again.status, err_code(&again).as_str()),
        (409, "Request_MultipleObjectsWithSameKeyValue")
    );
    let sid = sp.body["id"].as_str().unwrap();
    assert_eq!(
        op.get(&format!("/servicePrincipals/{sid}")).await.status,
        200
    );
    assert_eq!(
        op.get(&format!("/servicePrincipals(appId='{app_id}')"))
            .await
            .body["id"],
        sid
    );
    let v = |r: &Resp| r.body["value"].as_array().unwrap().len();
    assert_eq!(
        v(&op
            .get(&format!("/servicePrincipals?$filter=appId eq '{app_id}'"))
            .await),
        1
    );
    assert_eq!(
        v(&op
            .get("/servicePrincipals?$filter=servicePrincipalNames/any(c:c eq 'api://contoso.example/sp-app')")
            .await),
        1
    );
    assert_eq!(
        v(&op
            .get("/servicePrincipals?$filter=displayName eq 'sp-app'")
            .await),
        1
    );
    assert_eq!(
        v(&op
            .get("/servicePrincipals?$filter=tags/any(t:t eq 't')")
            .await),
        1
    );
    // First-party SPs exist
    let hc = op
        .get("/servicePrincipals(appId='4f6778d8-5aef-43dc-a1ff-b073724b9495')")
        .await;
    assert_eq!(hc.body["displayName"], "Azure Healthcare APIs");
    assert_eq!(
        hc.body["oauth2PermissionScopes"][0]["value"],
        "user_impersonation"
    );
    assert!(
        hc.body["servicePrincipalNames"]
            .as_array()
            .unwrap()
            .contains(&json!("https://azurehealthcareapis.com"))
    );
    let graph = admin
        .get("/servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'")
        .await
        .body["value"][0]
        .clone();
    let gid = graph["id"].as_str().unwrap();
    // Grant Application.Read.All to the new SP (admin), read it back via both paths, then delete.
    let a = admin.post(&format!("/servicePrincipals/{gid}/appRoleAssignedTo"), json!({"principalId": sid, "resourceId": gid, "appRoleId": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["id"].as_str().unwrap().len(), 43);
    for k in [
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    ] {
        assert!(a.body.get(k).is_some(), "{k}");
    }
    let dup = admin.post(&format!("/servicePrincipals/{gid}/appRoleAssignedTo"), json!({"principalId": sid, "resourceId": gid, "appRoleId": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"})).await;
    assert_eq!(dup.status, 400);
    let bad_role = admin
        .post(
            &format!("/servicePrincipals/{gid}/appRoleAssignedTo"),
            json!({"principalId": sid, "resourceId": gid, "appRoleId": uuid()}),
        )
        .await;
    assert_eq!(bad_role.status, 400);
    assert_eq!(
        v(&admin
            .get(&format!("/servicePrincipals/{sid}/appRoleAssignments"))
            .await),
        1
    );
    assert!(
        v(&admin
            .get(&format!("/servicePrincipals/{gid}/appRoleAssignedTo"))
            .await)
            >= 2
    );
    // The grant shows in the client's next Graph token.
    let pw = op
        .post(
            &format!(
                "/applications/{}/addPassword",
                app.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let (_, t) = secret_token(
        &c,
        &emu,
        app_id,
        pw.body["secretText"].as_str().unwrap(),
        "https://graph.microsoft.com/.default",
    )
    .await;
    let claims = verify_with_jwks(&c, &emu, t["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["roles"], json!(["Application.Read.All"]));
    let aid = a.body["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/servicePrincipals/{gid}/appRoleAssignedTo/{aid}"))
            .await
            .status,
        204
    );
    assert_eq!(
        v(&admin
            .get(&format!("/servicePrincipals/{sid}/appRoleAssignments"))
            .await),
        0
    );
    // oauth2PermissionGrants
    let hcid = hc.body["id"].as_str().unwrap();
    let g = admin.post("/oauth2PermissionGrants", json!({"clientId": sid, "consentType": "AllPrincipals", "resourceId": hcid, "scope": "user_impersonation"})).await;
    assert_eq!(g.status, 201, "{}", g.body);
    assert_eq!(g.body["id"].as_str().unwrap().len(), 43);
    assert!(g.body["principalId"].is_null());
    let again = admin.post("/oauth2PermissionGrants", json!({"clientId": sid, "consentType": "AllPrincipals", "resourceId": hcid, "scope": "user_impersonation"})).await;
    assert_eq!(again.status, 409);
    let gid2 = g.body["id"].as_str().unwrap();
    assert_eq!(
        v(&admin
            .get(&format!(
                "/oauth2PermissionGrants?$filter=clientId eq '{sid}'"
            ))
            .await),
        1
    );
    assert_eq!(
        admin
            .patch(
                &format!("/oauth2PermissionGrants/{gid2}"),
                json!({"scope": "user_impersonation openid"})
            )
            .await
            .status,
        204
    );
    assert_eq!(
        admin
            .get(&format!("/oauth2PermissionGrants/{gid2}"))
            .await
            .body["scope"],
        "user_impersonation openid"
    );
    assert_eq!(
        admin
            .delete(&format!("/oauth2PermissionGrants/{gid2}"))
            .await
            .status,
        204
    );
    // Deleting the app deletes its SP
    assert_eq!(
        op.delete(&format!(
            "/applications/{}",
            app.body["id"].as_str().unwrap()
        ))
        .await
        .status,
        204
    );
    assert_eq!(
        op.get(&format!("/servicePrincipals/{sid}")).await.status,
        404
    );
    // SP delete
    let app2 = op
        .post("/applications", json!({"displayName": "sp-app2"}))
        .await;
    let sp2 = op
        .post("/servicePrincipals", json!({"appId": app2.body["appId"]}))
        .await;
    assert_eq!(
        op.delete(&format!(
            "/servicePrincipals/{}",
            sp2.body["id"].as_str().unwrap()
        ))
        .await
        .status,
        204
    );
    let none = op
        .post("/servicePrincipals", json!({"appId": uuid()}))
        .await;
    assert_eq!(none.status, 400);
    assert_eq!(
        none.body["error"]["details"][0]["code"],
        "NoBackingApplicationObject"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_api_state_and_call_log() {
    let (emu, c, op, _) = setup().await;
    let app = op
        .post("/applications", json!({"displayName": "logged"}))
        .await;
    op.post(
        &format!(
            "/applications/{}/addPassword",
            app.body["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    op.get("/applications/does-not-exist").await;
    let calls: Value = c
        .get(format!("{}/_emulator/calls", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"token")
            && ops.contains(&"applications.create")
            && ops.contains(&"applications.addPassword")
            && ops.contains(&"applications.get"),
        "{ops:?}"
    );
    let last = calls.as_array().unwrap().last().unwrap();
    assert_eq!(last["status"], 404);
    assert_eq!(last["caller"], emu.client_id());
    assert_eq!(last["tenant"], emu.tenant_id());
    let summary: Value = c
        .get(format!("{}/_emulator/calls/summary", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["by_operation"]["applications.create"], 1);
    assert_eq!(summary["by_status"]["404"], 1);
    assert_eq!(
        c.delete(format!("{}/_emulator/calls", emu.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let calls: Value = c
        .get(format!("{}/_emulator/calls", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.as_array().unwrap().len(), 0);
    let state: Value = c
        .get(format!("{}/_emulator/state", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = state.to_string();
    assert!(
        !text.contains(&emu.client_secret()),
        "state must not reveal secrets"
    );
    let t = &state["tenants"][emu.tenant_id()];
    assert!(
        t["applications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["displayName"] == "logged")
    );
    assert!(t["service_principals"].as_array().unwrap().len() >= 3);
    assert!(!t["app_role_assignments"].as_array().unwrap().is_empty());
    // admin token endpoint
    let tok: Value = c
        .post(format!(
            "{}/_emulator/tenants/{}/admin-token",
            emu.base_url(),
            emu.tenant_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let g = Graph::new(&c, &emu, tok["access_token"].as_str().unwrap());
    assert_eq!(
        g.patch(
            &format!("/applications/{}", app.body["id"].as_str().unwrap()),
            json!({"notes": "drift"})
        )
        .await
        .status,
        204
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn first_party_healthcare_service_principal_absent_until_imported_by_an_admin() {
    let mut cfg = config();
    cfg.tenants[0].healthcare_service_principal = false;
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    let path = "/servicePrincipals(appId='4f6778d8-5aef-43dc-a1ff-b073724b9495')";
    assert_eq!(admin.get(path).await.status, 404);
    // No token for the service can be issued in the tenant without its service principal.
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://azurehealthcareapis.com/.default",
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS500011"),
        "{v}"
    );
    // Importing it (`az ad sp create --id …`) is beyond Application.ReadWrite.OwnedBy.
    let body = json!({"appId": "4f6778d8-5aef-43dc-a1ff-b073724b9495"});
    let r = op.post("/servicePrincipals", body.clone()).await;
    assert_eq!(r.status, 403);
    let r = admin.post("/servicePrincipals", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["appDisplayName"], "Azure Healthcare APIs");
    assert_eq!(admin.get(path).await.status, 200);
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://azurehealthcareapis.com/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    emu.shutdown().await;
}
