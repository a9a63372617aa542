//! The token-signing keys (JWKS) of a tenant, and of `common`.
use super::{discovery_headers, tenant_or_unknown};
use crate::request::{ReqCtx, by};
use crate::state::Shared;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub async fn jwks(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = match tenant_or_unknown(&sh, &ctx, &t) {
        Ok(tid) => tid,
        Err(r) => return by(r, "", ""),
    };
    let mut r =
        axum::Json(json!({"keys": [sh.signing.jwk(&format!("{}/{tid}/v2.0", sh.base_url))]}))
            .into_response();
    discovery_headers(&mut r);
    by(r, &tid, "")
}

pub async fn jwks_common(State(sh): State<Arc<Shared>>) -> Response {
    let mut r = axum::Json(
        json!({"keys": [sh.signing.jwk(&format!("{}/{{tenantid}}/v2.0", sh.base_url))]}),
    )
    .into_response();
    discovery_headers(&mut r);
    by(r, "", "")
}
