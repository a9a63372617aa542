//! Operator runtime: controllers, health/metrics HTTP endpoint, leader election, shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, PartialObjectMeta, PostParams};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{FhirClientApp, FhirResourceApp};
use crate::config::OperatorConfig;
use crate::controller::{Caches, Context, client_app, credentials_hold, drift, resource_app};
use crate::desired::naming::MANAGED_BY_SELECTOR;
use crate::lean::lean;
use crate::metrics::Metrics;
use crate::watch_backoff::watch_backoff;

const LEASE_DURATION: Duration = Duration::from_secs(15);
const LEASE_RENEW: Duration = Duration::from_secs(5);
/// Longest the controllers wait for the own tenant's first Graph delta round (one Graph call's
/// timeout): a Graph that does not answer does not hold the Kubernetes side back for longer.
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(30);

/// Runs the operator until SIGTERM/Ctrl-C, with the kubeconfig/in-cluster client.
pub async fn run(config: OperatorConfig) -> anyhow::Result<()> {
    crate::init_crypto();
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    run_with(
        client,
        config,
        Arc::new(Metrics::default()),
        shutdown_signal(),
    )
    .await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs the operator with a given client until `shutdown` completes (tests run it in-process):
/// health/metrics endpoint, CRD check, leader election, the two controllers, then a clean stop.
pub async fn run_with(
    client: Client,
    config: OperatorConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }
    let ready = Arc::new(AtomicBool::new(false));
    let http_task = start_http(&config, &metrics, &ready).await?;
    check_crds(&client, &config).await?;
    if config.leader_election {
        let mut rx = stop_rx.clone();
        tokio::select! {
            r = acquire_lease(&client, &config) => r?,
            _ = rx.wait_for(|s| *s) => return Ok(()),
        }
        tracing::info!(identity = %config.identity, "became leader");
    }
    // Joined with the controllers (not spawned), so it ends with the operator, also when the
    // operator task is aborted.
    let renew = renew_lease(
        client.clone(),
        config.clone(),
        stop_tx.clone(),
        stop_rx.clone(),
    );
    let (resources, clients, holds, drift) = controllers(&client, &config, &metrics, &stop_rx)?;
    ready.store(true, Ordering::SeqCst);
    tracing::info!("fhir-app-operator started");
    stop_within_grace(&config, stop_rx.clone(), async {
        futures::join!(resources, clients, holds, drift, renew);
    })
    .await;
    ready.store(false, Ordering::SeqCst);
    if config.leader_election {
        release_lease(&client, &config).await;
    }
    drop(http_task);
    tracing::info!("fhir-app-operator stopped");
    Ok(())
}

/// Runs `work` (the controllers) to its end; once a stop is asked for, waits at most the shutdown
/// grace period for the reconciles in flight (a Graph call may take up to its 30 s timeout, and
/// retries add to it), then returns without them: Kubernetes kills a pod 30 s after SIGTERM by
/// default, and a reconcile cut short is redone by the next leader (each step is idempotent).
async fn stop_within_grace(
    config: &OperatorConfig,
    mut stop: watch::Receiver<bool>,
    work: impl Future<Output = ()>,
) {
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stop.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = work => {}
        _ = deadline => tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "reconciles still in flight after the shutdown grace period; stopping without them"
        ),
    }
}

/// The health/metrics endpoint, when an address is configured.
async fn start_http(
    config: &OperatorConfig,
    metrics: &Arc<Metrics>,
    ready: &Arc<AtomicBool>,
) -> anyhow::Result<Option<AbortOnDrop>> {
    let Some(addr) = config.http_addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let task = tokio::spawn(serve_http(listener, metrics.clone(), ready.clone()));
    Ok(Some(AbortOnDrop(task)))
}

/// Fails early with a clear message when the CRDs are missing.
async fn check_crds(client: &Client, config: &OperatorConfig) -> anyhow::Result<()> {
    api_for::<FhirClientApp>(client, config)
        .list(&ListParams::default().limit(1))
        .await
        .context("FhirClientApp CRD not served: apply crds/ first")?;
    api_for::<FhirResourceApp>(client, config)
        .list(&ListParams::default().limit(1))
        .await
        .context("FhirResourceApp CRD not served: apply crds/ first")?;
    Ok(())
}

/// Renews the Lease while running (without leader election: nothing); losing it stops the
/// controllers.
async fn renew_lease(
    client: Client,
    config: OperatorConfig,
    stop_tx: Arc<watch::Sender<bool>>,
    mut rx: watch::Receiver<bool>,
) {
    if !config.leader_election {
        return;
    }
    let mut failures = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LEASE_RENEW) => {}
            _ = rx.wait_for(|s| *s) => return,
        }
        let lost = match try_lease(&client, &config).await {
            Ok(true) => {
                failures = 0;
                false
            }
            Ok(false) => true,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "renewing the leader lease failed");
                // Stop before the Lease can expire (renewals every 5 s, duration 15 s).
                failures >= 2
            }
        };
        if lost {
            tracing::error!("lost the leader lease; stopping");
            let _ = stop_tx.send(true);
            return;
        }
    }
}

/// The resource-app and client controllers, ready to run until `stop` says so.
#[allow(clippy::type_complexity)]
fn controllers(
    client: &Client,
    config: &OperatorConfig,
    metrics: &Arc<Metrics>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<(
    impl Future<Output = ()> + use<>,
    impl Future<Output = ()> + use<>,
    impl Future<Output = ()> + use<>,
    impl Future<Output = ()> + use<>,
)> {
    let owned = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    // The client controller looks at its output Secret's version and target FhirResourceApp on every
    // reconcile: its watches of them feed reflector stores, so those reads cost no API calls. The
    // stores keep one copy per client for the life of the process: `lean` keeps them small, and the
    // Secrets' store keeps metadata only (no credential held in memory; a full reconcile reads the
    // Secret live).
    let (secrets_cache, secrets_writer) = reflector::store::<PartialObjectMeta<Secret>>();
    let output_secrets = watcher(
        api_for::<PartialObjectMeta<Secret>>(client, config),
        owned.clone(),
    )
    .modify(lean)
    .reflect(secrets_writer)
    .touched_objects();
    let (resource_apps_cache, resource_apps_writer) = reflector::store::<FhirResourceApp>();
    let resource_apps = watcher(
        api_for::<FhirResourceApp>(client, config),
        watcher::Config::default(),
    )
    .modify(lean)
    .reflect(resource_apps_writer)
    .touched_objects();
    // What `Controller::new` builds, with `lean` before the store.
    let (store, clients_writer) = reflector::store::<FhirClientApp>();
    let client_events = watcher(
        api_for::<FhirClientApp>(client, config),
        watcher::Config::default(),
    )
    .modify(lean)
    .reflect(clients_writer)
    .applied_objects();
    let clients = Controller::for_stream(client_events, store.clone());
    // The delta watcher's reconcile triggers (controller::drift): an entry for an object a resource
    // owns sends that resource to its controller.
    let (client_triggers, client_drift) = futures::channel::mpsc::unbounded();
    let (resource_triggers, resource_drift) = futures::channel::mpsc::unbounded();
    let ctx = Arc::new(
        Context::new(client.clone(), config.clone(), metrics.clone())
            .map_err(|e| anyhow::anyhow!(e))?
            .with_caches(Caches {
                secrets: Some(secrets_cache),
                resource_apps: Some(resource_apps_cache),
                client_apps: Some(store.clone()),
            })
            .with_drift_triggers(drift::Triggers {
                clients: client_triggers,
                resources: resource_triggers,
            }),
    );
    let cfg = controller::Config::default().concurrency(config.concurrency);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Both controllers start once the own tenant's first delta round has ended (see
    // `Drift::own_tenant_first_round`), at most one Graph call's timeout later.
    let first_round = |ctx: Arc<Context>| async move {
        ctx.drift.own_tenant_first_round(FIRST_ROUND_WAIT).await;
    };
    let resources = Controller::new(
        api_for::<FhirResourceApp>(client, config),
        watcher::Config::default(),
    )
    .owns(api_for::<ConfigMap>(client, config), owned.clone())
    .owns(api_for::<Secret>(client, config), owned.clone())
    .reconcile_on(resource_drift)
    .trigger_backoff(watch_backoff())
    .with_config(cfg.clone())
    .graceful_shutdown_on(stopped(stop.clone()))
    .run(
        resource_app::reconcile,
        resource_app::error_policy,
        ctx.clone(),
    )
    .for_each(|_| futures::future::ready(()));
    let clients = clients
        .owns_stream(output_secrets)
        .watches_stream(resource_apps, move |ra: FhirResourceApp| {
            clients_of(&store, &ra)
        })
        .reconcile_on(client_drift)
        .trigger_backoff(watch_backoff())
        .with_config(cfg)
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(client_app::reconcile, client_app::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let (resources, clients) = (
        first_round(ctx.clone()).then(|()| resources),
        first_round(ctx.clone()).then(|()| clients),
    );
    let drift = drift::run(ctx.clone(), stop.clone());
    let holds = holds(client, config, ctx, stop);
    Ok((resources, clients, holds, drift))
}

/// The hold on tenant credentials Secrets (`controller::credentials_hold`): only Secrets it labelled
/// are watched; a FhirResourceApp or FhirClientApp that changes or goes re-checks the Secret it uses.
fn holds(
    client: &Client,
    config: &OperatorConfig,
    ctx: Arc<Context>,
    stop: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + use<> {
    let held = watcher::Config::default().labels(credentials_hold::HOLD_SELECTOR);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    Controller::new(api_for::<Secret>(client, config), held)
        .watches(
            api_for::<FhirResourceApp>(client, config),
            watcher::Config::default(),
            |ra| credentials_hold::secret_ref_of(ra.namespace(), ra.spec.tenant.as_ref()),
        )
        .watches(
            api_for::<FhirClientApp>(client, config),
            watcher::Config::default(),
            |c| credentials_hold::secret_ref_of(c.namespace(), c.spec.tenant.as_ref()),
        )
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            credentials_hold::reconcile,
            credentials_hold::error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
}

/// The clients (from the controller's store) that target FhirResourceApp `ra`, or name it as their
/// managed service's audience.
fn clients_of(
    store: &reflector::Store<FhirClientApp>,
    ra: &FhirResourceApp,
) -> Vec<ObjectRef<FhirClientApp>> {
    let (ns, name) = (ra.namespace(), ra.name_any());
    store
        .state()
        .into_iter()
        .filter(|c| {
            crate::controller::client_app::target::resource_app_of(c)
                .is_some_and(|(rns, rname)| rname == name && Some(rns.as_str()) == ns.as_deref())
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Stops the HTTP server when the operator returns (or its task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn api_for<K>(client: &Client, config: &OperatorConfig) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match &config.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Waits until this replica holds the Lease. Leader election is hand-written (take, renew, release
/// a `coordination.k8s.io` Lease): the maintained crate for it, kube-leader-election 0.44, depends on
/// kube 4, and this operator is on kube 5.
async fn acquire_lease(client: &Client, config: &OperatorConfig) -> anyhow::Result<()> {
    loop {
        match try_lease(client, config).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election"),
        }
        tokio::time::sleep(LEASE_RENEW).await;
    }
}

/// Takes or renews the Lease; `false` when another live holder has it.
async fn try_lease(client: &Client, config: &OperatorConfig) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.lease_namespace);
    let now = jiff::Timestamp::now();
    let mut lease = match api.get_opt(&config.lease_name).await? {
        Some(l) => l,
        None => {
            let l: Lease = serde_json::from_value(serde_json::json!({
                "metadata": {"name": config.lease_name, "namespace": config.lease_namespace},
                "spec": {"holderIdentity": config.identity, "leaseDurationSeconds": LEASE_DURATION.as_secs(),
                         "acquireTime": now.to_string(), "renewTime": now.to_string(), "leaseTransitions": 0}
            }))
            .expect("valid lease");
            return match api.create(&PostParams::default(), &l).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let expired = spec.renew_time.as_ref().is_none_or(|t| {
        let dur = spec
            .lease_duration_seconds
            .unwrap_or(LEASE_DURATION.as_secs() as i32);
        t.0.checked_add(jiff::SignedDuration::from_secs(i64::from(dur)))
            .is_ok_and(|end| end < now)
    });
    if holder != config.identity && !holder.is_empty() && !expired {
        return Ok(false);
    }
    if holder != config.identity {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
    spec.renew_time = Some(MicroTime(now));
    match api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release_lease(client: &Client, config: &OperatorConfig) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.lease_namespace);
    if let Ok(Some(mut l)) = api.get_opt(&config.lease_name).await
        && let Some(spec) = l
            .spec
            .as_mut()
            .filter(|s| s.holder_identity.as_deref() == Some(config.identity.as_str()))
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        let _ = api
            .replace(&config.lease_name, &PostParams::default(), &l)
            .await;
    }
}

/// `/healthz`, `/livez`, `/readyz` and `/metrics`, served by axum; what each answers is [`route`].
async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (metrics, ready) = (metrics.clone(), ready.clone());
        async move {
            let (code, ctype, body) = route(uri.path(), &metrics, ready.load(Ordering::SeqCst));
            let status = axum::http::StatusCode::from_u16(code).unwrap_or_default();
            (status, [(axum::http::header::CONTENT_TYPE, ctype)], body)
        }
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the health/metrics endpoint stopped");
    }
}

/// What the endpoint answers for `path`: (status, content type, body).
fn route(path: &str, metrics: &Metrics, ready: bool) -> (u16, &'static str, String) {
    match path {
        "/healthz" | "/livez" => (200, "text/plain", "ok\n".into()),
        "/readyz" if ready => (200, "text/plain", "ok\n".into()),
        "/readyz" => (503, "text/plain", "not ready\n".into()),
        "/metrics" => (
            200,
            "text/plain; version=0.0.4",
            metrics.render(jiff::Timestamp::now().as_second()),
        ),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::default();
        m.graph_call("token", 200);
        assert_eq!(route("/healthz", &m, false).0, 200);
        assert_eq!(route("/readyz", &m, false).0, 503);
        assert_eq!(route("/readyz", &m, true).0, 200);
        assert!(
            route("/metrics", &m, true)
                .2
                .contains("fhir_operator_graph_calls_total")
        );
        assert_eq!(route("/nope", &m, true).0, 404);
    }
}
