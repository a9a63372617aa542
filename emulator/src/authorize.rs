//! The authorization endpoints, v2.0 `/{tenant}/oauth2/v2.0/authorize` and v1
//! `/{tenant}/oauth2/authorize`: request validation, the sign-in and consent pages' form posts, the
//! session cookie, and the answer to the app (a code or an error) by query, fragment or form_post.
//! Facts: interactive-flows.md sections 1 and 4.
// Entra's error answers are the `Err` values here, as in graph.rs.
#![allow(clippy::result_large_err)]
use crate::consent::{self, Requested};
use crate::directory;
use crate::flows::{self, Code, Grant, Platform, Session};
use crate::login::resolve_tenant;
use crate::pages;
use crate::server::{OpInfo, ReqCtx, Shared, now_secs};
use crate::store::{Store, s};
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "ESTSAUTH";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// A validated authorization request, waiting for the user (sign-in, consent) or a device.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub created: i64,
    pub tenant: String,
    pub v1: bool,
    pub client_id: String,
    pub client_name: String,
    pub client_sp: Value,
    pub client_app: Value,
    pub redirect_uri: String,
    pub platform: Platform,
    pub mode: Mode,
    pub id_token: bool,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub login_hint: String,
    pub prompt: String,
    pub pkce: Option<(String, String)>,
    pub requested: Requested,
    pub client_info: bool,
    /// Signed in on this request's sign-in page (prompt=login asks again even with a session).
    pub user_id: Option<String>,
    pub auth_time: i64,
    pub consented: bool,
    /// The device code this sign-in completes (device-code flow: no redirect).
    pub device: Option<String>,
}

/// What went wrong, and where the user sees it.
pub enum Fail {
    /// Entra's own page: the redirect URI cannot be trusted (yet).
    Page(u32, String),
    /// Back to the app: (`error`, AADSTS code, text).
    Redirect(&'static str, u32, String),
}

type Params = Vec<(String, String)>;

fn op(mut r: Response, name: &str, tenant: &str, caller: &str) -> Response {
    r.extensions_mut().insert(OpInfo {
        operation: name.into(),
        tenant: tenant.into(),
        caller: caller.into(),
    });
    r
}

/// Parses `a=b&c=d`; a repeated parameter is an error (Entra: AADSTS9000411, "The parameter is
/// duplicated" — D-ERR lists it; its exact text here is not verified).
pub fn parse_params(raw: &[u8]) -> Result<Params, Fail> {
    let p: Params = serde_urlencoded::from_bytes(raw).map_err(|_| {
        Fail::Page(
            900144,
            "The request body must contain the following parameter: 'client_id'.".into(),
        )
    })?;
    for (i, (k, _)) in p.iter().enumerate() {
        if p[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(Fail::Page(
                9000411,
                format!(
                    "The request is not properly formatted. The parameter '{k}' is duplicated."
                ),
            ));
        }
    }
    Ok(p)
}

fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.iter()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The registered platform of `uri`: exact, case-sensitive match, except that the port of an
/// `http://localhost` / `http://127.0.0.1` URI is ignored (RFC 8252; D-RU, 1.5).
pub fn match_redirect(app: &Value, uri: &str) -> Option<Platform> {
    let strip = |u: &str| -> Option<String> {
        for h in ["http://localhost", "http://127.0.0.1"] {
            if let Some(rest) = u.strip_prefix(h) {
                let rest = match rest.strip_prefix(':') {
                    Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
                    None => rest,
                };
                return Some(format!("{h}{rest}"));
            }
        }
        None
    };
    for (key, pf) in [
        ("web", Platform::Web),
        ("spa", Platform::Spa),
        ("publicClient", Platform::PublicClient),
    ] {
        let uris = app[key]["redirectUris"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for r in uris.iter().filter_map(Value::as_str) {
            if r == uri || (strip(r).is_some() && strip(r) == strip(uri)) {
                return Some(pf);
            }
        }
    }
    None
}

/// Finds the tenant and the client's application: (tenant id, app body, client SP body).
fn find_client(st: &Store, seg: &str, client_id: &str) -> Result<(String, Value, Value), Fail> {
    let seg_l = seg.to_ascii_lowercase();
    let multi = matches!(seg_l.as_str(), "common" | "organizations");
    let home = st.tenants.values().find_map(|t| {
        t.app_idx_by_app_id(client_id)
            .map(|i| (t.id.clone(), t.apps[i].body.clone()))
    });
    let tid = if multi {
        match &home {
            Some((h, app)) if s(app, "signInAudience") != "AzureADMyOrg" => h.clone(),
            Some((_, app)) => {
                return Err(Fail::Page(
                    50194,
                    format!(
                        "Application '{client_id}'({}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
                        s(app, "displayName")
                    ),
                ));
            }
            None => String::new(),
        }
    } else {
        resolve_tenant(st, seg).ok_or_else(|| Fail::Page(90002, format!(
            "Tenant '{seg}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.")))?
    };
    let t = st.tenants.get(&tid);
    let sp = t.and_then(|t| t.sp_idx_by_app_id(client_id).map(|i| t.sps[i].body.clone()));
    let app = home
        .filter(|(h, a)| *h == tid || s(a, "signInAudience") != "AzureADMyOrg")
        .map(|x| x.1);
    match (app, sp) {
        (Some(app), Some(sp)) => Ok((tid, app, sp)),
        _ => {
            let name = t
                .and_then(|t| t.domains.first().cloned())
                .unwrap_or_else(|| seg.to_string());
            Err(Fail::Page(
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ))
        }
    }
}

/// Validates everything up to the redirect URI; errors here go to Entra's page.
fn validate_client(
    st: &Store,
    seg: &str,
    p: &Params,
) -> Result<(String, Value, Value, String, Platform), Fail> {
    let client_id = get(p, "client_id")
        .ok_or_else(|| {
            Fail::Page(
                900144,
                "The request body must contain the following parameter: 'client_id'.".into(),
            )
        })?
        .to_ascii_lowercase();
    let (tid, app, sp) = find_client(st, seg, &client_id)?;
    let uri = get(p, "redirect_uri")
        .ok_or_else(|| Fail::Page(900971, "No reply address provided.".into()))?;
    let absolute = uri.split_once("://").is_some_and(|(sch, rest)| {
        !sch.is_empty()
            && !rest.is_empty()
            && sch
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if !absolute {
        return Err(Fail::Page(
            90102,
            "'redirect_uri' value must be a valid absolute URI.".into(),
        ));
    }
    let platform = match_redirect(&app, uri).ok_or_else(|| Fail::Page(50011, format!(
        "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.")))?;
    Ok((tid, app, sp, uri.to_string(), platform))
}

fn missing(name: &str) -> Fail {
    Fail::Redirect(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// PKCE parameters: S256 or plain (plain when no method is given, D-AC); sizes per RFC 7636.
fn pkce(p: &Params) -> Result<Option<(String, String)>, Fail> {
    let Some(ch) = get(p, "code_challenge") else {
        return Ok(None);
    };
    let method = get(p, "code_challenge_method").unwrap_or("plain");
    if method != "S256" && method != "plain" {
        return Err(Fail::Redirect(
            "invalid_request",
            50149,
            "Invalid Code_Challenge_method parameter.".into(),
        ));
    }
    let ok_len = if method == "S256" {
        ch.len() == 43
    } else {
        (43..=128).contains(&ch.len())
    };
    if !ok_len {
        return Err(Fail::Redirect(
            "invalid_request",
            50147,
            "The size of the code challenge parameter is not valid.".into(),
        ));
    }
    Ok(Some((ch.to_string(), method.to_string())))
}

/// Entra "strips HTML from the state parameter" (D-RU).
fn strip_html(v: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in v.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// What `validate_rest` reads: response mode, hybrid id_token, PKCE, scopes, prompt.
type Rest = (Mode, bool, Option<(String, String)>, Requested, String);

/// Everything after the redirect URI; errors here go back to the app.
fn validate_rest(st: &Store, tid: &str, app: &Value, p: &Params, v1: bool) -> Result<Rest, Fail> {
    let rt = get(p, "response_type").ok_or_else(|| missing("response_type"))?;
    let parts: Vec<&str> = rt.split_whitespace().collect();
    if !parts.contains(&"code") || parts.iter().any(|x| !matches!(*x, "code" | "id_token")) {
        let other = parts
            .iter()
            .find(|x| **x != "code" && **x != "id_token")
            .unwrap_or(&"id_token");
        return Err(Fail::Redirect(
            "unsupported_response_type",
            700051,
            format!("response_type '{other}' is not enabled for the application."),
        ));
    }
    let id_token = parts.contains(&"id_token");
    if id_token && app["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] != json!(true) {
        return Err(Fail::Redirect(
            "unsupported_response_type",
            700054,
            "response_type 'id_token' is not enabled for the application.".into(),
        ));
    }
    // Fragment is the default with an id_token, which never travels in a query (D-AC, 1.1).
    let mode = match (get(p, "response_mode"), id_token) {
        (None, true) | (Some("fragment"), _) => Mode::Fragment,
        (None, false) | (Some("query"), false) => Mode::Query,
        (Some("form_post"), _) => Mode::FormPost,
        (Some(m), _) => {
            return Err(Fail::Redirect(
                "invalid_request",
                70007,
                format!("The application requested an unsupported response_mode '{m}'."),
            ));
        }
    };
    let prompt = get(p, "prompt").unwrap_or("");
    let allowed: &[&str] = if v1 {
        &[
            "login",
            "none",
            "consent",
            "select_account",
            "admin_consent",
        ]
    } else {
        &["login", "none", "consent", "select_account"]
    };
    if !prompt.is_empty() && !allowed.contains(&prompt) {
        return Err(Fail::Redirect(
            "invalid_request",
            90023,
            format!("Invalid prompt value '{prompt}'."),
        ));
    }
    let pk = pkce(p)?;
    let t = &st.tenants[tid];
    let req = if v1 {
        consent::resolve_v1(t, app, get(p, "resource"))
    } else {
        if get(p, "resource").is_some() {
            return Err(Fail::Redirect(
                "invalid_request",
                901002,
                "The 'resource' request parameter is not supported.".into(),
            ));
        }
        consent::resolve_v2(t, app, get(p, "scope").ok_or_else(|| missing("scope"))?)
    }
    .map_err(|(code, err, text)| Fail::Redirect(err, code, text))?;
    Ok((mode, id_token, pk, req, prompt.to_string()))
}

/// Builds the request from the parameters, or says where the error goes.
fn build(
    sh: &Shared,
    seg: &str,
    p: &Params,
    v1: bool,
) -> Result<AuthRequest, (Fail, Option<AuthRequest>)> {
    let st = sh.store.lock().unwrap();
    let (tid, app, sp, redirect_uri, platform) =
        validate_client(&st, seg, p).map_err(|f| (f, None))?;
    let state = get(p, "state").map(strip_html);
    let mut req = AuthRequest {
        created: now_secs(),
        tenant: tid.clone(),
        v1,
        client_id: s(&app, "appId"),
        client_name: s(&app, "displayName"),
        client_sp: sp,
        client_app: app.clone(),
        redirect_uri,
        platform,
        mode: Mode::Query,
        id_token: false,
        state,
        nonce: get(p, "nonce").map(str::to_string),
        login_hint: get(p, "login_hint").unwrap_or("").to_string(),
        prompt: String::new(),
        pkce: None,
        requested: Requested {
            resources: vec![],
            oidc: vec![],
        },
        client_info: get(p, "client_info") == Some("1"),
        user_id: None,
        auth_time: 0,
        consented: false,
        device: None,
    };
    if let Some(m) = get(p, "response_mode").filter(|m| matches!(*m, "fragment" | "form_post")) {
        // An error about the rest of the request still goes back the way the app asked.
        req.mode = if m == "fragment" {
            Mode::Fragment
        } else {
            Mode::FormPost
        };
    }
    match validate_rest(&st, &tid, &app, p, v1) {
        Ok((mode, id_token, pk, requested, prompt)) => {
            req.mode = mode;
            req.id_token = id_token;
            req.pkce = pk;
            req.requested = requested;
            req.prompt = prompt;
            Ok(req)
        }
        Err(f) => Err((f, Some(req))),
    }
}

/// Form encoding as Entra writes it: `+` for space, lowercase hex (`%3a`, `%0d%0a`) (D-ADM, 1.4).
pub fn form_encode(params: &[(String, String)]) -> String {
    let enc = |v: &str| {
        let mut o = String::new();
        for b in v.bytes() {
            match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'*'
                | b'('
                | b')' => o.push(b as char),
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02x}")),
            }
        }
        o
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends parameters to the app's redirect URI the way it asked.
fn deliver(req: &AuthRequest, params: Params) -> Response {
    if req.mode == Mode::FormPost {
        return pages::form_post(&req.redirect_uri, &params);
    }
    // A redirect URI without a path gets a trailing `/` (D-RU, 1.3).
    let mut base = req.redirect_uri.clone();
    if let Some((_, rest)) = base.split_once("://")
        && !rest.contains('/')
    {
        base.push('/');
    }
    let sep = match req.mode {
        Mode::Fragment => '#',
        _ if base.contains('?') => '&',
        _ => '?',
    };
    let loc = format!("{base}{sep}{}", form_encode(&params));
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.headers_mut().insert("Location", v);
    }
    r
}

/// `error`, `error_description` (AADSTS text and trace lines), `error_uri`, `state` (1.4).
fn error_params(ctx: &ReqCtx, req: &AuthRequest, error: &str, code: u32, text: &str) -> Params {
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    let mut p = vec![
        ("error".to_string(), error.to_string()),
        (
            "error_description".into(),
            format!(
                "AADSTS{code}: {text}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {ts}",
                ctx.request_id, ctx.client_request_id
            ),
        ),
        (
            "error_uri".into(),
            format!("https://login.microsoftonline.com/error?code={code}"),
        ),
    ];
    if let Some(st) = &req.state {
        p.push(("state".into(), st.clone()));
    }
    p
}

/// Shows a failure where Entra shows it.
pub fn fail(ctx: &ReqCtx, req: Option<&AuthRequest>, f: Fail) -> Response {
    match (f, req) {
        (Fail::Redirect(e, code, text), Some(r)) if r.device.is_none() => {
            deliver(r, error_params(ctx, r, e, code, &text))
        }
        (Fail::Redirect(_, code, text), _) | (Fail::Page(code, text), _) => {
            pages::error(code, &text, &ctx.request_id, &ctx.client_request_id)
        }
    }
}

/// The session handle in the request's cookie, if any.
pub fn session_handle(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{SESSION_COOKIE}=");
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&prefix).map(str::to_string))
}

/// The signed-in session named by the request's cookie, if any (a forged or stale one is ignored).
pub fn session_of(sh: &Shared, headers: &HeaderMap, tid: &str) -> Option<Session> {
    let h = session_handle(headers)?;
    let f = sh.flows.lock().unwrap();
    f.sessions.get(&h).filter(|x| x.tenant == tid).cloned()
}

/// `GET|POST /{tenant}/oauth2/v2.0/authorize` and `/{tenant}/oauth2/authorize`.
#[allow(clippy::too_many_arguments)] // axum extractors
pub async fn authorize(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(seg): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v1 = !uri.path().contains("/v2.0/");
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        q.unwrap_or_default().into_bytes()
    };
    let p = match parse_params(&raw) {
        Ok(p) => p,
        Err(f) => return op(fail(&ctx, None, f), "authorize", "", ""),
    };
    let req = match build(&sh, &seg, &p, v1) {
        Ok(r) => r,
        Err((f, r)) => return op(fail(&ctx, r.as_ref(), f), "authorize", "", ""),
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let session = session_of(&sh, &headers, &tid);
    op(proceed(&sh, &ctx, req, session), "authorize", &tid, &cid)
}

/// Takes a request as far as it can go without the user: sign-in page, consent page, or the answer.
pub fn proceed(
    sh: &Shared,
    ctx: &ReqCtx,
    mut req: AuthRequest,
    session: Option<Session>,
) -> Response {
    let fresh = matches!(req.prompt.as_str(), "login" | "select_account");
    if req.user_id.is_none()
        && let Some(sess) = session.filter(|_| !fresh)
    {
        req.user_id = Some(sess.user_id);
        req.auth_time = sess.auth_time;
    }
    let Some(user_id) = req.user_id.clone() else {
        if req.prompt == "none" {
            return fail(
                ctx,
                Some(&req),
                Fail::Redirect(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.".into(),
                ),
            );
        }
        let (action, hint, name) = (
            format!("/{}/login", req.tenant),
            req.login_hint.clone(),
            req.client_name.clone(),
        );
        let id = park(sh, req);
        return pages::sign_in(&action, &id, &name, &hint, None);
    };
    let st = sh.store.lock().unwrap();
    let t = &st.tenants[&req.tenant];
    let Some(user) = directory::user_by_id(t, &user_id).cloned() else {
        drop(st);
        req.user_id = None;
        return proceed(sh, ctx, req, None);
    };
    if let Some(f) = assignment_check(t, &req, &user) {
        drop(st);
        return fail(ctx, Some(&req), f);
    }
    let missing = consent::missing(t, &req.client_sp, &req.requested, &user_id);
    let forced = (req.prompt == "consent" || req.prompt == "admin_consent") && !req.consented;
    if !missing.is_empty() || forced {
        if req.prompt == "none" {
            drop(st);
            // MSAL treats consent_required as "interaction required" (1.4; exact value not recorded).
            let text = format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                req.client_id, req.client_name
            );
            return fail(
                ctx,
                Some(&req),
                Fail::Redirect("consent_required", 65001, text),
            );
        }
        if missing.iter().any(|m| m.2 == "Admin") && !user.admin {
            drop(st);
            return fail(
                ctx,
                None,
                Fail::Page(90094, "The grant requires admin permission.".into()),
            );
        }
        let perms = permissions(t, &req);
        drop(st);
        let (action, name, upn, admin) = (
            format!("/{}/consent", req.tenant),
            req.client_name.clone(),
            s(&user.body, "userPrincipalName"),
            user.admin,
        );
        let id = park(sh, req);
        return pages::consent(&action, &id, &name, &upn, &perms, admin);
    }
    drop(st);
    finish(sh, req, &user_id)
}

/// AADSTS50105: the app (or the resource) requires assignment and the user holds none.
fn assignment_check(
    t: &crate::store::Tenant,
    req: &AuthRequest,
    user: &directory::UserRec,
) -> Option<Fail> {
    let uid = s(&user.body, "id");
    let mut sps = vec![req.client_sp.clone()];
    sps.extend(
        req.requested
            .resources
            .iter()
            .filter_map(|r| t.sp_idx(&r.sp_id).map(|i| t.sps[i].body.clone())),
    );
    let blocked = sps.iter().find(|sp| {
        sp["appRoleAssignmentRequired"] == json!(true)
            && !directory::assigned(t, &uid, &s(sp, "id"))
    })?;
    Some(Fail::Page(
        50105,
        format!(
            "Your administrator has configured the application {} ('{}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
            s(blocked, "displayName"),
            s(blocked, "appId"),
            s(&user.body, "userPrincipalName")
        ),
    ))
}

fn permissions(t: &crate::store::Tenant, req: &AuthRequest) -> Vec<pages::Permission> {
    let mut out = vec![];
    for r in &req.requested.resources {
        let sp = t
            .sp_idx(&r.sp_id)
            .map(|i| t.sps[i].body.clone())
            .unwrap_or_default();
        for v in &r.values {
            let desc = sp["oauth2PermissionScopes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| s(x, "value") == *v)
                .map(|x| {
                    let u = s(x, "userConsentDisplayName");
                    if u.is_empty() {
                        s(x, "adminConsentDisplayName")
                    } else {
                        u
                    }
                })
                .unwrap_or_default();
            out.push(pages::Permission {
                resource: r.display_name.clone(),
                value: v.clone(),
                description: desc,
            });
        }
    }
    if req.requested.oidc.iter().any(|x| x == "offline_access") {
        out.push(pages::Permission {
            resource: "Microsoft Graph".into(),
            value: "offline_access".into(),
            description: "Maintain access to data you have given it access to".into(),
        });
    }
    out
}

/// Keeps a request for the next page; returns its handle.
fn park(sh: &Shared, req: AuthRequest) -> String {
    let id = flows::handle();
    let mut f = sh.flows.lock().unwrap();
    f.sweep();
    f.pending.insert(id.clone(), req);
    id
}

/// The user is signed in and has consented: a code for the app (or the device's grant).
fn finish(sh: &Shared, req: AuthRequest, user_id: &str) -> Response {
    let first = &req.requested.resources[0];
    let grant = Grant {
        tenant: req.tenant.clone(),
        client_id: req.client_id.clone(),
        user_id: user_id.to_string(),
        resource_sp: first.sp_id.clone(),
        scopes: first.values.clone(),
        requested: first.requested.clone(),
        oidc: req.requested.oidc.clone(),
        v1: req.v1,
        auth_time: req.auth_time,
        nonce: req.nonce.clone(),
    };
    if let Some(dc) = &req.device {
        if let Some(d) = sh.flows.lock().unwrap().devices.get_mut(dc) {
            d.grant = Some(grant);
        }
        return pages::device_done(&req.client_name);
    }
    let code = flows::handle();
    let mut params: Params = vec![("code".into(), code.clone())];
    if req.id_token {
        let idt = crate::grants::id_token(sh, &grant, Some(&code));
        params.push(("id_token".into(), idt));
    }
    if let Some(st) = &req.state {
        params.push(("state".into(), st.clone()));
    }
    if req.client_info {
        params.push(("client_info".into(), crate::grants::client_info(&grant)));
    }
    // session_state: a GUID to be treated as opaque (D-V1; older v2 docs show it too, 1.3).
    params.push(("session_state".into(), crate::server::random_guid()));
    {
        let mut f = sh.flows.lock().unwrap();
        f.sweep();
        f.codes.insert(
            code,
            Code {
                grant,
                redirect_uri: req.redirect_uri.clone(),
                platform: req.platform,
                pkce: req.pkce.clone(),
                issued: now_secs(),
                redeemed: false,
            },
        );
    }
    deliver(&req, params)
}

/// The posted form of a sign-in or consent page and the request it continues.
fn form_and_pending(
    sh: &Shared,
    ctx: &ReqCtx,
    body: &[u8],
    op_name: &str,
) -> Result<(std::collections::HashMap<String, String>, AuthRequest), Response> {
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(body).unwrap_or_default();
    let got = form
        .get("req")
        .and_then(|id| sh.flows.lock().unwrap().pending.remove(id));
    match got.filter(|p| now_secs() - p.created < flows::PENDING_LIFETIME_SECS) {
        Some(req) => Ok((form, req)),
        None => {
            let text =
                "Flow token expired - Authentication Failed. Have the user try signing-in again.";
            Err(op(
                fail(ctx, None, Fail::Page(50089, text.into())),
                op_name,
                "",
                "",
            ))
        }
    }
}

/// `POST /{tenant}/login`: the sign-in form (`login`, `passwd`).
pub async fn login(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    body: axum::body::Bytes,
) -> Response {
    let (form, mut req) = match form_and_pending(&sh, &ctx, &body, "authorize.login") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (upn, pw) = (
        form.get("login").cloned().unwrap_or_default(),
        form.get("passwd").cloned().unwrap_or_default(),
    );
    let checked = {
        let st = sh.store.lock().unwrap();
        let t = &st.tenants[&req.tenant];
        match directory::user_by_upn(t, &upn) {
            None => Err(format!(
                "AADSTS50034: The user account {upn} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                t.publisher_domain()
            )),
            Some(u) if !directory::password_ok(u, &pw) => Err(
                "AADSTS50126: Error validating credentials due to invalid username or password."
                    .to_string(),
            ),
            Some(u) => Ok(s(&u.body, "id")),
        }
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let user_id = match checked {
        Ok(u) => u,
        Err(msg) => {
            let (action, name) = (format!("/{}/login", req.tenant), req.client_name.clone());
            let id = park(&sh, req);
            return op(
                pages::sign_in(&action, &id, &name, &upn, Some(&msg)),
                "authorize.login",
                &tid,
                &cid,
            );
        }
    };
    let now = now_secs();
    req.user_id = Some(user_id.clone());
    req.auth_time = now;
    req.prompt = if req.prompt == "login" || req.prompt == "select_account" {
        String::new()
    } else {
        req.prompt
    };
    let handle = flows::handle();
    sh.flows.lock().unwrap().sessions.insert(
        handle.clone(),
        Session {
            tenant: tid.clone(),
            user_id,
            auth_time: now,
        },
    );
    let mut r = proceed(&sh, &ctx, req, None);
    let cookie = format!("{SESSION_COOKIE}={handle}; path=/; secure; HttpOnly; SameSite=None");
    r.headers_mut()
        .append("Set-Cookie", HeaderValue::from_str(&cookie).unwrap());
    op(r, "authorize.login", &tid, &cid)
}

/// `POST /{tenant}/consent`: Accept (`accept=true`, admins may add `org=true`) or Cancel.
pub async fn consent(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    body: axum::body::Bytes,
) -> Response {
    let (form, mut req) = match form_and_pending(&sh, &ctx, &body, "authorize.consent") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let Some(user_id) = req.user_id.clone() else {
        return op(
            fail(
                &ctx,
                None,
                Fail::Page(
                    50058,
                    "A silent sign-in request was sent but no user is signed in.".into(),
                ),
            ),
            "authorize.consent",
            &tid,
            &cid,
        );
    };
    if form.get("accept").map(String::as_str) != Some("true") {
        let f = Fail::Redirect(
            "access_denied",
            65004,
            "User declined to consent to access the app.".into(),
        );
        if let Some(dc) = &req.device
            && let Some(d) = sh.flows.lock().unwrap().devices.get_mut(dc)
        {
            d.declined = true;
        }
        return op(fail(&ctx, Some(&req), f), "authorize.consent", &tid, &cid);
    }
    {
        let mut st = sh.store.lock().unwrap();
        let t = st.tenants.get_mut(&tid).unwrap();
        let admin = directory::user_by_id(t, &user_id).is_some_and(|u| u.admin);
        let for_org = admin && form.get("org").map(String::as_str) == Some("true");
        let csp = s(&req.client_sp, "id");
        for r in &req.requested.resources {
            consent::record(
                t,
                &csp,
                &r.sp_id,
                if for_org { None } else { Some(&user_id) },
                &r.values,
            );
        }
        sh.persist(&st);
    }
    req.consented = true;
    op(
        proceed(&sh, &ctx, req, None),
        "authorize.consent",
        &tid,
        &cid,
    )
}
