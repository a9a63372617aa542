//! Client authentication at the token endpoint: which application is calling, and the credential
//! it presented — a secret (form or HTTP Basic), a certificate assertion, or a federated assertion
//! checked against the issuer's published keys.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use super::aadsts_error;
use crate::crypto::{self, Jwt};
use crate::request::ReqCtx;
use crate::state::store::{self, AppRec, Secret, SpRec, s};
use crate::state::views::GraphObject;
use crate::state::{Shared, now_secs};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;
use std::collections::HashMap;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

enum Cred {
    Secret(String),
    Assertion(String),
    None,
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let b = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = String::from_utf8(crypto::b64_any(b)?).ok()?;
    let (u, p) = raw.split_once(':')?;
    let dec = |x: &str| {
        percent_encoding::percent_decode_str(&x.replace('+', " "))
            .decode_utf8_lossy()
            .to_string()
    };
    Some((dec(u), dec(p)))
}

async fn issuer_keys(sh: &Shared, issuer: &str, refresh: bool) -> Option<Vec<Value>> {
    let cached = sh
        .store
        .lock()
        .unwrap()
        .trusted_issuers
        .get(issuer)
        .cloned();
    if let Some(j) = &cached
        && !j.is_null()
        && !refresh
    {
        return j["keys"].as_array().cloned();
    }
    // Configured without keys, or not configured: discover.
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc: Value = sh.http.get(&url).send().await.ok()?.json().await.ok()?;
    let jwks_uri = doc["jwks_uri"].as_str()?;
    let jwks: Value = sh.http.get(jwks_uri).send().await.ok()?.json().await.ok()?;
    let keys = jwks["keys"].as_array().cloned();
    if keys.is_some() {
        let mut st = sh.store.lock().unwrap();
        st.trusted_issuers.insert(issuer.to_string(), jwks);
    }
    keys
}

fn verify_with_keys(jwt: &Jwt, keys: &[Value]) -> bool {
    let kid = jwt.header.get("kid").and_then(Value::as_str);
    keys.iter()
        .filter(|k| {
            kid.is_none()
                || k.get("kid").and_then(Value::as_str).is_none()
                || k.get("kid").and_then(Value::as_str) == kid
        })
        .filter_map(|k| crypto::jwk_public_key(k).ok())
        .any(|pk| jwt.verify(&pk).is_ok())
}

/// A client at the token endpoint: its registration, its service principal in the tenant, and how
/// it authenticated (`acr` "1" secret, "2" certificate or federated assertion, None: no credential).
pub(crate) struct Client {
    pub app: AppRec,
    pub sp: Option<Value>,
    pub client_id: String,
    pub acr: Option<&'static str>,
}

/// Finds the client and verifies the credential it presented, if any. `Err` carries Entra's error
/// and the client id for the call log.
pub(crate) async fn authenticate(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Client, Refused> {
    let (client_id, cred) = client_id_and_credential(ctx, form, headers)?;
    let (app, client_sp) = find_application(sh, ctx, tid, &client_id)?;
    let acr = match cred {
        Cred::None => None,
        Cred::Secret(sec) => Some(check_secret(
            ctx,
            &app,
            client_sp.as_ref(),
            &client_id,
            &sec,
        )?),
        Cred::Assertion(a) => Some(check_assertion(sh, ctx, tid, &app, &client_id, &a).await?),
    };
    Ok(Client {
        app,
        sp: client_sp.map(|sp| sp.body),
        client_id,
        acr,
    })
}

/// `sec` is one of `secrets`, usable now, whose credential in `owner`'s `passwordCredentials` is valid.
fn secret_matches(secrets: &[Secret], owner: &impl GraphObject, sec: &str) -> bool {
    let now_ms = store::now_ms();
    let now = Utc::now();
    secrets.iter().any(|x| {
        x.text == sec
            && x.usable_from_ms <= now_ms
            && owner.password_credentials().any(|c| {
                c.key_id == x.key_id
                    && c.end.is_none_or(|e| e > now)
                    && c.start
                        .is_none_or(|st| st <= now + chrono::Duration::minutes(5))
            })
    })
}

/// Entra's error and the client id (for the call log) of a refused client.
pub(crate) type Refused = (Response, String);

fn refuse(
    ctx: &ReqCtx,
    status: StatusCode,
    err: &str,
    code: u32,
    text: &str,
    client_id: &str,
) -> Refused {
    (
        aadsts_error(ctx, status, err, code, text),
        client_id.to_string(),
    )
}

/// The client id (form, HTTP Basic, or an assertion's `sub`), lower-cased, and the credential.
fn client_id_and_credential(
    ctx: &ReqCtx,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(String, Cred), Refused> {
    let basic = basic_auth(headers);
    let mut client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let cred = if let Some(a) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(refuse(
                ctx,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
                "",
            ));
        }
        Cred::Assertion(a.clone())
    } else if let Some(sec) = form.get("client_secret") {
        Cred::Secret(sec.clone())
    } else if let Some((_, p)) = &basic {
        Cred::Secret(p.clone())
    } else {
        Cred::None
    };
    if client_id.is_none()
        && let Cred::Assertion(a) = &cred
    {
        client_id = Jwt::parse(a)
            .ok()
            .and_then(|j| j.claim_str("sub").map(str::to_string));
    }
    let Some(client_id) = client_id else {
        return Err(refuse(
            ctx,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            "",
        ));
    };
    Ok((client_id.to_ascii_lowercase(), cred))
}

/// The application (home tenant first, then a multi-tenant app elsewhere with an SP here) and its
/// service principal in `tid`, both visible (replication lag).
fn find_application(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    client_id: &str,
) -> Result<(AppRec, Option<SpRec>), Refused> {
    let now_ms = store::now_ms();
    let st = sh.store.lock().unwrap();
    let tenant = &st.tenants[tid];
    let visible_sp = tenant
        .sp_idx_by_app_id(client_id)
        .map(|i| &tenant.sps[i])
        .filter(|sp| sp.visible_from_ms <= now_ms)
        .cloned();
    let home = tenant
        .app_idx_by_app_id(client_id)
        .map(|i| tenant.apps[i].clone());
    let app = home.or_else(|| {
        st.tenants.values().filter(|t| t.id != tid).find_map(|t| {
            t.app_idx_by_app_id(client_id)
                .map(|i| t.apps[i].clone())
                .filter(|a| a.is_multi_tenant() && visible_sp.is_some())
        })
    });
    if let Some(app) = app.filter(|a| a.visible_from_ms <= now_ms) {
        return Ok((app, visible_sp));
    }
    let name = tenant
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| tid.to_string());
    Err(refuse(
        ctx,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
        "",
    ))
}

/// A client secret: one of the app's, or one added to its service principal in this tenant
/// (`servicePrincipals/{id}/addPassword`; microsoftgraph/microsoft-graph-docs-contrib#8471: such a
/// secret "got the access token"), usable (replication lag) and within its credential's dates (the
/// start may lie 5 minutes ahead). `acr` "1".
fn check_secret(
    ctx: &ReqCtx,
    app: &AppRec,
    sp: Option<&SpRec>,
    client_id: &str,
    sec: &str,
) -> Result<&'static str, Refused> {
    let ok = secret_matches(&app.secrets, app, sec)
        || sp.is_some_and(|sp| secret_matches(&sp.secrets, sp, sec));
    if ok {
        return Ok("1");
    }
    Err(refuse(
        ctx,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        &format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
        client_id,
    ))
}

/// A client assertion: well formed and within its lifetime (5 minutes' skew), then a certificate
/// assertion (it names a certificate: `x5t`, `x5t#S256` or `x5c`) or a federated one. `acr` "2".
async fn check_assertion(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    app: &AppRec,
    client_id: &str,
    a: &str,
) -> Result<&'static str, Refused> {
    let Ok(jwt) = Jwt::parse(a) else {
        return Err(refuse(
            ctx,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
            client_id,
        ));
    };
    let now = now_secs();
    let exp = jwt.claim_i64("exp").unwrap_or(0);
    let nbf = jwt.claim_i64("nbf").unwrap_or(i64::MIN);
    if exp < now - 300 || nbf > now + 300 {
        let f = |x: i64| {
            chrono::DateTime::from_timestamp(x, 0)
                .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        return Err(refuse(
            ctx,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                f(now),
                f(nbf.max(0)),
                f(exp)
            ),
            client_id,
        ));
    }
    let cert = CertRef::of(&jwt);
    if cert.names_one() {
        check_certificate_assertion(ctx, tid, app, client_id, &jwt, &cert)?;
    } else {
        check_federated_assertion(sh, ctx, app, client_id, &jwt).await?;
    }
    Ok("2")
}

/// How an assertion's header names its certificate.
struct CertRef {
    x5t: Option<Vec<u8>>,
    x5t256: Option<Vec<u8>>,
    x5c: Option<Vec<u8>>,
}

impl CertRef {
    fn of(jwt: &Jwt) -> Self {
        let header = |k: &str| {
            jwt.header
                .get(k)
                .and_then(Value::as_str)
                .and_then(crypto::b64_any)
        };
        CertRef {
            x5t: header("x5t"),
            x5t256: header("x5t#S256"),
            x5c: jwt
                .header
                .pointer("/x5c/0")
                .and_then(Value::as_str)
                .and_then(crypto::b64_any),
        }
    }
    fn names_one(&self) -> bool {
        self.x5t.is_some() || self.x5t256.is_some() || self.x5c.is_some()
    }
    /// Whether `der` is the certificate named (by thumbprint, or by `x5c` alone).
    fn matches(&self, der: &[u8]) -> bool {
        self.x5t.as_ref().is_some_and(|t| *t == crypto::sha1(der))
            || self
                .x5t256
                .as_ref()
                .is_some_and(|t| *t == crypto::sha256(der))
            || (self.x5t.is_none() && self.x5t256.is_none() && self.x5c.as_deref() == Some(der))
    }
}

/// A certificate assertion: the named certificate is one of the app's, active; the signature is
/// its key's; the audience is this tenant's token endpoint; `iss` and `sub` are the client id.
fn check_certificate_assertion(
    ctx: &ReqCtx,
    tid: &str,
    app: &AppRec,
    client_id: &str,
    jwt: &Jwt,
    cert: &CertRef,
) -> Result<(), Refused> {
    let bad = |code: u32, text: &str| {
        refuse(
            ctx,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            text,
            client_id,
        )
    };
    let now_dt = Utc::now();
    let found = app.cert_keys.iter().find_map(|(key_id, der_b64)| {
        let der = crypto::b64_any(der_b64)?;
        let active = app
            .key_credentials()
            .any(|c| c.key_id == *key_id && c.end.is_none_or(|e| e > now_dt));
        (cert.matches(&der) && active).then_some(der)
    });
    let Some(der) = found else {
        let thumbprint = cert
            .x5t
            .as_deref()
            .map(|t| t.iter().map(|b| format!("{b:02X}")).collect::<String>())
            .unwrap_or_default();
        return Err(bad(
            700027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        ));
    };
    let Ok(pk) = crypto::cert_public_key(&der) else {
        return Err(bad(7000215, "Invalid client certificate."));
    };
    if jwt.verify(&pk).is_err() {
        return Err(bad(700027, "Client assertion failed signature validation."));
    }
    let aud = jwt
        .claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let aud_ok = aud.contains("/oauth2/")
        && (aud.contains(tid) || aud.contains("/common/") || aud.contains("/organizations/"))
        || aud.ends_with("/oauth2/v2.0/token")
        || aud.ends_with("/oauth2/token");
    if !aud_ok {
        return Err(bad(
            700021,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    let is_client = |claim: &str| {
        jwt.claim_str(claim).map(str::to_ascii_lowercase).as_deref() == Some(client_id)
    };
    if !is_client("iss") || !is_client("sub") {
        return Err(bad(
            700023,
            "Client assertion issuer and subject must be the client id of the application.",
        ));
    }
    Ok(())
}

/// A federated assertion: a federated identity credential of the app matches its issuer, subject
/// and an audience, and the issuer's published keys verify it (keys refetched once when the
/// issuer is not configured with its own).
async fn check_federated_assertion(
    sh: &Shared,
    ctx: &ReqCtx,
    app: &AppRec,
    client_id: &str,
    jwt: &Jwt,
) -> Result<(), Refused> {
    let iss = jwt.claim_str("iss").unwrap_or("").to_string();
    let sub = jwt.claim_str("sub").unwrap_or("").to_string();
    let auds: Vec<String> = match jwt.claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    };
    let fic = app.fics.iter().find(|f| {
        s(f, "issuer") == iss
            && s(f, "subject") == sub
            && f["audiences"].as_array().is_some_and(|fa| {
                fa.iter()
                    .filter_map(Value::as_str)
                    .any(|x| auds.iter().any(|a| a == x))
            })
    });
    if fic.is_none() {
        return Err(refuse(
            ctx,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
                auds.join(",")
            ),
            client_id,
        ));
    }
    let mut ok = false;
    if let Some(keys) = issuer_keys(sh, &iss, false).await {
        ok = verify_with_keys(jwt, &keys);
    }
    if !ok {
        let configured = sh
            .store
            .lock()
            .unwrap()
            .trusted_issuers
            .get(&iss)
            .is_some_and(|j| !j.is_null());
        if !configured && let Some(keys) = issuer_keys(sh, &iss, true).await {
            ok = verify_with_keys(jwt, &keys);
        }
    }
    if ok {
        return Ok(());
    }
    Err(refuse(
        ctx,
        StatusCode::BAD_REQUEST,
        "invalid_client",
        700211,
        &format!(
            "No matching federated identity record found for presented assertion issuer '{iss}', or the assertion signature could not be validated with the issuer's published keys."
        ),
        client_id,
    ))
}
