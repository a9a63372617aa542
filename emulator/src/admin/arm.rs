//! The admin API's ARM part: `PUT /_emulator/arm` (replication lag, propagation delay) and
//! `/_emulator/arm/role-assignments` (seed one without permission checks; list every live one).
use crate::arm::assignments::to_json;
use crate::config::SeedAssignment;
use crate::state::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// `PUT /_emulator/arm`: replaces the lag and propagation settings (body: [`ArmConfig`] fields
/// `principal_lag_ms`, `propagation_ms`).
pub async fn put_settings(
    State(sh): State<Arc<Shared>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut arm = sh.arm.lock().unwrap();
    if let Some(v) = body.get("principal_lag_ms").and_then(Value::as_u64) {
        arm.config.principal_lag_ms = v;
    }
    if let Some(v) = body.get("propagation_ms").and_then(Value::as_u64) {
        arm.config.propagation_ms = v;
    }
    axum::Json(json!({"principal_lag_ms": arm.config.principal_lag_ms, "propagation_ms": arm.config.propagation_ms})).into_response()
}

/// `POST /_emulator/arm/role-assignments`: a role assignment without permission checks (body:
/// [`SeedAssignment`]); answers its name. `GET` lists every live assignment (for tests and debugging).
pub async fn seed_assignment(
    State(sh): State<Arc<Shared>>,
    axum::Json(body): axum::Json<SeedAssignment>,
) -> Response {
    let store = sh.store.lock().unwrap();
    let res = sh.arm.lock().unwrap().seed(&body, &store);
    match res {
        Ok(name) => (StatusCode::CREATED, axum::Json(json!({"name": name}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

pub async fn list_all(State(sh): State<Arc<Shared>>) -> Response {
    let arm = sh.arm.lock().unwrap();
    let v: Vec<Value> = arm.live().map(to_json).collect();
    axum::Json(json!({"value": v})).into_response()
}
