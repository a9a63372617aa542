//! The reconcilers' shared state, by concept: this file holds the struct, its construction, the
//! reconcile memo and Events; [`tenants`] the Graph and ARM client for a resource's tenant;
//! [`reads`] what is read through the watch caches (resource apps, clients, output Secrets);
//! [`discovery`] what each authority's OpenID discovery document says; [`policies`] each tenant's
//! default app management policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::events::{Event as KEvent, EventType};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use tokio::sync::Mutex;

mod discovery;
mod events;
mod policies;
mod reads;
mod tenants;

pub use policies::{DEFAULT_POLICY_TTL, PolicyRead};

use super::drift::{Drift, Triggers};
use super::memo::Memo;
use super::{CONDITION_REASONS, EVENT_REASONS, Error};
use crate::api::{FhirClientApp, FhirResourceApp};
use crate::config::OperatorConfig;
use crate::graph::{
    GraphClient,
    ratelimit::{Limit, RateLimiter},
};
use crate::metrics::Metrics;

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub metrics: Arc<Metrics>,
    recorder: events::Events,
    http: reqwest::Client,
    limiter: Arc<RateLimiter>,
    default_graph: GraphClient,
    /// Graph clients for other tenants, by (namespace, credentials Secret, its resourceVersion), or
    /// ("", "", tenant) for the operator's own credentials there; each keeps its token.
    tenant_graphs: Mutex<HashMap<(String, String, String), GraphClient>>,
    /// Each tenant's default app management policy by (tenant, client ID), with when it was read
    /// (see [`policies`]).
    default_policies: Mutex<HashMap<(String, String), (std::time::Instant, PolicyRead)>>,
    /// `issuer` and `jwks_uri` from each authority's OpenID discovery document.
    discovered: Mutex<HashMap<String, (String, String)>>,
    /// What each object's last successful full reconcile saw (see [`Memo`]).
    recent: Memo,
    /// Watch caches of what the client controller reads on every reconcile; without them (tests that
    /// build a bare Context) every read goes to the API server.
    caches: Caches,
    /// The Graph delta watchers' index, health and triggers (see [`Drift`]).
    pub drift: Drift,
}

/// Reflector stores fed by the client controller's own watches (output Secrets are label-selected:
/// only the operator's).
#[derive(Clone, Default)]
pub struct Caches {
    /// Output Secrets, metadata only (see `Context::cached_secret`).
    pub secrets: Option<Store<PartialObjectMeta<Secret>>>,
    pub resource_apps: Option<Store<FhirResourceApp>>,
    /// The client controller's own store of FhirClientApps (the resource app's enforcement step
    /// finds the clients' service principals there).
    pub client_apps: Option<Store<FhirClientApp>>,
}

impl Context {
    pub fn new(
        client: Client,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        let ca = match &config.extra_ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| Error::MissingConfig(format!("reading {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let http =
            crate::graph::client::http_client_with_timeout(ca.as_deref(), config.graph_timeout)?;
        let limiter = Arc::new(RateLimiter::new(
            Limit {
                per_sec: config.graph_rate_per_sec,
                burst: config.graph_burst,
            },
            Limit {
                per_sec: config.graph_write_rate_per_sec,
                burst: config.graph_write_burst,
            },
        ));
        let default_graph = GraphClient::new(
            http.clone(),
            config.endpoints(),
            config.tenant_id.clone(),
            config.credential.clone(),
            limiter.clone(),
            metrics.clone(),
        );
        let recorder = events::Events::new(client.clone());
        let drift = Drift::new(&config);
        Ok(Self {
            client,
            config,
            metrics,
            recorder,
            http,
            limiter,
            default_graph,
            tenant_graphs: Mutex::new(HashMap::new()),
            default_policies: Mutex::new(HashMap::new()),
            discovered: Mutex::new(HashMap::new()),
            recent: Memo::default(),
            caches: Caches::default(),
            drift,
        })
    }

    /// Reads through these watch caches from now on.
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = caches;
        self
    }

    /// Delta entries trigger reconciles through these from now on (see [`Drift::with_triggers`]).
    pub fn with_drift_triggers(mut self, triggers: Triggers) -> Self {
        self.drift = self.drift.with_triggers(triggers);
        self
    }

    /// Time left before `key` needs a full reconcile again and that reconcile's Ready message, if its
    /// last one had fingerprint `fp`.
    pub fn fresh(&self, key: &str, fp: &str) -> Option<(Duration, String)> {
        self.recent.fresh(key, fp)
    }

    /// Records a successful full reconcile of `key`.
    pub fn remember(&self, key: &str, fp: String, valid: Duration, message: String) {
        self.recent.remember(key, fp, valid, message)
    }

    /// Forces the next reconcile of `key` to be a full one.
    pub fn forget(&self, key: &str) {
        self.recent.forget(key)
    }

    /// Publishes an Event; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        debug_assert!(
            EVENT_REASONS.contains(&reason) || CONDITION_REASONS.contains(&reason),
            "Event reason {reason} is not listed in EVENT_REASONS"
        );
        let ev = KEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            // events.k8s.io/v1 refuses a note over 1 kB.
            note: Some(super::shorten(&note, EVENT_NOTE_MAX)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = (self.recorder.recorder())
            .publish(&ev, &obj.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, reason, "failed to publish event");
        }
    }
}

/// Longest Event note the API server accepts (events.k8s.io/v1 `note`: at most 1 kB).
pub const EVENT_NOTE_MAX: usize = 1024;

/// Whether a FhirResourceApp is registered and Ready for its generation (clients can target it).
pub fn resource_app_is_ready(ra: &FhirResourceApp) -> bool {
    ra.status.as_ref().is_some_and(|st| {
        st.client_id.is_some()
            && st.audience.is_some()
            && crate::desired::conditions::is_ready(&st.conditions, ra.metadata.generation)
    })
}
