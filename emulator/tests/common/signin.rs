//! Sign-in fixtures: a tenant with users, a FHIR API exposing delegated scopes and an app role,
//! and a web (confidential), a SPA and a mobile/desktop (public) client; plus a tiny "browser"
//! (no redirects followed, one cookie jar) that fills in the emulator's HTML forms.
use super::{Graph, config, operator_token, start, uuid};
use entra_emulator::{Running, UserConfig};
use serde_json::{Value, json};

pub const PW: &str = "Correct-Horse-9";
pub const ADA: &str = "ada@contoso.example";
pub const BOB: &str = "bob.admin@contoso.example";
pub const EVE: &str = "eve@contoso.example";
pub const API_URI: &str = "https://contoso.example/fhir";
pub const WEB_REDIRECT: &str = "https://portal.contoso.example/signin-oidc";
pub const SPA_REDIRECT: &str = "http://localhost:3000/callback";
pub const NATIVE_REDIRECT: &str = "http://localhost";

pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
pub const SA: &str = "system:serviceaccount:fhir-system:fhir-app-operator";

pub struct Fixture {
    pub emu: Running,
    pub c: reqwest::Client,
    pub g: Graph,
    pub tid: String,
    pub api_app_id: String,
    pub api_sp: String,
    pub web: String,
    pub web_secret: String,
    pub spa: String,
    pub native: String,
    pub role_id: String,
}

fn user(upn: &str, name: &str, groups: &[&str], admin: bool) -> UserConfig {
    UserConfig {
        user_principal_name: upn.into(),
        password: PW.into(),
        display_name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        admin,
        ..Default::default()
    }
}

/// `token_version`: the API's requestedAccessTokenVersion.
pub async fn fixture(token_version: i64) -> Fixture {
    let mut cfg = config();
    // The bootstrap app can also sign in with a certificate or a federated assertion.
    let boot = &mut cfg.tenants[0].apps[0];
    boot.certificate_pem = Some(super::CLIENT_CERT.into());
    boot.federated.push(entra_emulator::FederatedTrust {
        issuer: ISSUER.into(),
        subject: SA.into(),
        audience: String::new(),
    });
    cfg.trusted_issuers.push(entra_emulator::TrustedIssuer {
        issuer: ISSUER.into(),
        jwks: Some(super::issuer_jwks()),
    });
    // The CA file goes under target/, not the system temp directory.
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    cfg.ca_file = Some(tmp.join(format!("signin-ca-{}.pem", uuid())));
    cfg.tenants[0].apps[0].permissions = vec![
        "Application.ReadWrite.All".into(),
        "AppRoleAssignment.ReadWrite.All".into(),
        "DelegatedPermissionGrant.ReadWrite.All".into(),
    ];
    cfg.tenants[0].users = vec![
        user(ADA, "Ada Lovelace", &["clinicians"], false),
        user(BOB, "Bob Admin", &[], true),
        user(EVE, "Eve", &[], false),
    ];
    let (emu, c) = start(cfg).await;
    let _ = std::fs::remove_file(emu.ca_file()); // read at start; the tests hold it in memory
    let g = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let (role_id, imp, read, adm) = (uuid(), uuid(), uuid(), uuid());
    let scope = |id: &str, v: &str, ty: &str| {
        json!({"id": id, "value": v, "type": ty, "isEnabled": true,
        "adminConsentDisplayName": format!("{v} (admin)"), "adminConsentDescription": "d",
        "userConsentDisplayName": format!("Access {v}"), "userConsentDescription": "d"})
    };
    let api = g.post("/applications", json!({"displayName": "fhir-server", "identifierUris": [API_URI],
        "api": {"requestedAccessTokenVersion": token_version, "oauth2PermissionScopes": [
            scope(&imp, "user_impersonation", "User"), scope(&read, "patient.all.read", "User"), scope(&adm, "system.all.write", "Admin")]},
        "appRoles": [{"id": role_id, "value": "clinician", "displayName": "Clinician", "description": "d", "allowedMemberTypes": ["User"], "isEnabled": true}]})).await;
    assert_eq!(api.status, 201, "{}", api.body);
    let api_app_id = api.body["appId"].as_str().unwrap().to_string();
    let api_sp = g
        .post("/servicePrincipals", json!({"appId": api_app_id}))
        .await;
    assert_eq!(api_sp.status, 201, "{}", api_sp.body);
    let rra = json!([{"resourceAppId": api_app_id, "resourceAccess": [{"id": imp, "type": "Scope"}, {"id": read, "type": "Scope"}]}]);
    let mk = |body: Value| {
        let g = &g;
        async move {
            let a = g.post("/applications", body).await;
            assert_eq!(a.status, 201, "{}", a.body);
            let sp = g
                .post("/servicePrincipals", json!({"appId": a.body["appId"]}))
                .await;
            assert_eq!(sp.status, 201, "{}", sp.body);
            (
                a.body["appId"].as_str().unwrap().to_string(),
                a.body["id"].as_str().unwrap().to_string(),
            )
        }
    };
    let (web, web_obj) = mk(json!({"displayName": "clinician-portal", "requiredResourceAccess": rra,
        "web": {"redirectUris": [WEB_REDIRECT, "http://localhost/callback"], "implicitGrantSettings": {"enableIdTokenIssuance": true}}})).await;
    let pw = g
        .post(&format!("/applications/{web_obj}/addPassword"), json!({}))
        .await;
    assert_eq!(pw.status, 200);
    let (spa, _) = mk(json!({"displayName": "smart-spa", "requiredResourceAccess": rra, "spa": {"redirectUris": [SPA_REDIRECT]}})).await;
    let (native, _) = mk(json!({"displayName": "desktop-app", "requiredResourceAccess": rra, "isFallbackPublicClient": true,
        "publicClient": {"redirectUris": [NATIVE_REDIRECT]}})).await;
    let tid = emu.tenant_id();
    Fixture {
        api_sp: api_sp.body["id"].as_str().unwrap().to_string(),
        web_secret: pw.body["secretText"].as_str().unwrap().to_string(),
        emu,
        c,
        g,
        tid,
        api_app_id,
        web,
        spa,
        native,
        role_id,
    }
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of a hidden input.
    pub fn field(&self, name: &str) -> String {
        let pat = format!("name=\"{name}\" value=\"");
        let i = self
            .body
            .find(&pat)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + pat.len();
        self.body[i..].split('"').next().unwrap().to_string()
    }
    /// The request handle of a page that must have an element with this id.
    pub fn form_of(&self, id: &str) -> String {
        assert!(
            self.body.contains(&format!("id=\"{id}\"")),
            "no #{id}: {} {}",
            self.status,
            self.body
        );
        self.field("req")
    }
    /// Parameters of the redirect (query or fragment).
    pub fn params(&self) -> std::collections::HashMap<String, String> {
        let part = self
            .location
            .split_once('#')
            .map(|x| x.1)
            .or(self.location.split_once('?').map(|x| x.1))
            .unwrap_or("");
        serde_urlencoded::from_str(part).unwrap()
    }
}

/// A browser that does not follow redirects and keeps the emulator's cookies.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<String>,
}

impl Browser {
    pub fn new(emu: &Running) -> Self {
        let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            http,
            base: emu.base_url(),
            cookies: vec![],
        }
    }
    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let rb = if self.cookies.is_empty() {
            rb
        } else {
            rb.header("Cookie", self.cookies.join("; "))
        };
        let r = rb.send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let kv = v.to_str().unwrap().split(';').next().unwrap().to_string();
            let name = kv.split('=').next().unwrap().to_string();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(kv);
        }
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Page {
            status,
            location,
            body: r.text().await.unwrap(),
            headers,
        }
    }
    pub async fn get(&mut self, path_and_query: &str) -> Page {
        let url = format!("{}{path_and_query}", self.base);
        let rb = self.http.get(url);
        self.send(rb).await
    }
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(rb).await
    }
    /// Signs in on a sign-in page.
    pub async fn sign_in(&mut self, tid: &str, page: &Page, upn: &str, pw: &str) -> Page {
        let req = page.form_of("passwd");
        self.post(
            &format!("/{tid}/login"),
            &[("req", &req), ("login", upn), ("passwd", pw)],
        )
        .await
    }
    /// Accepts (or cancels) a consent page.
    pub async fn consent(&mut self, tid: &str, page: &Page, accept: bool, for_org: bool) -> Page {
        let req = page.form_of("permissions");
        let mut f = vec![
            ("req", req.as_str()),
            ("accept", if accept { "true" } else { "false" }),
        ];
        if for_org {
            f.push(("org", "true"));
        }
        self.post(&format!("/{tid}/consent"), &f).await
    }
}

/// `/{tid}/oauth2/v2.0/authorize?` + the parameters, form-encoded.
pub fn authorize_url(tid: &str, params: &[(&str, &str)]) -> String {
    format!(
        "/{tid}/oauth2/v2.0/authorize?{}",
        serde_urlencoded::to_string(params).unwrap()
    )
}

impl Fixture {
    /// A v2 authorize URL for the web client with `scope` and more parameters.
    pub fn web_url(&self, scope: &str, extra: &[(&str, &str)]) -> String {
        let mut p = vec![
            ("client_id", self.web.as_str()),
            ("response_type", "code"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", scope),
        ];
        p.extend_from_slice(extra);
        authorize_url(&self.tid, &p)
    }
}

/// Signs Ada in (consenting) and returns the redirect's parameters.
pub async fn code_for(
    f: &Fixture,
    b: &mut Browser,
    client: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let scope = format!("{API_URI}/user_impersonation openid offline_access");
    let mut p = vec![
        ("client_id", client),
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("scope", scope.as_str()),
    ];
    p.extend_from_slice(extra);
    let mut r = b.get(&authorize_url(&f.tid, &p)).await;
    if r.body.contains("id=\"passwd\"") {
        r = b.sign_in(&f.tid, &r, ADA, PW).await;
    }
    if r.body.contains("id=\"permissions\"") {
        r = b.consent(&f.tid, &r, true, false).await;
    }
    assert_eq!(r.status, 302, "{}", r.body);
    r.params()
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let v = format!("{}{}", uuid().replace('-', ""), uuid().replace('-', "")); // 64 chars
    let ch = entra_emulator::crypto::b64url(&entra_emulator::crypto::sha256(v.as_bytes()));
    (v, ch)
}

/// POSTs a form to the token endpoint with optional extra headers; (status, headers, JSON body).
pub async fn token(
    f: &Fixture,
    v1: bool,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let path = if v1 {
        "oauth2/token"
    } else {
        "oauth2/v2.0/token"
    };
    let mut rb =
        f.c.post(format!("{}{}/{path}", f.emu.authority_host(), f.tid))
            .form(form);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let st = r.status().as_u16();
    let h = r.headers().clone();
    (st, h, r.json().await.unwrap_or(Value::Null))
}

/// The AADSTS code of a token-endpoint error.
pub fn code_of(v: &Value) -> i64 {
    v["error_codes"][0].as_i64().unwrap_or(0)
}

/// A token-endpoint error: HTTP status, `error` and AADSTS code.
pub fn assert_err(status: u16, body: &Value, want_status: u16, error: &str, code: i64) {
    assert_eq!(
        (status, body["error"].as_str().unwrap_or(""), code_of(body)),
        (want_status, error, code),
        "{body}"
    );
}

/// `POST /{tid}/oauth2/v2.0/devicecode` for `client`: (status, JSON body).
pub async fn devicecode(f: &Fixture, client: &str, scope: &str) -> (u16, Value) {
    let url = format!("{}{}/oauth2/v2.0/devicecode", f.emu.authority_host(), f.tid);
    let r =
        f.c.post(url)
            .form(&[("client_id", client), ("scope", scope)])
            .send()
            .await
            .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Redeems a code issued to the web client at `WEB_REDIRECT`, with its secret.
pub async fn redeem_web(f: &Fixture, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", f.web.as_str()),
        ("client_secret", f.web_secret.as_str()),
        ("code", code),
        ("redirect_uri", WEB_REDIRECT),
    ];
    let (st, _, v) = token(f, false, &form, &[]).await;
    (st, v)
}
