//! What every request goes through, around its handler: request ids, latency, injected faults
//! (dropped connections, 5xx in the surface's own error shape), the surface's response headers,
//! and the call log. The admin API (`/_emulator/…`) passes straight through and is not logged.
use super::routes::Surface;
use crate::request::{DropHandle, OpInfo, ReqCtx};
use crate::state::calls::{self, CallRecord};
use crate::state::{Shared, random_guid};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::sync::Arc;

/// Every request: ids, latency, faults, response headers, call log.
pub async fn pipeline(State(sh): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let sent_client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let request_id = random_guid();
    let ctx = ReqCtx {
        client_request_id: sent_client_request_id
            .clone()
            .unwrap_or_else(|| request_id.clone()),
        request_id,
    };
    req.extensions_mut().insert(ctx.clone());
    let path = req.uri().path().to_string();
    let query = calls::loggable_query(req.uri().query().unwrap_or(""));
    let method = req.method().to_string();
    let surface = Surface::of(&path);
    if surface == Surface::Admin {
        return next.run(req).await;
    }
    let realism = sh.realism.lock().unwrap().clone();
    if realism.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(realism.latency_ms)).await;
    }
    let fault = sh.draw_fault(&realism);
    let mut resp = if fault.drop {
        let call = CallRecord {
            method,
            path,
            operation: "fault.drop".into(),
            status: 0,
            tenant: String::new(),
            caller: String::new(),
            query,
            error_code: None,
            aadsts_code: None,
        };
        return drop_connection(&sh, req.extensions().get::<DropHandle>().cloned(), call).await;
    } else if fault.fail {
        let status = StatusCode::from_u16(fault.code).unwrap();
        OpInfo::named("fault.error", "", "").on(surface.fault(&ctx, status))
    } else {
        next.run(req).await
    };
    surface.headers(resp.headers_mut(), &ctx, sent_client_request_id.is_some());
    let (resp, error) = read_error_code(resp).await;
    record(&sh, (method, path, query), &resp, error);
    resp
}

/// The error code of an error answer with a JSON body (read, then put back), for the call log.
async fn read_error_code(resp: Response) -> (Response, (Option<String>, Option<u32>)) {
    let json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if resp.status().as_u16() < 400 || !json {
        return (resp, (None, None));
    }
    let (parts, body) = resp.into_parts();
    // The emulator's answers are built in memory, so reading one cannot fail part-way.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let code = calls::error_code(&bytes);
            (Response::from_parts(parts, bytes.into()), code)
        }
        Err(_) => (
            Response::from_parts(parts, axum::body::Body::empty()),
            (None, None),
        ),
    }
}

/// Logs the drop and closes the connection without an answer (the future never resolves).
async fn drop_connection(sh: &Shared, h: Option<DropHandle>, call: CallRecord) -> Response {
    sh.record_call(call);
    if let Some(h) = h {
        h.0.notify_one();
        std::future::pending::<()>().await;
    }
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// The call-log entry of an answered request, from the [`OpInfo`] its handler set.
fn record(
    sh: &Shared,
    (method, path, query): (String, String, String),
    resp: &Response,
    (error_code, aadsts_code): (Option<String>, Option<u32>),
) {
    let op = resp
        .extensions()
        .get::<OpInfo>()
        .cloned()
        .unwrap_or_default();
    sh.record_call(CallRecord {
        method,
        path,
        operation: if op.operation.is_empty() {
            "unknown".into()
        } else {
            op.operation
        },
        status: resp.status().as_u16(),
        tenant: op.tenant,
        caller: op.caller,
        query,
        error_code,
        aadsts_code,
    });
}
