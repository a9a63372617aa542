//! What every handler gets from the pipeline and gives back to it: the request's ids ([`ReqCtx`]),
//! the call-log entry a handler fills in ([`OpInfo`]), and the connection's drop switch. Bottom
//! layer: imports no surface.
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::Notify;

/// Per-request context set by the pipeline.
#[derive(Clone, Debug)]
pub struct ReqCtx {
    pub request_id: String,
    pub client_request_id: String,
}

/// Set on a response: what the call was, for the call log. The route table names the operation
/// (`server::routes`); a handler adds who called in which tenant, and names the operation itself
/// only where the surface's own table chose it (Graph, ARM, the FHIR stand-ins).
#[derive(Clone, Debug, Default)]
pub struct OpInfo {
    pub operation: String,
    pub tenant: String,
    pub caller: String,
}

impl OpInfo {
    /// The call-log entry of an operation the surface named.
    pub fn named(operation: &str, tenant: &str, caller: &str) -> Self {
        OpInfo {
            operation: operation.into(),
            tenant: tenant.into(),
            caller: caller.into(),
        }
    }
    /// Puts this entry on `r`.
    pub fn on(self, mut r: Response) -> Response {
        r.extensions_mut().insert(self);
        r
    }
}

/// The tenant and caller of a call whose operation the route table names.
pub fn by(r: Response, tenant: &str, caller: &str) -> Response {
    OpInfo::named("", tenant, caller).on(r)
}

/// Lets the pipeline drop the connection without an answer (`realism.drop_rate`).
#[derive(Clone)]
pub struct DropHandle(pub Arc<Notify>);

/// The caller of a Graph, ARM or FHIR request, from its bearer token ([`crate::bearer`]).
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: String,
    pub oid: String,
    pub app_id: String,
    /// Application permissions (`roles`), as Graph reads them.
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}
