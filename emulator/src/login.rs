//! The identity platform: token endpoint, discovery documents, JWKS.
use crate::crypto::{self, Jwt};
use crate::server::{OpInfo, ReqCtx, Shared, now_secs, random_guid};
use crate::store::{self, AppRec, Store, s};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub const ADMIN_OID: &str = "a11ad000-0000-4000-8000-00000000ad01";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn aadsts_error(
    ctx: &ReqCtx,
    status: StatusCode,
    error: &str,
    code: u32,
    text: &str,
) -> Response {
    let now = Utc::now();
    let ts = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let desc = format!(
        "AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: {ts}",
        ctx.request_id, ctx.client_request_id
    )
    .replacen(". Trace ID", ".\r\nTrace ID", 1)
    .replacen(" Correlation ID", "\r\nCorrelation ID", 1)
    .replacen(" Timestamp", "\r\nTimestamp", 1);
    let body = json!({
        "error": error, "error_description": desc, "error_codes": [code], "timestamp": ts,
        "trace_id": ctx.request_id, "correlation_id": ctx.client_request_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}")
    });
    let mut r = (status, axum::Json(body)).into_response();
    login_headers(&mut r);
    r
}

pub(crate) fn login_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    h.insert("Expires", HeaderValue::from_static("-1"));
    h.insert(
        "Content-Type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
}

fn discovery_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("max-age=86400, private"),
    );
    h.insert(
        "Content-Type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    h.insert(
        "Access-Control-Allow-Methods",
        HeaderValue::from_static("GET, OPTIONS"),
    );
}

fn with_op(mut r: Response, op: &str, tenant: &str, caller: &str) -> Response {
    r.extensions_mut().insert(OpInfo {
        operation: op.into(),
        tenant: tenant.into(),
        caller: caller.into(),
    });
    r
}

/// Tenant id for a path segment (tenant id or verified domain).
pub fn resolve_tenant(st: &Store, seg: &str) -> Option<String> {
    let l = seg.to_ascii_lowercase();
    if st.tenants.contains_key(&l) {
        return Some(l);
    }
    st.tenants
        .values()
        .find(|t| t.domains.iter().any(|d| d == &l))
        .map(|t| t.id.clone())
}

pub async fn instance_discovery(
    State(sh): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let host = sh.base_url.trim_start_matches("https://").to_string();
    // The tenant of the authority asked about, as recorded (`authorization_endpoint=https://host/fake-tenant/
    // oauth2/v2.0/authorize` -> `https://host/fake-tenant/v2.0/.well-known/openid-configuration`).
    let tenant = q
        .get("authorization_endpoint")
        .and_then(|a| a.strip_prefix("https://"))
        .and_then(|a| a.split('/').nth(1))
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        })
        .unwrap_or("common");
    let mut r = axum::Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", sh.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    }))
    .into_response();
    discovery_headers(&mut r);
    with_op(r, "discovery.instance", "", "")
}

fn unknown_tenant(ctx: &ReqCtx, t: &str) -> Response {
    aadsts_error(
        ctx,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

pub async fn openid_v2(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), &t) };
    let Some(tid) = tid else {
        return with_op(unknown_tenant(&ctx, &t), "discovery.openid", "", "");
    };
    let b = &sh.base_url;
    let mut r = axum::Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        // What the emulator implements: the code flow, and the hybrid `code id_token`.
        "response_types_supported": ["code", "code id_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": false,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        // Not implemented (Kerberos is no OAuth flow), but in every recorded document, so kept
        // for the shape clients and the conformance replay expect.
        "kerberos_endpoint": format!("{b}/{tid}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    }))
    .into_response();
    discovery_headers(&mut r);
    with_op(r, "discovery.openid", &tid, "")
}

pub async fn openid_v1(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), &t) };
    let Some(tid) = tid else {
        return with_op(unknown_tenant(&ctx, &t), "discovery.openid", "", "");
    };
    let b = &sh.base_url;
    let mut r = axum::Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "code id_token"],
        "scopes_supported": ["openid"],
        "issuer": format!("https://sts.windows.net/{tid}/"),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{b}/{tid}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": false,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    }))
    .into_response();
    discovery_headers(&mut r);
    with_op(r, "discovery.openid", &tid, "")
}

pub async fn jwks(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), &t) };
    let Some(tid) = tid else {
        return with_op(unknown_tenant(&ctx, &t), "discovery.keys", "", "");
    };
    let mut r =
        axum::Json(json!({"keys": [sh.signing.jwk(&format!("{}/{tid}/v2.0", sh.base_url))]}))
            .into_response();
    discovery_headers(&mut r);
    with_op(r, "discovery.keys", &tid, "")
}

pub async fn jwks_common(State(sh): State<Arc<Shared>>) -> Response {
    let mut r = axum::Json(
        json!({"keys": [sh.signing.jwk(&format!("{}/{{tenantid}}/v2.0", sh.base_url))]}),
    )
    .into_response();
    discovery_headers(&mut r);
    with_op(r, "discovery.keys", "", "")
}

/// A Graph token with the admin permissions, for tests.
pub fn admin_token(sh: &Shared, tenant: &str) -> String {
    let now = now_secs();
    let roles = [
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
    ];
    sh.signing.sign(&json!({
        "aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now, "nbf": now, "exp": now + sh.token_lifetime_secs as i64,
        "app_displayname": "entra-emulator admin", "appid": ADMIN_OID, "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tenant}/"), "idtyp": "app", "oid": ADMIN_OID, "sub": ADMIN_OID,
        "roles": roles, "tid": tenant, "uti": random_guid(), "ver": "1.0"
    }))
}

/// The caller of a Graph request, from its bearer token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: String,
    pub oid: String,
    pub app_id: String,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// Validates a Graph bearer token; `Err(message)` for a 401.
pub fn verify_graph_token(sh: &Shared, headers: &HeaderMap) -> Result<Caller, String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return Err("Access token is empty.".into());
    }
    let now = now_secs();
    // Signature checks are the costliest part of a Graph call; remember tokens already verified.
    if let Some((c, exp)) = sh.token_cache.lock().unwrap().get(token).cloned()
        && exp >= now
    {
        return Ok(c);
    }
    let jwt = Jwt::parse(token)
        .map_err(|_| "IDX14100: JWT is not well formed, there are no dots (.).".to_string())?;
    if jwt.verify(&sh.signing.public).is_err() {
        return Err("Access token validation failure. Invalid signature.".into());
    }
    let aud = jwt.claim_str("aud").unwrap_or("");
    if !matches!(
        aud,
        "https://graph.microsoft.com" | "https://graph.microsoft.com/" | store::GRAPH_APP_ID
    ) {
        return Err("Access token validation failure. Invalid audience.".into());
    }
    if jwt.claim_i64("exp").unwrap_or(0) < now || jwt.claim_i64("nbf").unwrap_or(0) > now + 300 {
        return Err("Access token has expired or is not yet valid.".into());
    }
    let tenant = jwt.claim_str("tid").unwrap_or("").to_string();
    if !sh.store.lock().unwrap().tenants.contains_key(&tenant) {
        return Err("Access token validation failure. Invalid tenant.".into());
    }
    let roles = jwt.claims["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let caller = Caller {
        tenant,
        oid: jwt.claim_str("oid").unwrap_or("").into(),
        app_id: jwt
            .claim_str("appid")
            .or(jwt.claim_str("azp"))
            .unwrap_or("")
            .into(),
        roles,
    };
    let mut cache = sh.token_cache.lock().unwrap();
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(
        token.to_string(),
        (caller.clone(), jwt.claim_i64("exp").unwrap_or(0)),
    );
    Ok(caller)
}

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

pub async fn token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v1 = uri.path().ends_with("/oauth2/token");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), &t) };
    let Some(tid) = tid else {
        return with_op(unknown_tenant(&ctx, &t), "token", "", "");
    };
    let (resp, caller) = token_inner(&sh, &ctx, &tid, &form, &headers, v1).await;
    with_op(resp, "token", &tid, &caller)
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
) -> Result<Client, (Response, String)> {
    let bad = |status: StatusCode, err: &str, code: u32, text: String| {
        aadsts_error(ctx, status, err, code, &text)
    };
    let basic = basic_auth(headers);
    let mut client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let cred = if let Some(a) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err((bad(StatusCode::BAD_REQUEST, "invalid_request", 900144, "The request body must contain the following parameter: 'client_assertion_type'.".into()), String::new()));
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
        return Err((
            bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.".into(),
            ),
            String::new(),
        ));
    };
    let client_id = client_id.to_ascii_lowercase();
    let now_ms = store::now_ms();
    // Find the application (home tenant first, then a multi-tenant app elsewhere with an SP here).
    let found: Option<(AppRec, Option<Value>)> = {
        let st = sh.store.lock().unwrap();
        let tenant = &st.tenants[tid];
        let visible_sp = tenant
            .sp_idx_by_app_id(&client_id)
            .map(|i| &tenant.sps[i])
            .filter(|sp| sp.visible_from_ms <= now_ms)
            .map(|sp| sp.body.clone());
        let home = tenant
            .app_idx_by_app_id(&client_id)
            .map(|i| tenant.apps[i].clone());
        let app = home.or_else(|| {
            st.tenants.values().filter(|t| t.id != tid).find_map(|t| {
                t.app_idx_by_app_id(&client_id)
                    .map(|i| t.apps[i].clone())
                    .filter(|a| {
                        s(&a.body, "signInAudience") != "AzureADMyOrg" && visible_sp.is_some()
                    })
            })
        });
        app.filter(|a| a.visible_from_ms <= now_ms)
            .map(|a| (a, visible_sp))
    };
    let Some((app, client_sp)) = found else {
        let name = {
            let st = sh.store.lock().unwrap();
            st.tenants[tid]
                .domains
                .first()
                .cloned()
                .unwrap_or_else(|| tid.to_string())
        };
        return Err((
            bad(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ),
            String::new(),
        ));
    };
    let acr: Option<&'static str>;
    match cred {
        Cred::None => acr = None,
        Cred::Secret(sec) => {
            let now = Utc::now();
            let ok = app.secrets.iter().any(|x| {
                x.text == sec
                    && x.usable_from_ms <= now_ms
                    && app.body["passwordCredentials"].as_array().is_some_and(|p| {
                        p.iter().any(|c| {
                            s(c, "keyId") == x.key_id
                                && store::parse_time(&s(c, "endDateTime")).is_none_or(|e| e > now)
                                && store::parse_time(&s(c, "startDateTime"))
                                    .is_none_or(|st| st <= now + chrono::Duration::minutes(5))
                        })
                    })
            });
            if !ok {
                return Err((
                    bad(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        format!(
                            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                        ),
                    ),
                    client_id,
                ));
            }
            acr = Some("1");
        }
        Cred::Assertion(a) => {
            let Ok(jwt) = Jwt::parse(&a) else {
                return Err((
                    bad(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        50027,
                        "JWT token is invalid or malformed.".into(),
                    ),
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
                return Err((
                    bad(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        700024,
                        format!(
                            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                            f(now),
                            f(nbf.max(0)),
                            f(exp)
                        ),
                    ),
                    client_id,
                ));
            }
            let x5t = jwt
                .header
                .get("x5t")
                .and_then(Value::as_str)
                .and_then(crypto::b64_any);
            let x5t256 = jwt
                .header
                .get("x5t#S256")
                .and_then(Value::as_str)
                .and_then(crypto::b64_any);
            let x5c = jwt
                .header
                .pointer("/x5c/0")
                .and_then(Value::as_str)
                .and_then(crypto::b64_any);
            if x5t.is_some() || x5t256.is_some() || x5c.is_some() {
                // Certificate credential.
                let now_dt = Utc::now();
                let cert = app.cert_keys.iter().find_map(|(key_id, der_b64)| {
                    let der = crypto::b64_any(der_b64)?;
                    let matches = x5t.as_ref().is_some_and(|t| *t == crypto::sha1(&der))
                        || x5t256.as_ref().is_some_and(|t| *t == crypto::sha256(&der))
                        || (x5t.is_none() && x5t256.is_none() && x5c.as_ref() == Some(&der));
                    let active = app.body["keyCredentials"].as_array().is_some_and(|k| {
                        k.iter().any(|c| {
                            s(c, "keyId") == *key_id
                                && store::parse_time(&s(c, "endDateTime"))
                                    .is_none_or(|e| e > now_dt)
                        })
                    });
                    (matches && active).then_some(der)
                });
                let Some(der) = cert else {
                    return Err((
                        bad(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            700027,
                            format!(
                                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
                                x5t.as_deref()
                                    .map(|t| t
                                        .iter()
                                        .map(|b| format!("{b:02X}"))
                                        .collect::<String>())
                                    .unwrap_or_default()
                            ),
                        ),
                        client_id,
                    ));
                };
                let Ok(pk) = crypto::cert_public_key(&der) else {
                    return Err((
                        bad(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            7000215,
                            "Invalid client certificate.".into(),
                        ),
                        client_id,
                    ));
                };
                if jwt.verify(&pk).is_err() {
                    return Err((
                        bad(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            700027,
                            "Client assertion failed signature validation.".into(),
                        ),
                        client_id,
                    ));
                }
                let aud = jwt
                    .claims
                    .get("aud")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let aud_ok = aud.contains("/oauth2/")
                    && (aud.contains(tid)
                        || aud.contains("/common/")
                        || aud.contains("/organizations/"))
                    || aud.ends_with("/oauth2/v2.0/token")
                    || aud.ends_with("/oauth2/token");
                if !aud_ok {
                    return Err((
                        bad(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            700021,
                            "Client assertion audience claim does not match Realm issuer.".into(),
                        ),
                        client_id,
                    ));
                }
                if jwt.claim_str("iss").map(str::to_ascii_lowercase).as_deref()
                    != Some(client_id.as_str())
                    || jwt.claim_str("sub").map(str::to_ascii_lowercase).as_deref()
                        != Some(client_id.as_str())
                {
                    return Err((bad(StatusCode::UNAUTHORIZED, "invalid_client", 700023, "Client assertion issuer and subject must be the client id of the application.".into()), client_id));
                }
                acr = Some("2");
            } else {
                // Federated credential.
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
                    return Err((
                        bad(
                            StatusCode::BAD_REQUEST,
                            "invalid_client",
                            70021,
                            format!(
                                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
                                auds.join(",")
                            ),
                        ),
                        client_id,
                    ));
                }
                let mut ok = false;
                if let Some(keys) = issuer_keys(sh, &iss, false).await {
                    ok = verify_with_keys(&jwt, &keys);
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
                        ok = verify_with_keys(&jwt, &keys);
                    }
                }
                if !ok {
                    return Err((
                        bad(
                            StatusCode::BAD_REQUEST,
                            "invalid_client",
                            700211,
                            format!(
                                "No matching federated identity record found for presented assertion issuer '{iss}', or the assertion signature could not be validated with the issuer's published keys."
                            ),
                        ),
                        client_id,
                    ));
                }
                acr = Some("2");
            }
        }
    }
    Ok(Client {
        app,
        sp: client_sp,
        client_id,
        acr,
    })
}

async fn token_inner(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    v1: bool,
) -> (Response, String) {
    let bad = |status: StatusCode, err: &str, code: u32, text: String| {
        aadsts_error(ctx, status, err, code, &text)
    };
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant.is_empty() {
        return (
            bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.".into(),
            ),
            String::new(),
        );
    }
    if crate::grants::is_user_grant(grant) {
        return crate::grants::redeem(sh, ctx, tid, form, headers, v1, grant).await;
    }
    if grant != "client_credentials" {
        return (
            bad(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant}'."),
            ),
            String::new(),
        );
    }
    let client = match authenticate(sh, ctx, tid, form, headers).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Client {
        sp: client_sp,
        client_id,
        acr,
        ..
    } = client;
    let now_ms = store::now_ms();
    let Some(acr) = acr else {
        return (bad(StatusCode::UNAUTHORIZED, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into()), client_id);
    };
    // The client needs a service principal in this tenant.
    let Some(client_sp) = client_sp else {
        return (
            bad(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                7000229,
                format!(
                    "The client application {client_id} is missing service principal in the tenant {tid}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
                ),
            ),
            client_id,
        );
    };
    // Resource.
    let resource = if v1 && form.contains_key("resource") {
        form.get("resource").cloned().unwrap_or_default()
    } else {
        let scope = form.get("scope").cloned().unwrap_or_default();
        if scope.trim().is_empty() {
            return (
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'scope'.".into(),
                ),
                client_id,
            );
        }
        // MSAL Go and Java add `openid profile offline_access` to every request, client credentials
        // included (microsoft-authentication-library-for-go#72, #329); Entra ignores them beside the one
        // `/.default` scope (alone they are refused, #304).
        let parts: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
            .collect();
        if parts.len() != 1 || !parts[0].ends_with("/.default") {
            return (
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    format!(
                        "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                ),
                client_id,
            );
        }
        parts[0].trim_end_matches("/.default").to_string()
    };
    let issued = {
        let st = sh.store.lock().unwrap();
        let tenant = &st.tenants[tid];
        let Some(ri) = tenant
            .sp_idx_by_name(&resource)
            .filter(|i| tenant.sps[*i].visible_from_ms <= now_ms)
        else {
            drop(st);
            return (
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                    ),
                ),
                client_id,
            );
        };
        let rsp = &tenant.sps[ri].body;
        let r_app_id = s(rsp, "appId");
        let csp_id = s(&client_sp, "id");
        let roles = crate::directory::role_values(tenant, std::slice::from_ref(&csp_id), rsp);
        // An app without an assignment is refused a token for a resource that requires one.
        if rsp["appRoleAssignmentRequired"] == json!(true) && roles.is_empty() {
            let text = format!(
                "Application '{client_id}'({}) is not assigned to a role for the application '{resource}'({}).",
                s(&client_sp, "displayName"),
                s(rsp, "displayName")
            );
            drop(st);
            return (
                bad(StatusCode::BAD_REQUEST, "invalid_grant", 501051, text),
                client_id,
            );
        }
        let version = st
            .tenants
            .values()
            .find_map(|t| {
                t.app_idx_by_app_id(&r_app_id)
                    .map(|i| t.apps[i].body["api"]["requestedAccessTokenVersion"].as_i64())
            })
            .flatten()
            .unwrap_or(1);
        let now = now_secs();
        let exp = now + sh.token_lifetime_secs as i64;
        let mut claims = if version == 2 {
            json!({"aud": r_app_id, "iss": format!("{}/{tid}/v2.0", sh.base_url), "iat": now, "nbf": now, "exp": exp,
                   "azp": client_id, "azpacr": acr, "idtyp": "app", "oid": csp_id, "sub": csp_id, "tid": tid,
                   "rh": "0.emulator.", "uti": random_guid(), "ver": "2.0"})
        } else {
            let aud = if r_app_id == store::GRAPH_APP_ID {
                "https://graph.microsoft.com".to_string()
            } else {
                resource.clone()
            };
            json!({"aud": aud, "iss": format!("https://sts.windows.net/{tid}/"), "iat": now, "nbf": now, "exp": exp,
                   "aio": "emulator", "app_displayname": client_sp["displayName"], "appid": client_id, "appidacr": acr,
                   "idp": format!("https://sts.windows.net/{tid}/"), "idtyp": "app", "oid": csp_id, "sub": csp_id,
                   "rh": "0.emulator.", "tid": tid, "uti": random_guid(), "ver": "1.0"})
        };
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        (sh.signing.sign(&claims), exp, resource.clone())
    };
    let (token, exp, resource) = issued;
    let lifetime = sh.token_lifetime_secs;
    let body = if v1 {
        json!({"token_type": "Bearer", "expires_in": lifetime.to_string(), "ext_expires_in": lifetime.to_string(),
               "expires_on": exp.to_string(), "not_before": (exp - lifetime as i64).to_string(), "resource": resource, "access_token": token})
    } else {
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})
    };
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    login_headers(&mut r);
    (r, client_id)
}
