//! Listener, TLS, request pipeline (request ids, realism, call log), bootstrap and persistence.
use crate::state_file::{Snapshot, StateFile};
use crate::store::{self, AppRec, SpRec, Store, Tenant, fmt_secs, now_ms};
use crate::{BootstrapApp, Config, Realism, TenantConfig, ThrottleLimits, crypto};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::{HeaderValue, StatusCode};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tower::ServiceExt;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub operation: String,
    pub status: u16,
    pub tenant: String,
    pub caller: String,
}

/// Counts of calls since start (or the last `DELETE /_emulator/calls`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallSummary {
    pub total: u64,
    pub by_operation: std::collections::BTreeMap<String, u64>,
    pub by_status: std::collections::BTreeMap<String, u64>,
    pub by_operation_and_status:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// Set by handlers on their response: what the call was, for the call log.
#[derive(Clone, Debug, Default)]
pub struct OpInfo {
    pub operation: String,
    pub tenant: String,
    pub caller: String,
}

/// Per-request context set by the pipeline.
#[derive(Clone, Debug)]
pub struct ReqCtx {
    pub request_id: String,
    pub client_request_id: String,
}

#[derive(Clone)]
pub struct DropHandle(pub Arc<Notify>);

struct Bucket {
    ru: f64,
    writes: f64,
    last: std::time::Instant,
}

pub struct Shared {
    pub store: Mutex<Store>,
    pub signing: crypto::SigningKey,
    pub base_url: String,
    pub realism: Mutex<Realism>,
    pub limits: Mutex<ThrottleLimits>,
    rng: Mutex<rand::rngs::StdRng>,
    pub calls: Mutex<Vec<CallRecord>>,
    pub summary: Mutex<CallSummary>,
    pub token_cache: Mutex<HashMap<String, (crate::login::Caller, i64)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    state_file: Option<StateFile>,
    pub http: reqwest::Client,
    pub default_sign_in_audience: String,
    pub token_lifetime_secs: u64,
    /// Sign-in state kept in memory only: pending requests, sessions, codes, refresh tokens.
    pub flows: Mutex<crate::flows::Flows>,
    /// Azure Resource Manager's role assignments and the FHIR stand-ins (in memory only).
    pub arm: Mutex<crate::arm::ArmState>,
}

impl Shared {
    pub fn set_realism(&self, r: Realism) {
        *self.rng.lock().unwrap() = rand::rngs::StdRng::seed_from_u64(r.seed);
        self.buckets.lock().unwrap().clear();
        *self.realism.lock().unwrap() = r;
    }
    /// Appends to the call log (the newest 100,000 calls are kept) and to the summary counters.
    pub fn record_call(&self, c: CallRecord) {
        {
            let mut s = self.summary.lock().unwrap();
            s.total += 1;
            *s.by_operation.entry(c.operation.clone()).or_default() += 1;
            *s.by_status.entry(c.status.to_string()).or_default() += 1;
            *s.by_operation_and_status
                .entry(c.operation.clone())
                .or_default()
                .entry(c.status.to_string())
                .or_default() += 1;
        }
        let mut calls = self.calls.lock().unwrap();
        if calls.len() >= 100_000 {
            calls.drain(..10_000);
        }
        calls.push(c);
    }
    pub fn lag_ms(&self) -> i64 {
        self.realism.lock().unwrap().replication_lag_ms as i64
    }
    /// A copy of the store to save, taken under the store lock after a change (None when
    /// persistence is off). Save it with [`Shared::save`] once the lock is released.
    pub fn snapshot(&self, store: &Store) -> Option<Snapshot> {
        self.state_file.as_ref()?.snapshot(store)
    }
    /// Writes a snapshot to the state file (unless a newer one was written meanwhile).
    pub fn save(&self, snap: Option<Snapshot>) {
        if let (Some(f), Some(snap)) = (&self.state_file, snap) {
            f.save(snap);
        }
    }
    /// Snapshots the store under its lock, releases the lock, then saves. Call after every change.
    pub fn persist(&self, store: std::sync::MutexGuard<'_, Store>) {
        let snap = self.snapshot(&store);
        drop(store);
        self.save(snap);
    }
    /// Token-bucket check; `Err(retry_after_secs, scope, info)` when throttled.
    pub fn throttle(&self, key: &str, ru: u64, write: bool) -> Result<f64, (u64, &'static str)> {
        if !self.realism.lock().unwrap().throttling {
            return Ok(0.0);
        }
        let r = self.limits.lock().unwrap().clone();
        let ru_cap = r.throttle_resource_units_per_10s.max(1) as f64;
        let w_cap = r.throttle_writes_per_150s.max(1) as f64;
        let mut b = self.buckets.lock().unwrap();
        let now = std::time::Instant::now();
        let e = b.entry(key.to_string()).or_insert(Bucket {
            ru: ru_cap,
            writes: w_cap,
            last: now,
        });
        let dt = now.duration_since(e.last).as_secs_f64();
        e.last = now;
        e.ru = (e.ru + dt * ru_cap / 10.0).min(ru_cap);
        e.writes = (e.writes + dt * w_cap / 150.0).min(w_cap);
        let need = ru as f64;
        if e.ru < need {
            let secs = ((need - e.ru) / (ru_cap / 10.0)).ceil().max(1.0) as u64;
            return Err((secs, "ResourceUnitLimitExceeded"));
        }
        if write && e.writes < 1.0 {
            let secs = ((1.0 - e.writes) / (w_cap / 150.0)).ceil().max(1.0) as u64;
            return Err((secs, "WriteLimitExceeded"));
        }
        e.ru -= need;
        if write {
            e.writes -= 1.0;
        }
        Ok(1.0 - e.ru / ru_cap)
    }
}

pub fn random_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Creates (or refreshes) a bootstrap application, its SP and its Graph app role assignments.
pub fn bootstrap_app(
    tenant: &mut Tenant,
    b: &BootstrapApp,
    default_aud: &str,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let idx = match tenant.app_idx_by_app_id(&b.client_id) {
        Some(i) => i,
        None => {
            let mut body = store::new_application(tenant, now);
            body["appId"] = json!(b.client_id);
            body["displayName"] = json!(b.display_name);
            body["signInAudience"] = json!(default_aud);
            tenant.apps.push(AppRec {
                body,
                ..Default::default()
            });
            tenant.apps.len() - 1
        }
    };
    let app = &mut tenant.apps[idx];
    if let Some(secret) = &b.client_secret
        && !app.secrets.iter().any(|s| &s.text == secret)
    {
        let key_id = random_guid();
        let cred = json!({"customKeyIdentifier": null, "displayName": "bootstrap", "endDateTime": fmt_secs(now + chrono::Duration::days(730)),
                "hint": secret.chars().take(3).collect::<String>(), "keyId": key_id, "secretText": null, "startDateTime": fmt_secs(now)});
        app.body["passwordCredentials"]
            .as_array_mut()
            .unwrap()
            .insert(0, cred);
        app.secrets.push(store::Secret {
            key_id,
            text: secret.clone(),
            usable_from_ms: 0,
        });
    }
    if let Some(pem) = &b.certificate_pem {
        let der = crypto::cert_der_from_pem(pem)?;
        let thumb = crypto::sha1(&der);
        if !app
            .cert_keys
            .values()
            .any(|k| crypto::b64_any(k).as_deref() == Some(der.as_slice()))
        {
            let (nb, na) = crypto::cert_validity(&der)
                .unwrap_or((now.timestamp(), now.timestamp() + 365 * 86400));
            let key_id = random_guid();
            let cred = json!({"customKeyIdentifier": crypto::b64(&thumb), "displayName": "CN=bootstrap",
                "endDateTime": fmt_secs(chrono::DateTime::from_timestamp(na, 0).unwrap_or(now)), "key": null, "keyId": key_id,
                "startDateTime": fmt_secs(chrono::DateTime::from_timestamp(nb, 0).unwrap_or(now)), "type": "AsymmetricX509Cert", "usage": "Verify"});
            app.body["keyCredentials"]
                .as_array_mut()
                .unwrap()
                .push(cred);
            app.cert_keys.insert(key_id, crypto::b64(&der));
        }
    }
    for (i, f) in b.federated.iter().enumerate() {
        if !app
            .fics
            .iter()
            .any(|x| store::s(x, "issuer") == f.issuer && store::s(x, "subject") == f.subject)
        {
            let aud = if f.audience.is_empty() {
                "api://AzureADTokenExchange".to_string()
            } else {
                f.audience.clone()
            };
            app.fics.push(
                json!({"id": random_guid(), "name": format!("bootstrap-{i}"),
                "issuer": f.issuer, "subject": f.subject, "description": null, "audiences": [aud]}),
            );
        }
    }
    let app_body = app.body.clone();
    let tid = tenant.id.clone();
    let sp_id = match tenant.sp_idx_by_app_id(&b.client_id) {
        Some(i) => store::s(&tenant.sps[i].body, "id"),
        None => {
            let sp = store::new_service_principal(&app_body, &tid, now);
            let id = store::s(&sp, "id");
            tenant.sps.push(SpRec {
                body: sp,
                owners: vec![],
                visible_from_ms: 0,
            });
            id
        }
    };
    let graph_idx = tenant.sp_idx_by_app_id(store::GRAPH_APP_ID).unwrap();
    let graph = tenant.sps[graph_idx].body.clone();
    for p in &b.permissions {
        let role = graph["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| store::s(r, "value").eq_ignore_ascii_case(p))
            .ok_or_else(|| anyhow::anyhow!("unknown Graph permission '{p}'"))?;
        let role_id = store::s(role, "id");
        if !tenant
            .assignments
            .iter()
            .any(|a| a.principal_id == sp_id && a.app_role_id == role_id)
        {
            tenant.assignments.push(store::Assignment::new(
                &sp_id,
                "ServicePrincipal",
                &b.display_name,
                &role_id,
                &graph,
                now,
            ));
        }
    }
    Ok(())
}

pub fn add_tenant(store: &mut Store, tc: &TenantConfig, default_aud: &str) -> anyhow::Result<()> {
    if uuid::Uuid::parse_str(&tc.tenant_id).is_err() {
        anyhow::bail!("tenant id '{}' is not a GUID", tc.tenant_id);
    }
    let t = store
        .tenants
        .entry(tc.tenant_id.to_ascii_lowercase())
        .or_insert_with(|| {
            Tenant::new(
                &tc.tenant_id.to_ascii_lowercase(),
                tc.verified_domains.clone(),
                tc.healthcare_service_principal,
            )
        });
    for d in &tc.verified_domains {
        if !t.domains.iter().any(|x| x.eq_ignore_ascii_case(d)) {
            t.domains.push(d.to_ascii_lowercase());
        }
    }
    for a in &tc.apps {
        bootstrap_app(t, a, default_aud)?;
    }
    for g in &tc.groups {
        crate::directory::add_group(t, g)?;
    }
    for u in &tc.users {
        crate::directory::add_user(t, u)?;
    }
    Ok(())
}

pub async fn start(config: Config) -> anyhow::Result<crate::Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let base_url = format!("https://{host}:{}", addr.port());
    let mut names = config.hostnames.clone();
    names.push(addr.ip().to_string());
    let tls = crypto::make_tls(&names)?;
    if let Some(ca_file) = &config.ca_file {
        if let Some(dir) = ca_file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(ca_file, &tls.ca_pem)?;
    }
    let signing = crypto::SigningKey::new(config.signing_key_pem.as_deref())?;

    let mut store = Store::default();
    if let Some(p) = &config.state_file
        && p.exists()
    {
        let bytes = std::fs::read(p)?;
        store = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("state file {}: {e}", p.display()))?;
        tracing::info!(path = %p.display(), "loaded state");
    }
    for tc in &config.tenants {
        add_tenant(&mut store, tc, &config.default_sign_in_audience)?;
    }
    for ti in &config.trusted_issuers {
        if let Some(j) = &ti.jwks {
            store.trusted_issuers.insert(ti.issuer.clone(), j.clone());
        } else {
            store
                .trusted_issuers
                .entry(ti.issuer.clone())
                .or_insert(Value::Null);
        }
    }
    let first = config
        .tenants
        .first()
        .map(|t| {
            let a = t.apps.first();
            (
                t.tenant_id.to_ascii_lowercase(),
                a.map(|a| a.client_id.clone()).unwrap_or_default(),
                a.and_then(|a| a.client_secret.clone()).unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let arm = crate::arm::ArmState::new(&config.arm, &store)?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let shared = Arc::new(Shared {
        store: Mutex::new(store),
        signing,
        base_url: base_url.clone(),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.realism.seed)),
        realism: Mutex::new(config.realism.clone()),
        limits: Mutex::new(config.throttle_limits.clone()),
        calls: Mutex::new(vec![]),
        token_cache: Mutex::new(HashMap::new()),
        summary: Mutex::new(CallSummary::default()),
        buckets: Mutex::new(HashMap::new()),
        state_file: config.state_file.clone().map(StateFile::new),
        http,
        default_sign_in_audience: config.default_sign_in_audience.clone(),
        token_lifetime_secs: config.token_lifetime_secs,
        flows: Mutex::new(crate::flows::Flows::default()),
        arm: Mutex::new(arm),
    });
    shared.persist(shared.store.lock().unwrap());
    let router = router(shared.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = rx.changed() => break,
                acc = listener.accept() => {
                    let Ok((tcp, _)) = acc else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let app = router.clone();
                    let mut stop = rx.clone();
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await else { return };
                        let kill = Arc::new(Notify::new());
                        let k2 = kill.clone();
                        let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(DropHandle(k2.clone()));
                            let app = app.clone();
                            async move { app.oneshot(req.map(Body::new)).await }
                        });
                        let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
                        tokio::select! {
                            _ = conn => {}
                            _ = kill.notified() => {}
                            _ = stop.changed() => {}
                        }
                    });
                }
            }
        }
    });
    tracing::info!(%base_url, "entra-emulator listening");
    Ok(crate::__running(
        shared,
        config.ca_file.clone(),
        tls.ca_pem,
        tx,
        task,
        first,
    ))
}

fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::routing::{any, get, post, put};
    axum::Router::new()
        .route("/_emulator/state", get(crate::admin::state))
        .route(
            "/_emulator/calls",
            get(crate::admin::calls).delete(crate::admin::reset_calls),
        )
        .route("/_emulator/calls/summary", get(crate::admin::calls_summary))
        .route(
            "/_emulator/realism",
            get(crate::admin::get_realism).put(crate::admin::put_realism),
        )
        .route("/_emulator/tenants", post(crate::admin::add_tenant))
        .route(
            "/_emulator/tenants/{tid}/admin-token",
            post(crate::admin::admin_token),
        )
        .route(
            "/_emulator/tenants/{tid}/users",
            post(crate::admin::add_user),
        )
        .route(
            "/_emulator/tenants/{tid}/groups",
            post(crate::admin::add_group),
        )
        .route("/_emulator/sign-in/age", post(crate::admin::age_flows))
        .route(
            "/_emulator/trusted-issuers",
            post(crate::admin::trust_issuer),
        )
        .route("/_emulator/arm", put(crate::arm::put_settings))
        .route(
            "/_emulator/arm/role-assignments",
            post(crate::arm::seed_assignment).get(crate::arm::list_all),
        )
        .route(
            "/subscriptions/{*rest}",
            any(crate::arm::assignments::handle),
        )
        .route("/providers/{*rest}", any(crate::arm::assignments::handle))
        .route("/fhir/{service}/{*rest}", any(crate::arm::fhir::handle))
        .route("/v1.0/{*rest}", any(crate::graph::handle))
        .route("/beta/{*rest}", any(crate::graph::handle))
        .route(
            "/common/discovery/instance",
            get(crate::login::instance_discovery),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(crate::login::token)
                .options(crate::grants::preflight)
                .get(crate::grants::wrong_verb),
        )
        .route(
            "/{tenant}/oauth2/token",
            post(crate::login::token)
                .options(crate::grants::preflight)
                .get(crate::grants::wrong_verb),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(crate::authorize::authorize).post(crate::authorize::authorize),
        )
        .route(
            "/{tenant}/oauth2/authorize",
            get(crate::authorize::authorize).post(crate::authorize::authorize),
        )
        .route("/{tenant}/login", post(crate::authorize::login))
        .route("/{tenant}/oauth2/v2.0/logout", get(crate::signout::logout))
        .route("/{tenant}/oauth2/logout", get(crate::signout::logout))
        .route("/oidc/userinfo", get(crate::signout::userinfo))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(crate::device::devicecode),
        )
        .route(
            "/{tenant}/oauth2/devicecode",
            post(crate::device::devicecode),
        )
        .route(
            "/devicelogin",
            get(crate::device::page).post(crate::device::enter),
        )
        .route("/{tenant}/consent", post(crate::authorize::consent))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(crate::login::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(crate::login::openid_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(crate::login::jwks))
        .route("/{tenant}/discovery/keys", get(crate::login::jwks))
        .route(
            "/common/discovery/v2.0/keys",
            get(crate::login::jwks_common),
        )
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            pipeline,
        ))
        .with_state(shared)
}

async fn fallback(req: Request) -> Response {
    let ctx = req.extensions().get::<ReqCtx>().cloned().unwrap();
    let mut r = crate::graph::graph_error(
        &ctx,
        StatusCode::NOT_FOUND,
        "UnknownError",
        &format!("No route for {} {}", req.method(), req.uri().path()),
        None,
    );
    r.extensions_mut().insert(OpInfo {
        operation: "unknown".into(),
        ..Default::default()
    });
    r
}

/// Every request: ids, latency, faults, response headers, call log.
async fn pipeline(State(sh): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let request_id = random_guid();
    let sent_client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client_request_id = sent_client_request_id
        .clone()
        .unwrap_or_else(|| request_id.clone());
    let ctx = ReqCtx {
        request_id: request_id.clone(),
        client_request_id: client_request_id.clone(),
    };
    req.extensions_mut().insert(ctx.clone());
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    if path.starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let is_graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
    // ARM and the FHIR stand-ins set their own headers; faults answer in ARM's envelope.
    let is_arm = path.starts_with("/subscriptions/")
        || path.starts_with("/providers/")
        || path.starts_with("/fhir/");
    let realism = sh.realism.lock().unwrap().clone();
    if realism.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(realism.latency_ms)).await;
    }
    let (drop, fail, code) = if realism.drop_rate > 0.0 || realism.error_rate > 0.0 {
        let mut rng = sh.rng.lock().unwrap();
        let d: f64 = rng.r#gen();
        let e: f64 = rng.r#gen();
        let c = [500u16, 502, 503, 504][rng.gen_range(0..4)];
        (d < realism.drop_rate, e < realism.error_rate, c)
    } else {
        (false, false, 500)
    };
    let mut resp = if drop {
        let h = req.extensions().get::<DropHandle>().cloned();
        sh.record_call(CallRecord {
            method,
            path,
            operation: "fault.drop".into(),
            status: 0,
            tenant: String::new(),
            caller: String::new(),
        });
        if let Some(h) = h {
            h.0.notify_one();
            std::future::pending::<()>().await;
        }
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    } else if fail {
        let status = StatusCode::from_u16(code).unwrap();
        let mut r = if is_arm {
            crate::arm::arm_error(
                status,
                "InternalServerError",
                "The server encountered an internal error. Please retry the request.",
            )
        } else if is_graph {
            let (c, m) = match code {
                503 => ("serviceNotAvailable", "Service unavailable"),
                504 => ("gatewayTimeout", "The request timed out."),
                502 => ("badGateway", "Bad gateway."),
                _ => ("generalException", "An unexpected error occurred."),
            };
            crate::graph::graph_error(&ctx, status, c, m, None)
        } else {
            crate::login::aadsts_error(
                &ctx,
                status,
                "temporarily_unavailable",
                90033,
                "A transient error has occurred. Please try again.",
            )
        };
        if code == 503 || code == 504 {
            r.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
        }
        r.extensions_mut().insert(OpInfo {
            operation: "fault.error".into(),
            ..Default::default()
        });
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    if is_arm {
        h.insert(
            "x-ms-request-id",
            HeaderValue::from_str(&request_id).unwrap(),
        );
    } else if is_graph {
        h.insert("request-id", HeaderValue::from_str(&request_id).unwrap());
        // Graph echoes client-request-id only when the client sent one.
        if sent_client_request_id.is_some() {
            h.insert(
                "client-request-id",
                HeaderValue::from_str(&client_request_id).unwrap_or(HeaderValue::from_static("")),
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
    } else {
        h.insert(
            "x-ms-request-id",
            HeaderValue::from_str(&request_id).unwrap(),
        );
        h.insert(
            "x-ms-ests-server",
            HeaderValue::from_static("2.1.0 - entra-emulator"),
        );
        h.insert(
            "Strict-Transport-Security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
        h.insert(
            "X-Content-Type-Options",
            HeaderValue::from_static("nosniff"),
        );
        if sent_client_request_id.is_some() {
            h.entry("client-request-id").or_insert(
                HeaderValue::from_str(&client_request_id).unwrap_or(HeaderValue::from_static("")),
            );
        }
    }
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
    });
    resp
}

pub fn now_secs() -> i64 {
    now_ms() / 1000
}
