//! Microsoft Graph v1.0: applications, service principals, credentials, grants, deleted items.
//!
//! [`handle`] takes every `/v1.0/…` and `/beta/…` request through the same steps: find its entry in
//! the [route table](routes), check the token, throttle, parse body and query, run the entry's
//! handler on the caller's tenant under the store lock, save the state after a change.
#![allow(clippy::result_large_err)]
mod add_key;
mod app_payload;
mod app_policies;
mod app_validation;
mod applications;
mod assignments;
mod claims_policies;
mod credentials;
mod deleted_items;
mod delta;
mod delta_token;
mod directory_reads;
mod errors;
mod extensions;
mod federated;
mod groups;
mod lookup;
mod odata;
mod owners;
mod pattern;
mod permission_grants;
mod policy_refs;
pub mod policy_rules;
pub mod query;
mod read_order;
mod req;
mod routes;
mod service_principals;
mod sp_credentials;

pub use errors::graph_error;

use crate::bearer::{self, Refusal};
use crate::request::{Caller, OpInfo, ReqCtx};
use crate::state::Shared;
use crate::state::store::{self};
use crate::state::views::GraphObject;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use errors::{R, error_body, error_response};
use pattern::Params;
use req::Req;
use routes::Route;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn handle(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (version, segs) = parse_path(uri.path());
    let (route, params) = routes::find(&method, &segs);
    let caller = match verify_graph_token(&sh, &headers) {
        Ok(c) => c,
        Err(msg) => return unauthorized(&ctx, &msg, route.name),
    };
    let info = OpInfo::named(route.name, &caller.tenant, &caller.app_id);
    let write = method != Method::GET;
    let ru = resource_units(route.name, write, uri.query());
    let throttle_key = format!("{}/{}", caller.tenant, caller.app_id);
    let pct = match sh.throttle(&throttle_key, ru, write) {
        Ok(p) => p,
        Err((secs, kind)) => return info.on(throttled(&ctx, secs, kind, write, &caller)),
    };
    let version_url = format!("{}/{version}", sh.base_url);
    let mut req = match parse_request(&sh, &ctx, caller, method, &uri, &headers, &body) {
        Ok(r) => Req {
            g: version_url,
            ..r
        },
        Err(r) => return info.on(r),
    };
    let result = dispatch(&sh, &mut req, route, &params);
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            let mut r = graph_error(&ctx, e.status, &e.code, &e.message, e.details);
            if let Some(loc) = e.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                r.headers_mut().insert("Location", loc);
            }
            r
        }
    };
    let h = resp.headers_mut();
    h.insert("x-ms-resource-unit", HeaderValue::from(ru));
    if pct >= 0.8 {
        h.insert(
            "x-ms-throttle-limit-percentage",
            HeaderValue::from_str(&format!("{:.1}", pct)).unwrap(),
        );
    }
    info.on(resp)
}

/// `("v1.0" | "beta", percent-decoded segments after it)`.
fn parse_path(path: &str) -> (&'static str, Vec<String>) {
    let (version, rest) = if let Some(r) = path.strip_prefix("/v1.0/") {
        ("v1.0", r)
    } else {
        ("beta", path.trim_start_matches("/beta/"))
    };
    let segs = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .to_string()
        })
        .collect();
    (version, segs)
}

/// Graph's token check: the caller, or the message of a 401 `InvalidAuthenticationToken`.
/// Verified tokens are remembered until they expire (signature checks are the costliest part of
/// a Graph call).
fn verify_graph_token(sh: &Shared, headers: &HeaderMap) -> Result<Caller, String> {
    let token = bearer::token(headers).map(str::trim).unwrap_or("");
    if token.is_empty() {
        return Err("Access token is empty.".into());
    }
    if let Some((c, exp)) = sh.token_cache.lock().unwrap().get(token).cloned()
        && exp >= crate::state::now_secs()
    {
        return Ok(c);
    }
    let audience_ok = |aud: &str| {
        matches!(
            aud,
            "https://graph.microsoft.com" | "https://graph.microsoft.com/" | store::GRAPH_APP_ID
        )
    };
    let rules = bearer::Rules {
        audience_ok: &audience_ok,
        nbf_skew_secs: Some(300),
    };
    let (caller, exp) = bearer::check(sh, token, &rules).map_err(|r| {
        match r {
            Refusal::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
            Refusal::Signature => "Access token validation failure. Invalid signature.",
            Refusal::Audience(_) => "Access token validation failure. Invalid audience.",
            Refusal::Lifetime => "Access token has expired or is not yet valid.",
            Refusal::Tenant => "Access token validation failure. Invalid tenant.",
        }
        .to_string()
    })?;
    let mut cache = sh.token_cache.lock().unwrap();
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(token.to_string(), (caller.clone(), exp));
    Ok(caller)
}

/// A 5xx the pipeline injects (`realism.error_rate`), in Graph's error shape.
pub fn fault(ctx: &ReqCtx, status: StatusCode) -> Response {
    let (c, m) = match status.as_u16() {
        503 => ("serviceNotAvailable", "Service unavailable"),
        504 => ("gatewayTimeout", "The request timed out."),
        502 => ("badGateway", "Bad gateway."),
        _ => ("generalException", "An unexpected error occurred."),
    };
    graph_error(ctx, status, c, m, None)
}

/// The headers Graph puts on every answer (recorded): `request-id`, `client-request-id` only
/// when the client sent one, the diagnostic and resource-unit headers.
pub fn response_headers(h: &mut HeaderMap, ctx: &ReqCtx, echo_client_request_id: bool) {
    h.insert(
        "request-id",
        HeaderValue::from_str(&ctx.request_id).unwrap(),
    );
    if echo_client_request_id {
        h.insert(
            "client-request-id",
            HeaderValue::from_str(&ctx.client_request_id).unwrap_or(HeaderValue::from_static("")),
        );
    }
    h.insert("x-ms-ags-diagnostic", HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"entra-emulator"}}"#));
    h.entry("x-ms-resource-unit")
        .or_insert(HeaderValue::from_static("1"));
    h.insert("Cache-Control", HeaderValue::from_static("no-cache"));
    h.insert(
        "Strict-Transport-Security",
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert("Vary", HeaderValue::from_static("Accept-Encoding"));
}

/// A 401 for a missing or bad token.
fn unauthorized(ctx: &ReqCtx, msg: &str, operation: &str) -> Response {
    let mut r = graph_error(
        ctx,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        msg,
        None,
    );
    r.headers_mut().insert("WWW-Authenticate", HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""));
    OpInfo::named(operation, "", "").on(r)
}

/// Graph's resource-unit cost of a request: lists of applications, their extension properties and
/// grants cost 2 (1 with `$select`), anything else 1.
fn resource_units(operation: &str, write: bool, query: Option<&str>) -> u64 {
    let listing = matches!(
        operation,
        "applications.list"
            | "applications.extensionProperties.list"
            | "oauth2PermissionGrants.list"
            | "servicePrincipals.oauth2PermissionGrants.list"
    );
    let mut ru: u64 = if !write && listing { 2 } else { 1 };
    if query.is_some_and(|q| q.contains("select=")) && ru > 1 {
        ru -= 1;
    }
    ru
}

/// A 429 as Graph sends it: `Retry-After`, the throttle scope, and code/message/status repeated
/// in `innerError`.
fn throttled(
    ctx: &ReqCtx,
    secs: u64,
    kind: &'static str,
    write: bool,
    caller: &Caller,
) -> Response {
    let mut v = error_body(ctx, "TooManyRequests", "Please retry again later.", None);
    v["error"]["innerError"]["code"] = json!("429");
    v["error"]["innerError"]["message"] = json!("Please retry after");
    v["error"]["innerError"]["status"] = json!("429");
    let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, &v);
    let h = r.headers_mut();
    h.insert("Retry-After", HeaderValue::from(secs));
    h.insert(
        "x-ms-throttle-scope",
        HeaderValue::from_str(&format!(
            "Tenant_Application/{}/{}/{}",
            if write { "ReadWrite" } else { "Read" },
            caller.app_id,
            caller.tenant
        ))
        .unwrap_or(HeaderValue::from_static("Tenant_Application")),
    );
    h.insert("x-ms-throttle-information", HeaderValue::from_static(kind));
    r
}

/// The JSON body and the query options; a 400 when either does not parse.
fn parse_request<'a>(
    sh: &'a Shared,
    ctx: &ReqCtx,
    caller: Caller,
    method: Method,
    uri: &Uri,
    headers: &'a HeaderMap,
    body: &[u8],
) -> Result<Req<'a>, Response> {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            graph_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"
                ),
                None,
            )
        })?
    };
    let q = query::parse_query(uri.query())
        .map_err(|m| graph_error(ctx, StatusCode::BAD_REQUEST, "Request_BadRequest", &m, None))?;
    Ok(Req {
        sh,
        caller,
        method,
        q,
        headers,
        body,
        g: String::new(),
        now: Utc::now(),
        lag: sh.lag_ms(),
        foreign_apps: HashMap::new(),
    })
}

/// Runs the route's handler on the caller's tenant under the store lock; a successful change is
/// saved once the lock is released.
fn dispatch(sh: &Shared, req: &mut Req, route: &Route, params: &Params) -> R {
    let mut st = sh.store.lock().unwrap();
    let tid = req.caller.tenant.clone();
    if route.name == routes::SP_CREATE {
        req.foreign_apps = foreign_apps(&st, &tid);
    }
    let tenant = st.tenants.get_mut(&tid).unwrap();
    // Deleted items older than 30 days are gone before anything reads them (state::recycle).
    crate::state::recycle::expire(tenant, req.now);
    let res = (route.handler)(req, tenant, params);
    // Delta tokens older than the changes kept expire (state::changes).
    tenant.changes.trim(sh.delta.retained_changes);
    if req.method != Method::GET && res.is_ok() {
        sh.persist(st);
    }
    res
}

/// The multi-tenant applications registered in tenants other than `tid`, by appId.
fn foreign_apps(st: &store::Store, tid: &str) -> HashMap<String, (Value, String)> {
    st.tenants
        .values()
        .filter(|t| t.id != tid)
        .flat_map(|t| {
            t.apps
                .iter()
                .filter(|a| a.is_multi_tenant())
                .map(move |a| (a.app_id().to_string(), (a.body.clone(), t.id.clone())))
        })
        .collect()
}
