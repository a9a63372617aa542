//! The emulator's route table: every path it serves, the surface it belongs to, and the name of
//! each operation as the call log (and the metrics' `operation`) spells it. A row's name is set on
//! the answer by the table, so a handler only adds the tenant and caller ([`crate::request::by`]).
//! Graph and ARM match their own paths (`{*rest}` here): their rows are named by their own tables,
//! [`crate::graph`]'s `routes::ROUTES` and [`crate::arm::routes`], as the FHIR stand-ins name theirs.
//! `unknown` is what the call log showed before the table existed for answers no operation owns
//! (the token endpoint's CORS preflight and its answer to a GET).
use crate::identity::{authorize, device, discovery, forms, keys, signout, token};
use crate::request::{OpInfo, ReqCtx};
use crate::state::Shared;
use crate::{admin, arm, graph, identity};
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{MethodRouter, any, get, post, put};
use http::{HeaderMap, StatusCode};
use std::sync::Arc;

type S = Arc<Shared>;

/// The surfaces, by path: which error shape an injected fault takes and which headers every
/// answer carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Surface {
    Admin,
    Graph,
    Arm,
    Identity,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        if path.starts_with("/_emulator/") {
            Surface::Admin
        } else if path.starts_with("/v1.0/") || path.starts_with("/beta/") {
            Surface::Graph
        } else if path.starts_with("/subscriptions/")
            || path.starts_with("/providers/")
            || path.starts_with("/fhir/")
        {
            Surface::Arm
        } else {
            Surface::Identity
        }
    }

    /// An injected 5xx in the surface's own error shape; 503 and 504 say `Retry-After: 1`.
    pub fn fault(self, ctx: &ReqCtx, status: StatusCode) -> Response {
        let mut r = match self {
            Surface::Arm => arm::fault(ctx, status),
            Surface::Graph => graph::fault(ctx, status),
            Surface::Identity | Surface::Admin => identity::fault(ctx, status),
        };
        if matches!(status.as_u16(), 503 | 504) {
            r.headers_mut()
                .insert("Retry-After", http::HeaderValue::from_static("1"));
        }
        r
    }

    /// The headers the surface puts on every answer.
    pub fn headers(self, h: &mut HeaderMap, ctx: &ReqCtx, echo_client_request_id: bool) {
        match self {
            Surface::Arm => arm::response_headers(h, ctx, echo_client_request_id),
            Surface::Graph => graph::response_headers(h, ctx, echo_client_request_id),
            Surface::Identity => identity::response_headers(h, ctx, echo_client_request_id),
            Surface::Admin => {}
        }
    }
}

/// The table, as a router.
struct Table(axum::Router<S>);

impl Table {
    /// A path whose operations are named by this row.
    fn row(self, path: &str, operation: &'static str, methods: MethodRouter<S>) -> Self {
        Table(self.0.route(
            path,
            methods.route_layer(from_fn_with_state(operation, name_operation)),
        ))
    }
    /// A path whose surface matches the rest and names each operation itself.
    fn surface(self, path: &str, methods: MethodRouter<S>) -> Self {
        Table(self.0.route(path, methods))
    }
}

#[rustfmt::skip]
pub fn table() -> axum::Router<S> {
    Table(axum::Router::new())
        // The admin API (not in the call log).
        .row("/_emulator/state", "admin.state", get(admin::state))
        .row("/_emulator/calls", "admin.calls", get(admin::calls).delete(admin::reset_calls))
        .row("/_emulator/calls/summary", "admin.calls.summary", get(admin::calls_summary))
        .row("/_emulator/realism", "admin.realism", get(admin::get_realism).put(admin::put_realism))
        .row("/_emulator/tenants", "admin.tenants.add", post(admin::add_tenant))
        .row("/_emulator/tenants/{tid}/admin-token", "admin.adminToken", post(admin::admin_token))
        .row("/_emulator/tenants/{tid}/users", "admin.users.add", post(admin::add_user))
        .row("/_emulator/tenants/{tid}/groups", "admin.groups.add", post(admin::add_group))
        .row("/_emulator/sign-in/age", "admin.signIn.age", post(admin::age_flows))
        .row("/_emulator/deleted-items/expire", "admin.deletedItems.expire", post(admin::expire_deleted_items))
        .row("/_emulator/delta/expire", "admin.delta.expire", post(admin::expire_delta_tokens))
        .row("/_emulator/trusted-issuers", "admin.trustedIssuers.add", post(admin::trust_issuer))
        .row("/_emulator/arm", "admin.arm.settings", put(admin::arm::put_settings))
        .row("/_emulator/arm/role-assignments", "admin.arm.roleAssignments", post(admin::arm::seed_assignment).get(admin::arm::list_all))
        // Azure Resource Manager and the FHIR stand-ins.
        .surface("/subscriptions/{*rest}", any(arm::routes::handle))
        .surface("/providers/{*rest}", any(arm::routes::handle))
        .surface("/fhir/{service}/{*rest}", any(arm::fhir::handle))
        // Microsoft Graph.
        .surface("/v1.0/{*rest}", any(graph::handle))
        .surface("/beta/{*rest}", any(graph::handle))
        // The identity platform: metadata and keys.
        .row("/common/discovery/instance", "discovery.instance", get(discovery::instance_discovery))
        .row("/{tenant}/v2.0/.well-known/openid-configuration", "discovery.openid", get(discovery::openid_v2))
        .row("/{tenant}/.well-known/openid-configuration", "discovery.openid", get(discovery::openid_v1))
        .row("/{tenant}/discovery/v2.0/keys", "discovery.keys", get(keys::jwks))
        .row("/{tenant}/discovery/keys", "discovery.keys", get(keys::jwks))
        .row("/common/discovery/v2.0/keys", "discovery.keys", get(keys::jwks_common))
        // The token endpoint (v2.0 and v1).
        .row("/{tenant}/oauth2/v2.0/token", "token", post(token::token))
        .row("/{tenant}/oauth2/token", "token", post(token::token))
        .row("/{tenant}/oauth2/v2.0/token", "unknown", get(token::wrong_verb).options(token::preflight))
        .row("/{tenant}/oauth2/token", "unknown", get(token::wrong_verb).options(token::preflight))
        // Signing in: authorize, the sign-in and consent pages' posts, the device code.
        .row("/{tenant}/oauth2/v2.0/authorize", "authorize", get(authorize::authorize).post(authorize::authorize))
        .row("/{tenant}/oauth2/authorize", "authorize", get(authorize::authorize).post(authorize::authorize))
        .row("/{tenant}/login", "authorize.login", post(forms::login))
        .row("/{tenant}/consent", "authorize.consent", post(forms::consent))
        .row("/{tenant}/oauth2/v2.0/devicecode", "devicecode", post(device::devicecode))
        .row("/{tenant}/oauth2/devicecode", "devicecode", post(device::devicecode))
        .row("/devicelogin", "devicelogin", get(device::page).post(device::enter))
        // Signing out, and userinfo.
        .row("/{tenant}/oauth2/v2.0/logout", "logout", get(signout::logout))
        .row("/{tenant}/oauth2/logout", "logout", get(signout::logout))
        .row("/oidc/userinfo", "userinfo", get(signout::userinfo))
        .0
        .fallback(fallback)
}

/// Puts the row's operation name on the answer (a handler's own name stays).
async fn name_operation(
    State(operation): State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let mut r = next.run(req).await;
    match r.extensions_mut().get_mut::<OpInfo>() {
        Some(info) if !info.operation.is_empty() => {}
        Some(info) => info.operation = operation.into(),
        None => {
            r.extensions_mut().insert(OpInfo::named(operation, "", ""));
        }
    }
    r
}

/// No row: Graph's 404, as for an unknown Graph path.
async fn fallback(req: Request) -> Response {
    let ctx = req.extensions().get::<ReqCtx>().cloned().unwrap();
    let r = graph::graph_error(
        &ctx,
        StatusCode::NOT_FOUND,
        "UnknownError",
        &format!("No route for {} {}", req.method(), req.uri().path()),
        None,
    );
    OpInfo::named("unknown", "", "").on(r)
}
