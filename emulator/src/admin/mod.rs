//! The admin API under `/_emulator/` (no auth; a local test tool): the state, the call log,
//! realism, tenants, users and groups, trusted issuers, ARM's settings and seeded role assignments
//! ([`arm`]), and the sign-in clock. Not in the call log.
pub mod arm;

use crate::config::{GroupConfig, Realism, TenantConfig, ThrottleLimits, UserConfig};
use crate::state::Shared;
use crate::state::seed::add_tenant as add_tenant_to_store;
use crate::state::store::{self, s};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn state(State(sh): State<Arc<Shared>>) -> Response {
    let st = sh.store.lock().unwrap();
    let mut tenants = serde_json::Map::new();
    for (tid, t) in &st.tenants {
        let app_view = |a: &store::AppRec| {
            let mut v = store::app_public_view(a);
            v["owners"] = json!(a.owners);
            v["federatedIdentityCredentials"] = json!(a.fics);
            v
        };
        tenants.insert(tid.clone(), json!({
            "tenant_id": tid,
            "verified_domains": t.domains,
            "applications": t.apps.iter().map(app_view).collect::<Vec<_>>(),
            "deleted_applications": t.deleted_apps.iter().map(app_view).collect::<Vec<_>>(),
            "deleted_service_principals": t.deleted_sps.iter().map(|d| { let mut v = d.rec.body.clone(); v["owners"] = json!(d.rec.owners); v }).collect::<Vec<_>>(),
            "service_principals": t.sps.iter().map(|sp| { let mut v = sp.body.clone(); v["owners"] = json!(sp.owners); v }).collect::<Vec<_>>(),
            "app_role_assignments": t.assignments,
            "oauth2_permission_grants": t.grants,
            // Users without their password hash; groups with their members.
            "users": t.users.iter().map(|u| { let mut v = u.body.clone(); v["admin"] = json!(u.admin); v }).collect::<Vec<_>>(),
            "groups": t.groups.iter().map(|g| { let mut v = g.body.clone(); v["members"] = json!(g.members); v }).collect::<Vec<_>>(),
        }));
    }
    Json(json!({"tenants": tenants, "trusted_issuers": st.trusted_issuers.keys().collect::<Vec<_>>()})).into_response()
}

pub async fn calls(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.calls.lock().unwrap().clone()).into_response()
}

pub async fn reset_calls(State(sh): State<Arc<Shared>>) -> Response {
    sh.calls.lock().unwrap().clear();
    *sh.summary.lock().unwrap() = Default::default();
    StatusCode::NO_CONTENT.into_response()
}

pub async fn calls_summary(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.summary.lock().unwrap().clone()).into_response()
}

fn realism_view(sh: &Shared) -> Value {
    let mut v = serde_json::to_value(sh.realism.lock().unwrap().clone()).unwrap();
    let l = serde_json::to_value(sh.limits.lock().unwrap().clone()).unwrap();
    if let (Some(o), Some(lo)) = (v.as_object_mut(), l.as_object()) {
        for (k, x) in lo {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

pub async fn get_realism(State(sh): State<Arc<Shared>>) -> Response {
    Json(realism_view(&sh)).into_response()
}

pub async fn put_realism(State(sh): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    // Partial updates: fields not given keep their current value.
    let mut cur = realism_view(&sh);
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(e.to_string());
        }
    };
    let Some(p) = patch.as_object() else {
        return bad_request("expected a JSON object");
    };
    let c = cur.as_object_mut().unwrap();
    for (k, v) in p {
        if !c.contains_key(k) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("unknown field '{k}'")})),
            )
                .into_response();
        }
        c.insert(k.clone(), v.clone());
    }
    match (
        serde_json::from_value::<Realism>(cur.clone()),
        serde_json::from_value::<ThrottleLimits>(cur),
    ) {
        (Ok(r), Ok(l)) => {
            sh.set_realism(r);
            *sh.limits.lock().unwrap() = l;
            Json(realism_view(&sh)).into_response()
        }
        (Err(e), _) | (_, Err(e)) => bad_request(e.to_string()),
    }
}

pub async fn add_tenant(State(sh): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let tc: TenantConfig = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(e.to_string());
        }
    };
    let mut st = sh.store.lock().unwrap();
    let tid = tc.tenant_id.to_ascii_lowercase();
    if let Err(e) = add_tenant_to_store(&mut st, &tc, &sh.default_sign_in_audience) {
        return bad_request(e.to_string());
    }
    let snap = sh.snapshot(&st);
    let t = &st.tenants[&tid];
    let apps: Vec<Value> = tc
        .apps
        .iter()
        .map(|a| {
            let sp = t.sp_idx_by_app_id(&a.client_id).map(|i| s(&t.sps[i].body, "id"));
            let obj = t.app_idx_by_app_id(&a.client_id).map(|i| s(&t.apps[i].body, "id"));
            json!({"client_id": a.client_id, "client_secret": a.client_secret, "object_id": obj, "service_principal_id": sp})
        })
        .collect();
    let body = json!({"tenant_id": tid, "verified_domains": t.domains, "apps": apps});
    drop(st);
    sh.save(snap);
    (StatusCode::CREATED, Json(body)).into_response()
}

pub async fn admin_token(State(sh): State<Arc<Shared>>, Path(tid): Path<String>) -> Response {
    let tid = tid.to_ascii_lowercase();
    if !sh.store.lock().unwrap().tenants.contains_key(&tid) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown tenant {tid}")})),
        )
            .into_response();
    }
    Json(json!({"access_token": crate::identity::token::admin_token(&sh, &tid), "token_type": "Bearer", "expires_in": sh.token_lifetime_secs})).into_response()
}

pub async fn trust_issuer(State(sh): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let Some(issuer) = body.get("issuer").and_then(Value::as_str) else {
        return bad_request("issuer is required");
    };
    let jwks = body.get("jwks").cloned().unwrap_or(Value::Null);
    if !jwks.is_null() && jwks.get("keys").and_then(Value::as_array).is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "jwks must be a JWKS document {\"keys\":[...]}"})),
        )
            .into_response();
    }
    let mut st = sh.store.lock().unwrap();
    st.trusted_issuers.insert(issuer.to_string(), jwks);
    sh.persist(st);
    (StatusCode::NO_CONTENT).into_response()
}

/// A 400 with `{"error": message}`: the admin API's own (non-Graph) error shape.
fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.to_string()})),
    )
        .into_response()
}

/// Parses a JSON body and applies it to one tenant (404 if there is none); the change is saved.
fn change_tenant<T: serde::de::DeserializeOwned>(
    sh: &Shared,
    tid: &str,
    body: &[u8],
    f: impl FnOnce(&mut store::Tenant, T) -> anyhow::Result<Value>,
) -> Response {
    let v: T = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_request(e.to_string()),
    };
    let mut st = sh.store.lock().unwrap();
    let Some(t) = st.tenants.get_mut(&tid.to_ascii_lowercase()) else {
        let msg = json!({"error": format!("no tenant '{tid}'")});
        return (StatusCode::NOT_FOUND, Json(msg)).into_response();
    };
    match f(t, v) {
        Ok(out) => {
            sh.persist(st);
            (StatusCode::CREATED, Json(out)).into_response()
        }
        Err(e) => bad_request(e.to_string()),
    }
}

/// `POST /_emulator/tenants/{tid}/users` with a `UserConfig` (JSON): adds or replaces a user.
pub async fn add_user(
    State(sh): State<Arc<Shared>>,
    Path(tid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    change_tenant(&sh, &tid, &body, |t, u: UserConfig| {
        let id = crate::state::directory::add_user(t, &u)?;
        Ok(crate::state::directory::user_by_id(t, &id)
            .map(|u| u.body.clone())
            .unwrap_or_default())
    })
}

/// `POST /_emulator/tenants/{tid}/groups` with a `GroupConfig` (JSON).
pub async fn add_group(
    State(sh): State<Arc<Shared>>,
    Path(tid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    change_tenant(&sh, &tid, &body, |t, g: GroupConfig| {
        let id = crate::state::directory::add_group(t, &g)?;
        Ok(json!({"id": id, "displayName": g.display_name}))
    })
}

/// `POST /_emulator/sign-in/age` `{"seconds": N}`: makes every authorization code, refresh token
/// and device code N seconds older, so tests can see them expire (AADSTS70008, 700084).
pub async fn age_flows(State(sh): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let secs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["seconds"].as_i64());
    let Some(n) = secs else {
        return bad_request("expected {\"seconds\": N}");
    };
    sh.flows.lock().unwrap().age(n);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_emulator/deleted-items/expire`: every tenant's deleted applications and service
/// principals are deleted for good now, as if their 30 days were over. With `{"days": N}` they are
/// made N days older instead, and only those then 30 days old go. Answers `{"expired": count}`.
pub async fn expire_deleted_items(
    State(sh): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let days = if body.is_empty() {
        crate::state::recycle::RETENTION_DAYS
    } else {
        match serde_json::from_slice::<Value>(&body).map(|v| v["days"].as_i64()) {
            Ok(Some(n)) if n >= 0 => n,
            _ => return bad_request("expected no body or {\"days\": N} (N >= 0)"),
        }
    };
    let mut st = sh.store.lock().unwrap();
    let now = chrono::Utc::now();
    let mut expired = 0;
    for t in st.tenants.values_mut() {
        crate::state::recycle::age(t, days);
        expired += crate::state::recycle::expire(t, now);
    }
    sh.persist(st);
    Json(json!({"expired": expired})).into_response()
}

/// `POST /_emulator/delta/expire`: every delta token issued so far, in every tenant, stops working:
/// the next request with one gets 400 `syncStateNotFound`, as a token past its seven days does.
/// With `{"reset": true}` it gets Graph's synchronization reset instead (410 and a `Location`).
pub async fn expire_delta_tokens(
    State(sh): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let reset = if body.is_empty() {
        false
    } else {
        match serde_json::from_slice::<Value>(&body).map(|v| v.get("reset").map(Value::as_bool)) {
            Ok(None) => false,
            Ok(Some(Some(b))) => b,
            _ => return bad_request("expected no body or {\"reset\": true|false}"),
        }
    };
    let mut st = sh.store.lock().unwrap();
    for t in st.tenants.values_mut() {
        t.changes.expire_all(reset);
    }
    sh.persist(st);
    StatusCode::NO_CONTENT.into_response()
}
