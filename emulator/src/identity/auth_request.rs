//! Validating an authorization request, in Entra's order: the client and its redirect URI first
//! (errors on Entra's own page), then response type and mode, prompt, PKCE and scopes (errors back
//! to the app). Facts: interactive-flows.md section 1.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use super::{consent, resolve_tenant};
use crate::state::Shared;
use crate::state::now_secs;
use crate::state::sign_in::{AuthRequest, Mode, Platform, Requested};
use crate::state::store::{Store, s};
use crate::state::views::GraphObject;
use serde_json::{Value, json};

/// What went wrong, and where the user sees it.
pub enum Fail {
    /// Entra's own page: the redirect URI cannot be trusted (yet).
    Page(u32, String),
    /// Back to the app: (`error`, AADSTS code, text).
    Redirect(&'static str, u32, String),
}

pub type Params = Vec<(String, String)>;

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

pub fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
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
            Some((h, app)) if app.is_multi_tenant() => h.clone(),
            Some((_, app)) => {
                return Err(Fail::Page(
                    50194,
                    format!(
                        "Application '{client_id}'({}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
                        app.display_name()
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
        .filter(|(h, a)| *h == tid || a.is_multi_tenant())
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
pub fn build(
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
        client_name: app.display_name().to_string(),
        client_sp: sp,
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
