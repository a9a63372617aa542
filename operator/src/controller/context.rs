//! The reconcilers' shared state: the Kubernetes and Graph clients (one per tenant), the watch caches
//! they read through, what they discovered of each authority, and the reconcile memo.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::events::{Event as KEvent, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};
use tokio::sync::Mutex;

use super::memo::Memo;
use super::{CONDITION_REASONS, EVENT_REASONS, Error};
use crate::api::{FhirClientApp, FhirResourceApp, TenantSpec};
use crate::config::OperatorConfig;
use crate::graph::{
    Credential, GraphClient,
    ratelimit::{Limit, RateLimiter},
};
use crate::metrics::Metrics;

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    http: reqwest::Client,
    limiter: Arc<RateLimiter>,
    default_graph: GraphClient,
    /// Graph clients for other tenants, by (namespace, credentials Secret, its resourceVersion), or
    /// ("", "", tenant) for the operator's own credentials there; each keeps its token.
    tenant_graphs: Mutex<HashMap<(String, String, String), GraphClient>>,
    /// `issuer` and `jwks_uri` from each authority's OpenID discovery document.
    discovered: Mutex<HashMap<String, (String, String)>>,
    /// What each object's last successful full reconcile saw (see [`Memo`]).
    recent: Memo,
    /// Watch caches of what the client controller reads on every reconcile; without them (tests that
    /// build a bare Context) every read goes to the API server.
    caches: Caches,
    /// resourceVersion of each output Secret ("ns/name") as last written or read live: the cached
    /// copy is used for credential decisions only when it is at least that fresh.
    secret_versions: std::sync::Mutex<HashMap<String, String>>,
}

/// Reflector stores fed by the client controller's own watches (output Secrets are label-selected:
/// only the operator's).
#[derive(Clone, Default)]
pub struct Caches {
    pub secrets: Option<Store<Secret>>,
    pub resource_apps: Option<Store<FhirResourceApp>>,
    /// The client controller's own store of FhirClientApps (the resource app's enforcement step
    /// finds the clients' service principals there).
    pub client_apps: Option<Store<FhirClientApp>>,
}

impl Context {
    /// The issuer and JWKS URL that tokens of `authority` really carry, read from its OpenID discovery
    /// document (the same document the FHIR server reads), because the issuer cannot be derived from the
    /// host: v1 tokens say `https://sts.windows.net/{tid}/` on the public cloud, other clouds differ.
    /// `None` when the document cannot be read; callers then keep the derived values.
    pub async fn discover(&self, authority: &str) -> Option<(String, String)> {
        if let Some(found) = self.discovered.lock().await.get(authority) {
            return Some(found.clone());
        }
        let url = crate::url::join(authority, ".well-known/openid-configuration");
        let doc: serde_json::Value = match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => resp.json().await.ok()?,
            Ok(resp) => {
                tracing::warn!(%url, status = %resp.status(), "OpenID discovery document not available");
                return None;
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "OpenID discovery document not reachable");
                return None;
            }
        };
        let found = (
            doc.get("issuer")?.as_str()?.to_string(),
            doc.get("jwks_uri")?.as_str()?.to_string(),
        );
        self.discovered
            .lock()
            .await
            .insert(authority.to_string(), found.clone());
        Some(found)
    }

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
        let recorder = Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "fhir-app-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Ok(Self {
            client,
            config,
            metrics,
            recorder,
            http,
            limiter,
            default_graph,
            tenant_graphs: Mutex::new(HashMap::new()),
            discovered: Mutex::new(HashMap::new()),
            recent: Memo::default(),
            caches: Caches::default(),
            secret_versions: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The Azure Resource Manager client of `graph`'s tenant and credential (its token cache is
    /// `graph`'s, so clones share it).
    pub fn arm(&self, graph: &GraphClient) -> crate::arm::ArmClient {
        crate::arm::ArmClient::new(
            self.http.clone(),
            &self.config.arm_url,
            &self.config.arm_scope,
            graph.clone(),
            self.metrics.clone(),
        )
    }

    /// Reads through these watch caches from now on.
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = caches;
        self
    }

    /// A FhirResourceApp from the watch cache when the cached copy is Ready, else from the API
    /// server: the cache may not have synced yet, and a copy that is not Ready may be stale (the
    /// watch can be down for a while, e.g. after an API server restart), so a client waiting on it
    /// confirms with a live read.
    pub async fn resource_app(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<FhirResourceApp>, Error> {
        if let Some(found) = self
            .caches
            .resource_apps
            .as_ref()
            .and_then(|s| s.get(&ObjectRef::new(name).within(ns)))
            .filter(|ra| resource_app_is_ready(ra))
        {
            return Ok(Some(found.as_ref().clone()));
        }
        Ok(Api::<FhirResourceApp>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?)
    }

    /// Every FhirResourceApp the operator reconciles: from the watch cache, or listed live without it.
    pub async fn resource_apps(&self) -> Result<Vec<Arc<FhirResourceApp>>, Error> {
        self.all_of(self.caches.resource_apps.as_ref()).await
    }

    /// Every FhirClientApp the operator reconciles: from the client controller's store, or listed
    /// live without caches.
    pub async fn client_apps(&self) -> Result<Vec<Arc<FhirClientApp>>, Error> {
        self.all_of(self.caches.client_apps.as_ref()).await
    }

    async fn all_of<K>(&self, store: Option<&Store<K>>) -> Result<Vec<Arc<K>>, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        if let Some(store) = store {
            return Ok(store.state());
        }
        let api: Api<K> = match &self.config.watch_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let list = api.list(&Default::default()).await?;
        Ok(list.items.into_iter().map(Arc::new).collect())
    }

    /// The resourceVersion of an output Secret for the "nothing changed" check: from the watch cache
    /// (a cache lagging behind only costs one full reconcile), or live without a cache.
    pub async fn output_secret_version(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        if self.caches.secrets.is_some() {
            return Ok(self
                .cached_secret(ns, name)
                .and_then(|s| s.metadata.resource_version.clone()));
        }
        Ok(Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?
            .and_then(|s| s.metadata.resource_version))
    }

    /// An output Secret as the watch cache has it (no API call).
    pub fn cached_secret(&self, ns: &str, name: &str) -> Option<Arc<Secret>> {
        self.caches
            .secrets
            .as_ref()?
            .get(&ObjectRef::new(name).within(ns))
    }

    /// The output Secret for a reconcile that may issue or prune credentials: the cached copy when it
    /// is at least as new as what this operator last wrote or read (so a cache lagging behind our own
    /// write can never make it issue a second credential), else a live read.
    pub async fn current_secret(&self, ns: &str, name: &str) -> Result<Option<Secret>, Error> {
        let key = format!("{ns}/{name}");
        let known = self
            .secret_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let (Some(known), Some(cached)) = (known, self.cached_secret(ns, name))
            && cached.metadata.resource_version.as_deref() == Some(known.as_str())
        {
            return Ok(Some(cached.as_ref().clone()));
        }
        let live = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?;
        self.saw_secret(
            ns,
            name,
            live.as_ref()
                .and_then(|s| s.metadata.resource_version.clone()),
        );
        Ok(live)
    }

    /// Records the resourceVersion an output Secret has after our write or live read (`None`: gone).
    pub fn saw_secret(&self, ns: &str, name: &str, version: Option<String>) {
        let key = format!("{ns}/{name}");
        let mut m = self
            .secret_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match version {
            Some(v) => m.insert(key, v),
            None => m.remove(&key),
        };
    }

    /// The Graph client for a resource's tenant (the operator's own unless the spec names another).
    pub async fn graph_for(
        &self,
        namespace: &str,
        tenant: Option<&TenantSpec>,
    ) -> Result<GraphClient, Error> {
        let Some(t) = tenant else {
            return Ok(self.default_graph.clone());
        };
        let tenant_id = t
            .tenant_id
            .clone()
            .unwrap_or_else(|| self.config.tenant_id.clone());
        let Some(secret_ref) = &t.credentials_secret_ref else {
            if tenant_id == self.config.tenant_id {
                return Ok(self.default_graph.clone());
            }
            // The operator's own credentials in another tenant (a multi-tenant app): one client per
            // tenant, kept, so its token is reused instead of requested again on every reconcile.
            let key = (String::new(), String::new(), tenant_id.clone());
            let mut graphs = self.tenant_graphs.lock().await;
            let g = graphs.entry(key).or_insert_with(|| {
                GraphClient::new(
                    self.http.clone(),
                    self.config.endpoints(),
                    tenant_id,
                    self.config.credential.clone(),
                    self.limiter.clone(),
                    self.metrics.clone(),
                )
            });
            return Ok(g.clone());
        };
        // One message whatever is wrong with it: a reference must not tell which Secrets exist, and
        // the operator's own outputs (another client's credentials) are never tenant credentials.
        let unusable = || {
            Error::TenantCredentials(format!(
                "Secret {namespace}/{} (spec.tenant.credentialsSecretRef) is not usable: it must be a Secret you created (not one the operator writes) with keys AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                secret_ref.name
            ))
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = secrets
            .get_opt(&secret_ref.name)
            .await?
            .filter(|s| !super::outputs::is_operator_output(&s.metadata))
            .ok_or_else(unusable)?;
        // Held while in use, so that the applications can still be deleted after it (issue 23).
        let version = super::credentials_hold::hold(&self.client, &s).await;
        let key = (
            namespace.to_string(),
            secret_ref.name.clone(),
            version.unwrap_or_default(),
        );
        if let Some(g) = self.tenant_graphs.lock().await.get(&key) {
            return Ok(g.clone());
        }
        let get = |k: &str| -> Result<String, Error> {
            s.data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .filter(|v| !v.is_empty())
                .ok_or_else(unusable)
        };
        let cred = Credential::Secret {
            client_id: get("AZURE_CLIENT_ID")?,
            secret: get("AZURE_CLIENT_SECRET")?,
        };
        let g = GraphClient::new(
            self.http.clone(),
            self.config.endpoints(),
            tenant_id,
            cred,
            self.limiter.clone(),
            self.metrics.clone(),
        );
        let mut graphs = self.tenant_graphs.lock().await;
        // A client built from an older version of this Secret holds credentials that are gone.
        graphs.retain(|(ns, name, _), _| !(ns == namespace && *name == secret_ref.name));
        graphs.insert(key, g.clone());
        Ok(g)
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
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
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
