//! The answer to the app: a code or an error, by query, fragment or form_post to the redirect URI
//! (or Entra's error page when the redirect URI cannot be trusted). Facts: interactive-flows.md 1.4.
use super::auth_request::{Fail, Params};
use super::pages;
use crate::request::ReqCtx;
use crate::state::sign_in::{AuthRequest, Mode};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
pub fn deliver(req: &AuthRequest, params: Params) -> Response {
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
