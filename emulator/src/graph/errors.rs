//! Graph's errors: the error the handlers return, and the `{"error": …}` body Graph answers with.
use crate::request::ReqCtx;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

/// A Graph error: status, `error.code`, `error.message` and, for some, `error.details`.
pub struct GErr {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    /// A `Location` header for the answer (delta's synchronization reset).
    pub location: Option<String>,
}

impl GErr {
    /// The same error under another `error.code`.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = code.into();
        self
    }
}

/// What a handler answers.
pub type R = Result<Response, GErr>;

pub fn err(status: StatusCode, code: &str, message: impl Into<String>) -> GErr {
    GErr {
        status,
        code: code.into(),
        message: message.into(),
        details: None,
        location: None,
    }
}
pub fn bad(message: impl Into<String>) -> GErr {
    err(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}
pub fn not_found(id: &str) -> GErr {
    err(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}
pub fn denied() -> GErr {
    err(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}
pub fn invalid_value(prop: &str, resource: &str) -> GErr {
    bad(format!(
        "Invalid value specified for property '{prop}' of resource '{resource}'."
    ))
}
pub fn method_not_allowed() -> GErr {
    err(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Method not allowed.",
    )
}
pub fn unsupported() -> GErr {
    bad("Unsupported request.")
}
/// A path segment Graph has no resource for (`segment` as the request spelled it).
pub fn segment_not_found(segment: &str) -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
}

/// A create that would exceed the directory's object quota: `Directory_QuotaExceeded` with the
/// texts Graph gives for the tenant's quota (Azure-Samples/active-directory-dotnet-graphapi-console#45)
/// and a creator's (Azure/azure-powershell#3074, microsoft/azure-tools-for-java#585). No public
/// record shows the status of a create refused so; [INF] 403, the status Graph gives the other
/// directory quotas (the owners forward-link quota's `Directory_QuotaExceeded` and
/// `Directory_ResourceSizeExceeded`, openshift/openshift-azure#1932).
pub fn quota_exceeded(tenant_wide: bool) -> GErr {
    let whose = if tenant_wide { "Tenant" } else { "Principal" };
    err(
        StatusCode::FORBIDDEN,
        "Directory_QuotaExceeded",
        format!(
            "The directory object quota limit for the {whose} has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota."
        ),
    )
}

/// The `{"error": {code, message, details?, innerError}}` body.
pub fn error_body(ctx: &ReqCtx, code: &str, message: &str, details: Option<Value>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = details {
        e["details"] = d;
    }
    e["innerError"] = json!({"date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "request-id": ctx.request_id, "client-request-id": ctx.client_request_id});
    json!({"error": e})
}

pub fn error_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

pub fn graph_error(
    ctx: &ReqCtx,
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    error_response(status, &error_body(ctx, code, message, details))
}
