//! Shared helpers for the emulator's integration tests.
#![allow(dead_code)]
pub mod signin;

use entra_emulator::crypto::{self, Jwt};
use entra_emulator::{Config, Running};
use serde_json::{Value, json};

pub const SIGNING_KEY: &str = include_str!("../fixtures/signing-key.pem");
pub const CLIENT_KEY: &str = include_str!("../fixtures/client-key.pem");
pub const CLIENT_CERT: &str = include_str!("../fixtures/client-cert.pem");
pub const ISSUER_KEY: &str = include_str!("../fixtures/issuer-key.pem");

pub fn config() -> Config {
    Config {
        signing_key_pem: Some(SIGNING_KEY.into()),
        ..Config::default()
    }
}

pub async fn start(cfg: Config) -> (Running, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = entra_emulator::start(cfg).await.expect("emulator starts");
    let client = client_for(&emu);
    (emu, client)
}

pub fn client_for(emu: &Running) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

pub async fn token_raw(
    c: &reqwest::Client,
    emu: &Running,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = c
        .post(format!(
            "{}{tenant}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

pub async fn secret_token(
    c: &reqwest::Client,
    emu: &Running,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    client_credentials(c, emu, client_id, &[("client_secret", secret)], scope).await
}

/// A Graph token by client credentials with an assertion signed by the fixture certificate's key.
pub async fn cert_token(c: &reqwest::Client, emu: &Running, client_id: &str) -> (u16, Value) {
    let aud = format!(
        "{}{}/oauth2/v2.0/token",
        emu.authority_host(),
        emu.tenant_id()
    );
    let assertion = cert_assertion(client_id, &aud, "RS256", "x5t-std", 600);
    let credential = [
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let scope = "https://graph.microsoft.com/.default";
    client_credentials(c, emu, client_id, &credential, scope).await
}

/// The client-credentials grant in the first tenant, the client proven by `credential`.
async fn client_credentials(
    c: &reqwest::Client,
    emu: &Running,
    client_id: &str,
    credential: &[(&str, &str)],
    scope: &str,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope),
    ];
    form.extend_from_slice(credential);
    token_raw(c, emu, &emu.tenant_id(), &form).await
}

/// A Graph token for the bootstrap operator app.
pub async fn operator_token(c: &reqwest::Client, emu: &Running) -> String {
    let (st, v) = secret_token(
        c,
        emu,
        &emu.client_id(),
        &emu.client_secret(),
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

pub struct Graph {
    pub c: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Graph {
    pub fn new(c: &reqwest::Client, emu: &Running, token: &str) -> Self {
        Graph {
            c: c.clone(),
            base: emu.graph_url(),
            token: token.into(),
        }
    }
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut rb = self
            .c
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        Resp {
            status,
            headers,
            body,
        }
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.req("PATCH", path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None, &[]).await
    }
}

/// A new application and its service principal: (object id, appId).
pub async fn app_with_service_principal(g: &Graph, name: &str) -> (String, String) {
    let app = g.post("/applications", json!({"displayName": name})).await;
    assert_eq!(app.status, 201, "{}", app.body);
    let app_id = app.body["appId"].as_str().unwrap().to_string();
    let sp = g.post("/servicePrincipals", json!({"appId": app_id})).await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    (app.body["id"].as_str().unwrap().to_string(), app_id)
}

pub fn err_code(r: &Resp) -> String {
    r.body["error"]["code"].as_str().unwrap_or("").to_string()
}

/// `(status, error.code, error.message)`.
pub fn refusal(r: &Resp) -> (u16, String, String) {
    let m = r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (r.status, err_code(r), m)
}

/// The first tenant's v2.0 OpenID configuration.
pub async fn openid_configuration(c: &reqwest::Client, emu: &Running) -> Value {
    let url = format!(
        "{}{}/v2.0/.well-known/openid-configuration",
        emu.authority_host(),
        emu.tenant_id()
    );
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// Verifies a token against the emulator's published JWKS; returns its claims.
pub async fn verify_with_jwks(c: &reqwest::Client, emu: &Running, token: &str) -> Value {
    let disc = openid_configuration(c, emu).await;
    let jwks: Value = c
        .get(disc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = Jwt::parse(token).unwrap();
    let kid = jwt.header["kid"].as_str().unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid published");
    let pk = crypto::jwk_public_key(key).unwrap();
    jwt.verify(&pk)
        .expect("signature verifies with the published key");
    jwt.claims
}

/// A client assertion signed with the fixture client key.
pub fn cert_assertion(
    client_id: &str,
    aud: &str,
    alg: &str,
    thumb: &str,
    exp_offset: i64,
) -> String {
    let der = crypto::cert_der_from_pem(CLIENT_CERT).unwrap();
    let key = crypto::parse_private_key(CLIENT_KEY).unwrap();
    let header = match thumb {
        "x5t-std" => json!({"alg": alg, "typ": "JWT", "x5t": crypto::b64(&crypto::sha1(&der))}),
        "x5t-url" => json!({"alg": alg, "typ": "JWT", "x5t": crypto::b64url(&crypto::sha1(&der))}),
        _ => json!({"alg": alg, "typ": "JWT", "x5t#S256": crypto::b64url(&crypto::sha256(&der))}),
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"aud": aud, "iss": client_id, "sub": client_id, "jti": uuid::Uuid::new_v4().to_string(),
                        "nbf": now - 60 + exp_offset.min(0), "exp": now + exp_offset, "iat": now});
    if alg == "PS256" {
        crypto::sign_ps256(&key, &header, &claims)
    } else {
        crypto::sign_rs256(&key, &header, &claims)
    }
}

pub fn issuer_jwks() -> Value {
    use rsa::traits::PublicKeyParts;
    let key = crypto::parse_private_key(ISSUER_KEY).unwrap();
    let p = key.to_public_key();
    json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "issuer-key-1",
        "n": crypto::b64url(&p.n().to_bytes_be()), "e": crypto::b64url(&p.e().to_bytes_be())}]})
}

/// A service-account style token from the fixture issuer.
pub fn federated_assertion(issuer: &str, subject: &str, aud: &str, exp_offset: i64) -> String {
    let key = crypto::parse_private_key(ISSUER_KEY).unwrap();
    let now = chrono::Utc::now().timestamp();
    crypto::sign_rs256(
        &key,
        &json!({"alg": "RS256", "kid": "issuer-key-1"}),
        &json!({"iss": issuer, "sub": subject, "aud": [aud], "iat": now - 10, "nbf": now - 10, "exp": now + exp_offset}),
    )
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
