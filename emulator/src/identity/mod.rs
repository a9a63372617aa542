//! The identity platform (login.microsoftonline.com): the authorization endpoints and their sign-in
//! and consent pages, the token endpoint and its grants, the device-code flow, sign-out and
//! userinfo, discovery documents and signing keys. Errors are Entra's AADSTS answers
//! ([`aadsts_error`]); [`fault`] and [`response_headers`] are this surface's rules for the pipeline.
//!
//! Files by concept: [`discovery`] and [`keys`] (metadata), [`token`] (the token endpoint and the
//! client-credentials grant), [`client_auth`] (who the client is), [`grants`] (code, refresh token
//! and device code) with [`user_tokens`] (the tokens they issue), [`authorize`] with
//! [`auth_request`] (validation), [`answer`] (back to the app) and [`forms`] (the pages' posts),
//! [`consent`], [`device`], [`signout`], [`pages`] (HTML).
pub mod answer;
pub mod auth_request;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod forms;
pub mod grants;
pub mod keys;
pub mod pages;
pub mod signout;
pub mod token;
pub mod user_tokens;

use crate::request::ReqCtx;
use crate::state::store::Store;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

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

/// A 5xx the pipeline injects (`realism.error_rate`), as the token endpoint answers one.
pub fn fault(ctx: &ReqCtx, status: StatusCode) -> Response {
    aadsts_error(
        ctx,
        status,
        "temporarily_unavailable",
        90033,
        "A transient error has occurred. Please try again.",
    )
}

/// The headers login.microsoftonline.com puts on every answer; `client-request-id` is echoed
/// when the client sent one.
pub fn response_headers(h: &mut HeaderMap, ctx: &ReqCtx, echo_client_request_id: bool) {
    h.insert(
        "x-ms-request-id",
        HeaderValue::from_str(&ctx.request_id).unwrap(),
    );
    h.insert(
        "x-ms-ests-server",
        HeaderValue::from_static("2.1.0 - entra-emulator"),
    );
    h.insert(
        "Strict-Transport-Security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    if echo_client_request_id {
        h.entry("client-request-id").or_insert(
            HeaderValue::from_str(&ctx.client_request_id).unwrap_or(HeaderValue::from_static("")),
        );
    }
}

/// [`aadsts_error`] with the status as a number.
pub(crate) fn err(ctx: &ReqCtx, status: u16, error: &str, code: u32, text: &str) -> Response {
    aadsts_error(
        ctx,
        StatusCode::from_u16(status).unwrap(),
        error,
        code,
        text,
    )
}

/// The tenant of a path segment (id or verified domain), or Entra's AADSTS90002 answer.
#[allow(clippy::result_large_err)] // the Err is the answer
pub(crate) fn tenant_or_unknown(
    sh: &crate::state::Shared,
    ctx: &ReqCtx,
    seg: &str,
) -> Result<String, Response> {
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), seg) };
    tid.ok_or_else(|| unknown_tenant(ctx, seg))
}
