//! A stand-in for the managed FHIR service's authorisation decision: per configured service,
//! `{base}/fhir/{key}/…` accepts tokens with that service's audience and answers a read (GET) or a
//! write (POST, PUT, DELETE) when the caller's role assignments at the service's scope (or a parent)
//! grant that data action — counted from `propagation_ms` after the ARM write, until
//! `propagation_ms` after its deletion — and 403 otherwise. Resources are kept in memory, enough for
//! a client to write and read back a Patient; this is not a FHIR server.
use super::roles;
use crate::request::OpInfo;
use crate::state::Shared;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

fn outcome(status: StatusCode, code: &str, text: &str) -> Response {
    let body = json!({"resourceType": "OperationOutcome", "id": uuid::Uuid::new_v4().to_string(),
        "issue": [{"severity": "error", "code": code, "diagnostics": text}]});
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    r
}

fn fhir_json(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    r
}

/// Whether `oid`'s assignments (effective now, after propagation) grant `action` at `scope`.
fn granted(sh: &Shared, oid: &str, scope: &str, action: &str) -> bool {
    let arm = sh.arm.lock().unwrap();
    let delay = arm.config.propagation_ms as i64;
    let now = super::now();
    arm.assignments.values().any(|a| {
        a.principal_id.eq_ignore_ascii_case(oid)
            && super::covers(&a.scope, scope)
            && a.created_ms + delay <= now
            && a.deleted_ms.is_none_or(|d| now < d + delay)
            && roles::by_definition_id(&a.role_definition_id).is_some_and(|r| r.allows_data(action))
    })
}

/// `/fhir/{key}/{*rest}`.
pub async fn handle(
    State(sh): State<Arc<Shared>>,
    Path((key, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let found = {
        let arm = sh.arm.lock().unwrap();
        arm.fhir
            .get(&key.to_ascii_lowercase())
            .map(|s| (s.scope.clone(), s.audience.clone(), s.action_prefix))
    };
    let Some((scope, audience, prefix)) = found else {
        return OpInfo::named("fhir.unknown", "", "").on(outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such FHIR service.",
        ));
    };
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if parts == ["metadata"] && method == Method::GET {
        let cs = json!({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
            "format": ["json"], "rest": [{"mode": "server", "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}]}}]});
        return OpInfo::named("fhir.metadata", "", "").on(fhir_json(StatusCode::OK, &cs));
    }
    let caller = match super::verify(&sh, &headers, &[audience.as_str()]) {
        Ok(c) => c,
        Err((_, message)) => {
            let mut r = outcome(StatusCode::UNAUTHORIZED, "login", &message);
            let challenge = format!(
                "Bearer authorization_uri=\"{}/{}\", resource_id=\"{audience}\", realm=\"{audience}\"",
                sh.base_url, "common"
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert("WWW-Authenticate", v);
            }
            return OpInfo::named("fhir.unauthorized", "", "").on(r);
        }
    };
    let verb = match method {
        Method::GET => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    let action = format!("{prefix}/resources/{verb}");
    if !granted(&sh, &caller.oid, &scope, &action) {
        return OpInfo::named("fhir.forbidden", &caller.tenant, &caller.app_id).on(outcome(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Authorization failed.",
        ));
    }
    let resp = resource(&sh, &key.to_ascii_lowercase(), &method, &parts, &body);
    OpInfo::named(&format!("fhir.{verb}"), &caller.tenant, &caller.app_id).on(resp)
}

/// Create (POST `/{type}`), update (PUT `/{type}/{id}`), read (GET `/{type}/{id}`), delete.
fn resource(sh: &Shared, key: &str, method: &Method, parts: &[&str], body: &[u8]) -> Response {
    let mut arm = sh.arm.lock().unwrap();
    let Some(svc) = arm.fhir.get_mut(key) else {
        return outcome(StatusCode::NOT_FOUND, "not-found", "No such FHIR service.");
    };
    match (method, parts) {
        (&Method::POST, [ty]) | (&Method::PUT, [ty, _]) => {
            let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
                return outcome(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "The resource is not valid JSON.",
                );
            };
            if v["resourceType"].as_str() != Some(*ty) {
                return outcome(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "resourceType does not match the URL.",
                );
            }
            let id = match parts {
                [_, id] => id.to_string(),
                _ => uuid::Uuid::new_v4().to_string(),
            };
            v["id"] = json!(id);
            v["meta"] = json!({"versionId": "1", "lastUpdated": crate::state::store::fmt_7(chrono::Utc::now())});
            let created = svc
                .resources
                .insert((ty.to_string(), id), v.clone())
                .is_none();
            fhir_json(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &v,
            )
        }
        (&Method::GET, [ty, id]) => match svc.resources.get(&(ty.to_string(), id.to_string())) {
            Some(v) => fhir_json(StatusCode::OK, v),
            None => outcome(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!("Resource type '{ty}' with id '{id}' couldn't be found."),
            ),
        },
        (&Method::DELETE, [ty, id]) => {
            svc.resources.remove(&(ty.to_string(), id.to_string()));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => outcome(
            StatusCode::BAD_REQUEST,
            "not-supported",
            "This stand-in answers create, read, update and delete only.",
        ),
    }
}
