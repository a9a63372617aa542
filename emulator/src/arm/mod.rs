//! Azure Resource Manager, the part the operator uses: role assignments
//! (`Microsoft.Authorization/roleAssignments`, api-versions 2018-09-01-preview to 2022-04-01) with
//! ARM's error envelope, permission checks and the directory's replication lag, the built-in role
//! definitions, and a stand-in for the managed FHIR service's authorisation decision
//! ([`fhir`]). Served on the emulator's listener under `/subscriptions/…`, `/providers/…` and
//! `/fhir/{service}/…`. Shares nothing with the operator's code.
//!
//! [`routes`] is ARM's route table (its operations by name, for the call log); [`arm_error`],
//! [`fault`] and [`response_headers`] are its error and header rules. ARM's state (assignments,
//! role definitions, FHIR services) lives in [`crate::state::arm`]; its admin API
//! (`/_emulator/arm…`) in [`crate::admin`].
pub mod assignments;
pub mod fhir;
pub mod routes;

pub use crate::state::arm::{Assignment, covers, now, roles, subscription_of};

use crate::bearer::{self, Refusal};
use crate::request::{Caller, ReqCtx};
use crate::state::Shared;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

/// ARM's application in every tenant ("Windows Azure Service Management API").
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
/// Token audiences ARM accepts (public cloud; SDKs ask for either).
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    ARM_APP_ID,
];

/// One ARM request, as the handlers see it.
pub struct Call<'a> {
    pub caller: &'a Caller,
    /// The scope (the path before `/providers/Microsoft.Authorization/…`), as sent.
    pub scope: String,
    /// The assignment name or definition GUID of an item request.
    pub(super) item: Option<String>,
    pub filter: Option<String>,
    pub body: &'a [u8],
}

impl Call<'_> {
    pub fn item(&self) -> &str {
        self.item.as_deref().unwrap_or("")
    }
}

/// ARM's error envelope with its usual headers.
pub fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    json_response(status, &body)
}

/// A JSON response with the headers ARM sends on every answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        "Content-Type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    arm_headers(h);
    r
}

pub fn arm_headers(h: &mut HeaderMap) {
    h.insert("Cache-Control", HeaderValue::from_static("no-cache"));
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    h.insert("Expires", HeaderValue::from_static("-1"));
    h.insert(
        "Strict-Transport-Security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
}

/// Validates the bearer token (signature, audience, lifetime, tenant) against `audiences`;
/// `Err((code, message))` is ARM's 401.
pub fn verify(
    sh: &Shared,
    headers: &HeaderMap,
    audiences: &[&str],
) -> Result<Caller, (&'static str, String)> {
    let Some(token) = bearer::token(headers) else {
        return Err((
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    };
    let audience_ok = |aud: &str| {
        let aud = aud.trim_end_matches('/');
        audiences
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
    };
    let rules = bearer::Rules {
        audience_ok: &audience_ok,
        nbf_skew_secs: None,
    };
    let invalid = |m: &str| ("InvalidAuthenticationToken", m.to_string());
    bearer::check(sh, token, &rules)
        .map(|(caller, _)| caller)
        .map_err(|r| match r {
            Refusal::Malformed => invalid("The access token is invalid."),
            Refusal::Signature => invalid("The access token has an invalid signature."),
            Refusal::Audience(aud) => (
                "InvalidAuthenticationTokenAudience",
                format!(
                    "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences '{}'.",
                    aud.trim_end_matches('/'),
                    audiences.join("', '")
                ),
            ),
            Refusal::Lifetime => (
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.".into(),
            ),
            Refusal::Tenant => invalid("The access token is from the wrong issuer."),
        })
}

/// A 5xx the pipeline injects (`realism.error_rate`), in ARM's envelope.
pub fn fault(_ctx: &ReqCtx, status: StatusCode) -> Response {
    arm_error(
        status,
        "InternalServerError",
        "The server encountered an internal error. Please retry the request.",
    )
}

/// ARM and the FHIR stand-ins set their own headers on each answer; the pipeline adds the id.
pub fn response_headers(h: &mut HeaderMap, ctx: &ReqCtx, _echo_client_request_id: bool) {
    h.insert(
        "x-ms-request-id",
        HeaderValue::from_str(&ctx.request_id).unwrap(),
    );
}

/// The `api-version` query parameter, required on every ARM call.
pub fn api_version(query: &str) -> Option<String> {
    query_param(query, "api-version")
}

pub fn query_param(query: &str, key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

pub fn missing_api_version() -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
}
