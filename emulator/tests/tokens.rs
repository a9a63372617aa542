//! Token endpoint: secret, certificate and federated flows; AADSTS errors; discovery; JWKS.
mod common;
use common::*;
use entra_emulator::{BootstrapApp, Config, FederatedTrust, TenantConfig, TrustedIssuer};
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const SA: &str = "system:serviceaccount:fhir-system:fhir-app-operator";

fn full_config() -> Config {
    let mut cfg = config();
    let app = &mut cfg.tenants[0].apps[0];
    app.certificate_pem = Some(CLIENT_CERT.into());
    app.federated.push(FederatedTrust {
        issuer: ISSUER.into(),
        subject: SA.into(),
        audience: String::new(),
    });
    cfg.trusted_issuers.push(TrustedIssuer {
        issuer: ISSUER.into(),
        jwks: Some(issuer_jwks()),
    });
    cfg
}

#[tokio::test]
async fn secret_in_form_and_basic_gives_graph_token_with_roles() {
    let (emu, c) = start(full_config()).await;
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].is_u64(), "expires_in must be numeric: {v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", emu.tenant_id())
    );
    assert_eq!(claims["tid"], emu.tenant_id());
    assert_eq!(claims["appid"], emu.client_id());
    assert_eq!(claims["appidacr"], "1");
    assert_eq!(claims["roles"], json!(["Application.ReadWrite.OwnedBy"]));

    // HTTP Basic (RFC 6749 2.3.1)
    let r = c
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            emu.authority_host(),
            emu.tenant_id()
        ))
        .basic_auth(emu.client_id(), Some(emu.client_secret()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    assert!(r.headers().contains_key("x-ms-request-id"));

    // Verified-domain alias of the tenant works too.
    let (st, _) = token_raw(
        &c,
        &emu,
        "contoso.onmicrosoft.com",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.client_id()),
            ("client_secret", &emu.client_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn certificate_assertions_rs256_ps256_all_thumbprint_forms() {
    let (emu, c) = start(full_config()).await;
    let aud = format!(
        "{}{}/oauth2/v2.0/token",
        emu.authority_host(),
        emu.tenant_id()
    );
    for (alg, thumb) in [
        ("RS256", "x5t-std"),
        ("RS256", "x5t-url"),
        ("PS256", "x5t#S256"),
        ("RS256", "x5t#S256"),
    ] {
        let a = cert_assertion(&emu.client_id(), &aud, alg, thumb, 600);
        let (st, v) = token_raw(
            &c,
            &emu,
            &emu.tenant_id(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &emu.client_id()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &a),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!(st, 200, "{alg} {thumb}: {v}");
        let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
        assert_eq!(claims["appidacr"], "2");
        assert_eq!(claims["roles"], json!(["Application.ReadWrite.OwnedBy"]));
    }
    // Expired assertion -> AADSTS700024
    let a = cert_assertion(&emu.client_id(), &aud, "RS256", "x5t-std", -3600);
    let (st, v) = token_raw(
        &c,
        &emu,
        &emu.tenant_id(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.client_id()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["error_codes"], json!([700024]), "{v}");
    emu.shutdown().await;
}

#[tokio::test]
async fn federated_assertion_matches_fic_and_issuer_keys() {
    let (emu, c) = start(full_config()).await;
    let form = |a: String| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", emu.client_id()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", a),
            ("scope", "https://graph.microsoft.com/.default".into()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = format!(
            "{}{}/oauth2/v2.0/token",
            emu.authority_host(),
            emu.tenant_id()
        );
        async move {
            let r = c.post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = send(form(federated_assertion(
        ISSUER,
        SA,
        "api://AzureADTokenExchange",
        3600,
    )))
    .await;
    assert_eq!(st, 200, "{v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["appid"], emu.client_id());

    // Mismatched subject -> 70021
    let (st, v) = send(form(federated_assertion(
        ISSUER,
        "system:serviceaccount:other:sa",
        "api://AzureADTokenExchange",
        3600,
    )))
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["error_codes"], json!([70021]), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS70021: No matching federated identity record found")
    );
    // Expired -> 700024
    let (_, v) = send(form(federated_assertion(
        ISSUER,
        SA,
        "api://AzureADTokenExchange",
        -3600,
    )))
    .await;
    assert_eq!(v["error_codes"], json!([700024]), "{v}");
    // Signed by a key the issuer does not publish -> rejected
    let forged = {
        let key = entra_emulator::crypto::parse_private_key(CLIENT_KEY).unwrap();
        let now = chrono::Utc::now().timestamp();
        entra_emulator::crypto::sign_rs256(
            &key,
            &json!({"alg": "RS256", "kid": "issuer-key-1"}),
            &json!({"iss": ISSUER, "sub": SA, "aud": "api://AzureADTokenExchange", "nbf": now, "exp": now + 600}),
        )
    };
    let (st, v) = send(form(forged)).await;
    assert_eq!(st, 400);
    assert_eq!(v["error"], "invalid_client", "{v}");
    emu.shutdown().await;
}

#[tokio::test]
async fn federated_issuer_added_through_admin_api() {
    let (emu, c) = start(config()).await;
    let issuer = "https://oidc.example/cluster-2";
    let r = c
        .post(format!("{}/_emulator/trusted-issuers", emu.base_url()))
        .json(&json!({"issuer": issuer, "jwks": issuer_jwks()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Add a FIC to the operator app through Graph (admin token).
    let g = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    let app = g
        .get(&format!("/applications(appId='{}')", emu.client_id()))
        .await;
    assert_eq!(app.status, 200);
    let r = g.post(&format!("/applications/{}/federatedIdentityCredentials", app.body["id"].as_str().unwrap()),
        json!({"name": "c2", "issuer": issuer, "subject": "sa-2", "audiences": ["api://AzureADTokenExchange"]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let a = federated_assertion(issuer, "sa-2", "api://AzureADTokenExchange", 600);
    let (st, v) = token_raw(
        &c,
        &emu,
        &emu.tenant_id(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.client_id()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    emu.shutdown().await;
}

#[tokio::test]
async fn error_codes_are_aadsts() {
    let (emu, c) = start(config()).await;
    let g = "https://graph.microsoft.com/.default";
    let (st, v) = secret_token(&c, &emu, &emu.client_id(), "wrong", g).await;
    assert_eq!((st, v["error"].as_str().unwrap()), (401, "invalid_client"));
    assert_eq!(v["error_codes"], json!([7000215]));
    for k in [
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let unknown = uuid();
    let (st, v) = secret_token(&c, &emu, &unknown, "x", g).await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "unauthorized_client")
    );
    assert_eq!(v["error_codes"], json!([700016]));
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://graph.microsoft.com/User.Read",
    )
    .await;
    assert_eq!((st, v["error"].as_str().unwrap()), (400, "invalid_scope"));
    assert_eq!(v["error_codes"], json!([70011]));
    // MSAL Go / Java add the OIDC scopes to client credentials: ignored beside `/.default`, refused alone.
    let with_oidc = format!("{g} openid offline_access profile");
    let (st, v) = secret_token(&c, &emu, &emu.client_id(), &emu.client_secret(), &with_oidc).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "openid offline_access profile",
    )
    .await;
    assert_eq!((st, v["error"].as_str().unwrap()), (400, "invalid_scope"));
    let (st, v) = secret_token(
        &c,
        &emu,
        &emu.client_id(),
        &emu.client_secret(),
        "api://nothing-here/.default",
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "invalid_resource")
    );
    assert_eq!(v["error_codes"], json!([500011]));
    let (st, v) = token_raw(&c, &emu, &uuid(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(st, 400);
    assert_eq!(v["error_codes"], json!([90002]));
    emu.shutdown().await;
}

#[tokio::test]
async fn discovery_documents_and_jwks() {
    let (emu, c) = start(config()).await;
    let t = emu.tenant_id();
    let v2: Value = c
        .get(format!(
            "{}{t}/v2.0/.well-known/openid-configuration",
            emu.authority_host()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v2["token_endpoint"],
        format!("{}/{t}/oauth2/v2.0/token", emu.base_url())
    );
    assert_eq!(v2["issuer"], format!("{}/{t}/v2.0", emu.base_url()));
    assert_eq!(
        v2["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic"
        ])
    );
    let v1: Value = c
        .get(format!(
            "{}{t}/.well-known/openid-configuration",
            emu.authority_host()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{t}/"));
    let keys: Value = c
        .get(v2["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k = &keys["keys"][0];
    for f in ["kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"] {
        assert!(k.get(f).is_some(), "JWK lacks {f}");
    }
    let inst: Value = c
        .get(format!(
            "{}common/discovery/instance?api-version=1.1&authorization_endpoint=x",
            emu.authority_host()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(inst["tenant_discovery_endpoint"].is_string());
    // The tenant of the authority asked about (as recorded: TestAuthorizationCodeCredential_ConfidentialLive),
    // so that MSAL's next request, that tenant's discovery document, succeeds.
    let tid = emu.tenant_id();
    let inst: Value = c
        .get(format!("{}common/discovery/instance", emu.authority_host()))
        .query(&[
            ("api-version", "1.1"),
            (
                "authorization_endpoint",
                &format!("https://login.microsoftonline.com/{tid}/oauth2/v2.0/authorize"),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tde = inst["tenant_discovery_endpoint"].as_str().unwrap();
    assert_eq!(
        tde,
        format!(
            "{}{tid}/v2.0/.well-known/openid-configuration",
            emu.authority_host()
        )
    );
    let st = c.get(tde).send().await.unwrap().status();
    assert_eq!(st, 200);
    emu.shutdown().await;
}

/// A resource app with requestedAccessTokenVersion 2 and an app role; a client with an assignment
/// gets a v2 token with that role; the managed FHIR resource gives a v1 token.
#[tokio::test]
async fn resource_tokens_v1_v2_and_roles() {
    let mut cfg = config();
    cfg.tenants[0].apps[0].permissions = vec![
        "Application.ReadWrite.All".into(),
        "AppRoleAssignment.ReadWrite.All".into(),
    ];
    let (emu, c) = start(cfg).await;
    let g = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let role_id = uuid();
    let api = g.post("/applications", json!({"displayName": "fhir-api", "identifierUris": ["https://contoso.example/fhir"],
        "api": {"requestedAccessTokenVersion": 2},
        "appRoles": [{"id": role_id, "value": "globalReader", "displayName": "Global reader", "description": "d", "allowedMemberTypes": ["Application"], "isEnabled": true}]})).await;
    assert_eq!(api.status, 201, "{}", api.body);
    let api_sp = g
        .post("/servicePrincipals", json!({"appId": api.body["appId"]}))
        .await;
    assert_eq!(api_sp.status, 201, "{}", api_sp.body);
    let client = g
        .post("/applications", json!({"displayName": "fhir-client"}))
        .await;
    let client_sp = g
        .post("/servicePrincipals", json!({"appId": client.body["appId"]}))
        .await;
    let pw = g
        .post(
            &format!(
                "/applications/{}/addPassword",
                client.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(pw.status, 200);
    let a = g.post(&format!("/servicePrincipals/{}/appRoleAssignedTo", api_sp.body["id"].as_str().unwrap()),
        json!({"principalId": client_sp.body["id"], "resourceId": api_sp.body["id"], "appRoleId": role_id})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let cid = client.body["appId"].as_str().unwrap();
    let secret = pw.body["secretText"].as_str().unwrap();
    let (st, v) = secret_token(
        &c,
        &emu,
        cid,
        secret,
        "https://contoso.example/fhir/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["aud"], api.body["appId"]);
    assert_eq!(
        claims["iss"],
        format!("{}/{}/v2.0", emu.base_url(), emu.tenant_id())
    );
    assert_eq!(claims["azp"], cid);
    assert_eq!(claims["roles"], json!(["globalReader"]));
    // api://{appId} style resource also resolves (by appId)
    let (st, _) = secret_token(
        &c,
        &emu,
        cid,
        secret,
        &format!("{}/.default", api.body["appId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(st, 200);
    // Managed FHIR (Azure Healthcare APIs): v1 token, audience as requested.
    let (st, v) = secret_token(
        &c,
        &emu,
        cid,
        secret,
        "https://azurehealthcareapis.com/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "https://azurehealthcareapis.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", emu.tenant_id())
    );
    assert!(claims.get("roles").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn second_tenant_via_admin_api() {
    let (emu, c) = start(config()).await;
    let tid = uuid();
    let app = BootstrapApp {
        client_id: uuid(),
        client_secret: Some("s3cret-value-for-tenant-b".into()),
        ..Default::default()
    };
    let r = c
        .post(format!("{}/_emulator/tenants", emu.base_url()))
        .json(&TenantConfig {
            tenant_id: tid.clone(),
            verified_domains: vec!["fabrikam.example".into()],
            apps: vec![app.clone()],
            ..Default::default()
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (st, v) = token_raw(
        &c,
        &emu,
        &tid,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", "s3cret-value-for-tenant-b"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["tid"], tid);
    // The first tenant's app is unknown in the second tenant (single-tenant app).
    let (st, v) = token_raw(
        &c,
        &emu,
        &tid,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.client_id()),
            ("client_secret", &emu.client_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["error_codes"], json!([700016]));
    emu.shutdown().await;
}

/// A multi-tenant app registered in tenant A, provisioned (SP) in tenant B, signs in to tenant B.
#[tokio::test]
async fn multi_tenant_app_signs_in_to_other_tenant() {
    let (emu, c) = start(config()).await;
    let tb = uuid();
    let r = c
        .post(format!("{}/_emulator/tenants", emu.base_url()))
        .json(&json!({"tenant_id": tb, "verified_domains": ["fabrikam.example"], "apps": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ga = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    let gb = Graph::new(&c, &emu, &emu.admin_token(&tb));
    let app = ga
        .post(
            "/applications",
            json!({"displayName": "multi", "signInAudience": "AzureADMultipleOrgs"}),
        )
        .await;
    let app_id = app.body["appId"].as_str().unwrap();
    let pw = ga
        .post(
            &format!(
                "/applications/{}/addPassword",
                app.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let secret = pw.body["secretText"].as_str().unwrap();
    let form = |t: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", app_id.to_string()),
            ("client_secret", secret.to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
            ("t", t.to_string()),
        ]
    };
    let send = |t: String| {
        let (c, url, f) = (
            c.clone(),
            format!("{}{t}/oauth2/v2.0/token", emu.authority_host()),
            form(&t),
        );
        async move {
            let r = c.post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Not provisioned in B yet.
    let (st, v) = send(tb.clone()).await;
    assert_eq!(st, 400, "{v}");
    let sp = gb
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    assert_eq!(sp.body["appOwnerOrganizationId"], emu.tenant_id());
    let (st, v) = send(tb.clone()).await;
    assert_eq!(st, 200, "{v}");
    let claims = verify_with_jwks(&c, &emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["tid"], tb);
    assert_eq!(claims["oid"], sp.body["id"]);
    emu.shutdown().await;
}
