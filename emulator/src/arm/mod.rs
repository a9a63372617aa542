//! Azure Resource Manager, the part the operator uses: role assignments
//! (`Microsoft.Authorization/roleAssignments`, api-versions 2018-09-01-preview to 2022-04-01) with
//! ARM's error envelope, permission checks and the directory's replication lag, the built-in role
//! definitions, and a stand-in for the managed FHIR service's authorisation decision
//! ([`fhir`]). Served on the emulator's listener under `/subscriptions/…`, `/providers/…` and
//! `/fhir/{service}/…`. Shares nothing with the operator's code.
pub mod assignments;
pub mod fhir;
pub mod roles;

use crate::server::{OpInfo, Shared, now_secs};
use crate::store::{Store, now_ms};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// ARM's application in every tenant ("Windows Azure Service Management API").
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
/// Token audiences ARM accepts (public cloud; SDKs ask for either).
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    ARM_APP_ID,
];

/// ARM set-up in the emulator's config (`arm:`), also changeable through `PUT /_emulator/arm`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct ArmConfig {
    /// A new service principal is unknown to ARM (400 `PrincipalNotFound` on a role assignment PUT)
    /// for this long after it became visible in Graph: ARM reads a directory replica.
    pub principal_lag_ms: u64,
    /// A data-plane stand-in honours a new role assignment (and stops honouring a deleted one) this
    /// long after the ARM write (Azure: "up to 10 minutes"; Azure API for FHIR caches 5 minutes).
    pub propagation_ms: u64,
    /// Role assignments present from the start (e.g. the operator's right to assign roles).
    pub role_assignments: Vec<SeedAssignment>,
    /// Managed FHIR services the data-plane stand-in serves.
    pub fhir_services: Vec<FhirServiceConfig>,
}

/// A role assignment made by the emulator's set-up, without permission checks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SeedAssignment {
    pub scope: String,
    /// Role name (`Role Based Access Control Administrator`) or definition GUID.
    pub role: String,
    /// Object id of the principal, or …
    pub principal_id: Option<String>,
    /// … the appId of an application whose service principal is the principal.
    pub principal_client_id: Option<String>,
    /// ABAC condition (version 2.0), e.g. the "constrain roles" condition.
    pub condition: Option<String>,
}

/// A managed FHIR service the stand-in serves at `{base}/fhir/{workspace}-{name}` (AHDS) or
/// `{base}/fhir/{name}` (Azure API for FHIR).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct FhirServiceConfig {
    /// ARM resource id of the service (the scope its role assignments are checked at).
    pub resource_id: String,
    /// Token audience. Default: `https://{workspace}-{name}.fhir.azurehealthcareapis.com`
    /// (`https://{name}.azurehealthcareapis.com` for Azure API for FHIR).
    pub audience: Option<String>,
}

/// One role assignment as ARM keeps it.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub tenant: String,
    pub description: Option<String>,
    pub condition: Option<String>,
    pub created_on: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_ms: i64,
    /// Deleted in ARM at this time (kept for the data plane's propagation delay).
    pub deleted_ms: Option<i64>,
}

#[derive(Default)]
pub struct ArmState {
    pub config: ArmConfig,
    /// By lower-cased name (names are unique tenant-wide).
    pub assignments: BTreeMap<String, Assignment>,
    pub fhir: BTreeMap<String, fhir::Service>,
}

impl ArmState {
    /// State from the config; seed principals given by appId are resolved in `store`.
    pub fn new(config: &ArmConfig, store: &Store) -> anyhow::Result<Self> {
        let mut st = ArmState {
            config: config.clone(),
            ..Default::default()
        };
        for s in &config.role_assignments {
            st.seed(s, store)?;
        }
        for f in &config.fhir_services {
            let svc = fhir::Service::new(f)?;
            st.fhir.insert(svc.key.clone(), svc);
        }
        Ok(st)
    }

    /// Adds a seeded assignment (config or admin API).
    pub fn seed(&mut self, s: &SeedAssignment, store: &Store) -> anyhow::Result<String> {
        let role = roles::by_name_or_guid(&s.role)
            .ok_or_else(|| anyhow::anyhow!("unknown role '{}'", s.role))?;
        let (principal, tenant) = match (&s.principal_id, &s.principal_client_id) {
            (Some(p), _) => (p.clone(), principal_tenant(store, p).unwrap_or_default()),
            (None, Some(app)) => store
                .tenants
                .values()
                .find_map(|t| {
                    let i = t.sp_idx_by_app_id(app)?;
                    Some((crate::store::s(&t.sps[i].body, "id"), t.id.clone()))
                })
                .ok_or_else(|| anyhow::anyhow!("no service principal for appId {app}"))?,
            (None, None) => {
                anyhow::bail!("a seeded role assignment needs principal_id or principal_client_id")
            }
        };
        let name = uuid::Uuid::new_v4().to_string();
        let scope = s.scope.trim_end_matches('/').to_string();
        let sub = subscription_of(&scope).unwrap_or("00000000-0000-0000-0000-000000000000");
        self.assignments.insert(
            name.clone(),
            Assignment {
                name: name.clone(),
                role_definition_id: format!(
                    "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{}",
                    role.guid
                ),
                scope,
                principal_id: principal,
                principal_type: "ServicePrincipal".into(),
                tenant,
                description: None,
                condition: s.condition.clone(),
                created_on: crate::store::fmt_7(chrono::Utc::now()),
                created_by: None,
                updated_by: None,
                // Seeds are effective at once, data plane included.
                created_ms: 0,
                deleted_ms: None,
            },
        );
        Ok(name)
    }

    /// Live (not deleted) assignments.
    pub fn live(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments.values().filter(|a| a.deleted_ms.is_none())
    }
}

/// The tenant whose directory holds the object `id` (service principal, user or group).
pub fn principal_tenant(store: &Store, id: &str) -> Option<String> {
    store.tenants.values().find_map(|t| {
        let found = t.sp_idx(id).is_some()
            || t.users
                .iter()
                .any(|u| crate::store::s(&u.body, "id").eq_ignore_ascii_case(id))
            || t.groups
                .iter()
                .any(|g| crate::store::s(&g.body, "id").eq_ignore_ascii_case(id));
        found.then(|| t.id.clone())
    })
}

/// `/subscriptions/{sub}/…` → `{sub}`.
pub fn subscription_of(scope: &str) -> Option<&str> {
    let mut it = scope.trim_start_matches('/').split('/');
    it.next()
        .filter(|s| s.eq_ignore_ascii_case("subscriptions"))?;
    it.next().filter(|s| !s.is_empty())
}

/// Whether `outer` is `inner` or one of its parents (segment-wise, case-insensitive).
pub fn covers(outer: &str, inner: &str) -> bool {
    let o = outer.trim_end_matches('/').to_ascii_lowercase();
    let i = inner.trim_end_matches('/').to_ascii_lowercase();
    o.is_empty() || i == o || i.starts_with(&format!("{o}/"))
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

pub fn with_op(mut r: Response, op: &str, tenant: &str, caller: &str) -> Response {
    r.extensions_mut().insert(OpInfo {
        operation: op.into(),
        tenant: tenant.into(),
        caller: caller.into(),
    });
    r
}

/// The caller of an ARM or data-plane request, from a bearer token of one of `audiences`.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: String,
    pub oid: String,
    pub app_id: String,
}

/// Validates the bearer token (signature, audience, lifetime, tenant); `Err((code, message))` is a 401.
pub fn verify(
    sh: &Shared,
    headers: &HeaderMap,
    audiences: &[&str],
) -> Result<Caller, (&'static str, String)> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
    else {
        return Err((
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    };
    let invalid = |m: &str| ("InvalidAuthenticationToken", m.to_string());
    let jwt =
        crate::crypto::Jwt::parse(token).map_err(|_| invalid("The access token is invalid."))?;
    if jwt.verify(&sh.signing.public).is_err() {
        return Err(invalid("The access token has an invalid signature."));
    }
    let aud = jwt.claim_str("aud").unwrap_or("").trim_end_matches('/');
    if !audiences
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
    {
        return Err((
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences '{}'.",
                audiences.join("', '")
            ),
        ));
    }
    let now = now_secs();
    if jwt.claim_i64("exp").unwrap_or(0) < now {
        return Err((
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.".into(),
        ));
    }
    let tenant = jwt.claim_str("tid").unwrap_or("").to_string();
    if !sh.store.lock().unwrap().tenants.contains_key(&tenant) {
        return Err(invalid("The access token is from the wrong issuer."));
    }
    Ok(Caller {
        tenant,
        oid: jwt.claim_str("oid").unwrap_or("").into(),
        app_id: jwt
            .claim_str("appid")
            .or(jwt.claim_str("azp"))
            .unwrap_or("")
            .into(),
    })
}

/// `PUT /_emulator/arm`: replaces the lag and propagation settings (body: [`ArmConfig`] fields
/// `principal_lag_ms`, `propagation_ms`).
pub async fn put_settings(
    axum::extract::State(sh): axum::extract::State<std::sync::Arc<Shared>>,
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
    axum::extract::State(sh): axum::extract::State<std::sync::Arc<Shared>>,
    axum::Json(body): axum::Json<SeedAssignment>,
) -> Response {
    let store = sh.store.lock().unwrap();
    let res = sh.arm.lock().unwrap().seed(&body, &store);
    match res {
        Ok(name) => (StatusCode::CREATED, axum::Json(json!({"name": name}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

pub async fn list_all(
    axum::extract::State(sh): axum::extract::State<std::sync::Arc<Shared>>,
) -> Response {
    let arm = sh.arm.lock().unwrap();
    let v: Vec<Value> = arm.live().map(assignments::to_json).collect();
    axum::Json(json!({"value": v})).into_response()
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

/// Milliseconds now (for lag and propagation).
pub fn now() -> i64 {
    now_ms()
}
