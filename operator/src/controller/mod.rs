//! Reconcilers: a thin layer that reads, calls the pure builders and applies the result.

pub mod application;
pub mod client_app;
pub mod resource_app;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KEvent, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use crate::api::{AppStatus, FhirResourceApp, TenantSpec};
use crate::build::client::UnknownEntitlement;
use crate::build::conditions::{Phase, conditions};
use crate::build::naming::MANAGED_BY_LABEL;
use crate::config::OperatorConfig;
use crate::graph::{
    Credential, GraphClient, GraphError,
    ratelimit::{Limit, RateLimiter},
};
use crate::metrics::Metrics;

/// Field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "fhirapps.io/operator";
/// Finalizer on both kinds.
pub const FINALIZER: &str = "fhirapps.io/cleanup";

/// Reconcile errors. `category()` is stable (logs, metrics, events, condition reasons).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "Microsoft Graph refused to {action}: {message} Grant the operator's application the Microsoft Graph application permission {permission} (with admin consent), or turn the option off."
    )]
    PermissionDenied {
        action: &'static str,
        permission: &'static str,
        message: String,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("tenant credentials: {0}")]
    TenantCredentials(String),
    #[error(
        "application with uniqueName {unique_name} exists but was not created by this operator for this resource; set spec.adopt: true to take it over"
    )]
    NotOwned { unique_name: String },
    #[error(transparent)]
    UnknownEntitlement(#[from] UnknownEntitlement),
    #[error("operator configuration: {0}")]
    MissingConfig(String),
    #[error("client certificate: {0}")]
    Certificate(String),
    #[error("tenant mismatch: {0}")]
    TenantMismatch(String),
    #[error(
        "the managed FHIR service's first-party application \"Azure Healthcare APIs\" (appId {app_id}) has no service principal in tenant {tenant}, so Entra ID cannot issue tokens for it there; create it once with `az ad sp create --id {app_id}` (a Cloud Application Administrator can), and this client is registered at the next retry",
        app_id = crate::build::client::MANAGED_FHIR_APP_ID
    )]
    ManagedServicePrincipalMissing { tenant: String },
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Self::Graph(e) => e.category(),
            Self::PermissionDenied { .. } => "PermissionDenied",
            Self::Kube(_) => "KubeApi",
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.category(),
                _ => "Finalizer",
            },
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::TenantCredentials(_) => "TenantCredentials",
            Self::NotOwned { .. } => "NotOwned",
            Self::UnknownEntitlement(_) => "UnknownEntitlement",
            Self::MissingConfig(_) => "MissingConfig",
            Self::TenantMismatch(_) => "TenantMismatch",
            Self::Certificate(_) => "Certificate",
            Self::ManagedServicePrincipalMissing { .. } => "ManagedServicePrincipalMissing",
        }
    }

    /// Needs a human: reported as Stalled, retried slowly.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Graph(e) => e.is_permanent(),
            Self::PermissionDenied { .. }
            | Self::InvalidSpec(_)
            | Self::TenantCredentials(_)
            | Self::NotOwned { .. }
            | Self::UnknownEntitlement(_)
            | Self::MissingConfig(_)
            | Self::TenantMismatch(_)
            | Self::ManagedServicePrincipalMissing { .. } => true,
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_permanent(),
                _ => false,
            },
            Self::Kube(_) | Self::Certificate(_) => false,
        }
    }

    /// How soon to retry, when the error says so.
    fn retry_after(&self) -> Option<Duration> {
        use kube::runtime::finalizer::Error as F;
        match self {
            Self::Graph(e) => e.retry_after(),
            Self::Finalizer(e) => match e.as_ref() {
                // Graph's Retry-After, from inside the finalizer wrapper every reconcile error has.
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.retry_after(),
                // The finalizer patch's `test` failed (422 without causes; an admission policy's
                // refusal names one): our cached copy predates a change, most often our own
                // finalizer write, that the watch delivers within moments.
                F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s))
                    if s.code == 422 && s.details.as_ref().is_none_or(|d| d.causes.is_empty()) =>
                {
                    Some(Duration::from_secs(1))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Maps a 403 from one step to an error naming the permission that step needs.
pub fn needs(action: &'static str, permission: &'static str) -> impl FnOnce(GraphError) -> Error {
    move |e| match e {
        GraphError::PermissionDenied { message, .. } => Error::PermissionDenied {
            action,
            permission,
            message,
        },
        e => Error::Graph(e),
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    http: reqwest::Client,
    limiter: Arc<RateLimiter>,
    default_graph: GraphClient,
    tenant_graphs: Mutex<HashMap<(String, String, String), GraphClient>>,
    /// `issuer` and `jwks_uri` from each authority's OpenID discovery document.
    discovered: Mutex<HashMap<String, (String, String)>>,
    /// Fingerprint of each object's last successful reconcile and until when it stays valid: a watch
    /// event caused by the operator's own writes (status, Secret) then costs no Graph calls.
    recent: std::sync::Mutex<HashMap<String, (String, std::time::Instant, String)>>,
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
        let url = format!(
            "{}/.well-known/openid-configuration",
            authority.trim_end_matches('/')
        );
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
            recent: std::sync::Mutex::new(HashMap::new()),
            caches: Caches::default(),
            secret_versions: std::sync::Mutex::new(HashMap::new()),
        })
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
            return Ok(GraphClient::new(
                self.http.clone(),
                self.config.endpoints(),
                tenant_id,
                self.config.credential.clone(),
                self.limiter.clone(),
                self.metrics.clone(),
            ));
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = secrets.get_opt(&secret_ref.name).await?.ok_or_else(|| {
            Error::TenantCredentials(format!(
                "Secret {namespace}/{} (spec.tenant.credentialsSecretRef) not found",
                secret_ref.name
            ))
        })?;
        let key = (
            namespace.to_string(),
            secret_ref.name.clone(),
            s.resource_version().unwrap_or_default(),
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
                .ok_or_else(|| {
                    Error::TenantCredentials(format!(
                        "Secret {namespace}/{} has no key {k}",
                        secret_ref.name
                    ))
                })
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
        self.tenant_graphs.lock().await.insert(key, g.clone());
        Ok(g)
    }

    /// Time left before `key` needs a full reconcile again and that reconcile's Ready message, if its
    /// last one had fingerprint `fp`.
    pub fn fresh(&self, key: &str, fp: &str) -> Option<(Duration, String)> {
        let now = std::time::Instant::now();
        let m = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(f, until, _)| f == fp && now < *until)
            .map(|(_, until, msg)| (*until - now, msg.clone()))
    }

    /// Records a successful full reconcile of `key`.
    pub fn remember(&self, key: &str, fp: String, valid: Duration, message: String) {
        let until = std::time::Instant::now() + valid;
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (fp, until, message));
    }

    /// Forces the next reconcile of `key` to be a full one.
    pub fn forget(&self, key: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Publishes an Event; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let ev = KEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "failed to publish event");
        }
    }
}

/// Whether a FhirResourceApp is registered and Ready for its generation (clients can target it).
pub fn resource_app_is_ready(ra: &FhirResourceApp) -> bool {
    ra.status.as_ref().is_some_and(|st| {
        st.client_id.is_some()
            && st.audience.is_some()
            && crate::build::conditions::is_ready(&st.conditions, ra.metadata.generation)
    })
}

/// Labels on every object the operator writes.
pub fn managed_labels(owner_kind: &str, owner_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            MANAGED_BY_LABEL.0.to_string(),
            MANAGED_BY_LABEL.1.to_string(),
        ),
        ("fhirapps.io/owner-kind".to_string(), owner_kind.to_string()),
        ("fhirapps.io/owner-name".to_string(), owner_name.to_string()),
    ])
}

/// Server-side applies a Secret, unless `current` (the Secret as last read) already holds exactly
/// this: most resyncs change nothing, and an apply would still be an API call. Returns the
/// resourceVersion the Secret has afterwards.
pub async fn apply_secret(
    client: &Client,
    current: Option<&Secret>,
    desired: DesiredSecret<'_>,
) -> Result<Option<String>, Error> {
    if let Some(cur) = current
        && secret_is_current(cur, &desired)
    {
        return Ok(cur.metadata.resource_version.clone());
    }
    let DesiredSecret {
        namespace: ns,
        name,
        owner,
        labels,
        annotations,
        data,
    } = desired;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let data: BTreeMap<&String, ByteString> = data
        .iter()
        .map(|(k, v)| (k, ByteString(v.clone().into_bytes())))
        .collect();
    let body = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": { "name": name, "namespace": ns, "labels": labels, "annotations": annotations, "ownerReferences": [owner] },
        "data": data,
    });
    let written = api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(written.metadata.resource_version)
}

/// An output Secret as the operator wants it.
pub struct DesiredSecret<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub owner: OwnerReference,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
}

/// Whether applying `desired` would change nothing in `current`: the same data, our labels and
/// annotations present with the same values, none of our annotations left over from an earlier
/// write (apply would remove them), and this resource as the controlling owner.
pub fn secret_is_current(current: &Secret, desired: &DesiredSecret<'_>) -> bool {
    let data_now: BTreeMap<&String, &[u8]> = current
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.as_slice()))
        .collect();
    let data_wanted: BTreeMap<&String, &[u8]> = desired
        .data
        .iter()
        .map(|(k, v)| (k, v.as_bytes()))
        .collect();
    let empty = BTreeMap::new();
    let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let labels = current.metadata.labels.as_ref().unwrap_or(&empty);
    let annotations = current.metadata.annotations.as_ref().unwrap_or(&empty);
    let stale_annotation = annotations
        .keys()
        .any(|k| k.starts_with(OPERATOR_ANNOTATION_PREFIX) && !desired.annotations.contains_key(k));
    let owned = current.metadata.owner_references.iter().flatten().any(|o| {
        o.uid == desired.owner.uid && o.controller == Some(true) && o.kind == desired.owner.kind
    });
    current.metadata.deletion_timestamp.is_none()
        && data_now == data_wanted
        && contains(labels, &desired.labels)
        && contains(annotations, &desired.annotations)
        && !stale_annotation
        && owned
}

/// Prefix of the annotations the operator writes on output Secrets.
pub const OPERATOR_ANNOTATION_PREFIX: &str = "fhirapps.io/";

/// Server-side applies a ConfigMap.
pub async fn apply_config_map(
    client: &Client,
    ns: &str,
    name: &str,
    owner: OwnerReference,
    labels: BTreeMap<String, String>,
    data: BTreeMap<String, String>,
) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner] },
        "data": data,
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Result of the Apply step before conditions are set.
pub enum Outcome {
    Ready {
        message: String,
        requeue: Duration,
    },
    Waiting {
        reason: String,
        message: String,
        requeue: Duration,
    },
}

/// Turns an apply result into conditions + status write + controller action (the only status writer).
pub async fn finish<K>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    old: Option<&AppStatus>,
    mut status: AppStatus,
    result: Result<Outcome, Error>,
) -> Result<kube::runtime::controller::Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use kube::runtime::controller::Action;
    let kind = K::kind(&()).to_string();
    let generation = obj.meta().generation;
    let (phase, out) = match result {
        Ok(Outcome::Ready { message, requeue }) => {
            (Phase::Ready { message }, Ok(Action::requeue(requeue)))
        }
        Ok(Outcome::Waiting {
            reason,
            message,
            requeue,
        }) => (
            Phase::Progressing { reason, message },
            Ok(Action::requeue(requeue)),
        ),
        Err(e) if e.is_permanent() => {
            let phase = Phase::Stalled {
                reason: e.category().to_string(),
                message: e.to_string(),
            };
            if old
                .and_then(|o| o.conditions.iter().find(|c| c.type_ == "Stalled"))
                .is_none_or(|c| c.status != "True" || c.message != e.to_string())
            {
                ctx.event(obj, true, e.category(), e.to_string()).await;
            }
            ctx.metrics.error(&kind, e.category());
            tracing::warn!(kind, name = %obj.meta().name.as_deref().unwrap_or_default(), category = e.category(), error = %e, "stalled");
            (phase, Ok(Action::requeue(ctx.config.stalled_retry)))
        }
        Err(e) => (
            Phase::Progressing {
                reason: e.category().to_string(),
                message: e.to_string(),
            },
            Err(e),
        ),
    };
    let key = format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    );
    let stalled_reason = match &phase {
        Phase::Stalled { reason, .. } => Some(reason.as_str()),
        _ => None,
    };
    ctx.metrics.set_stalled(&kind, &key, stalled_reason);
    let old_conds = old.map(|o| o.conditions.clone()).unwrap_or_default();
    status.conditions = conditions(&old_conds, &phase, generation, Time(jiff::Timestamp::now()));
    status.observed_generation = generation;
    if old != Some(&status) {
        let patch = json!({ "apiVersion": K::api_version(&()), "kind": kind, "status": status });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    out
}

/// Error policy shared by both controllers: back off, honour Retry-After.
/// Permanent errors (e.g. a cleanup that lacks a permission) wait `stalled_retry`, never a hot loop.
pub fn backoff(err: &Error, ctx: &Context, kind: &str) -> kube::runtime::controller::Action {
    ctx.metrics.error(kind, err.category());
    tracing::warn!(kind, category = err.category(), error = %err, "reconcile failed; will retry");
    let wait = if err.is_permanent() {
        ctx.config.stalled_retry
    } else {
        err.retry_after().unwrap_or(Duration::from_secs(10))
    };
    kube::runtime::controller::Action::requeue(wait.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_honour_graphs_retry_after_and_a_stale_finalizer_patch_retries_soon() {
        use kube::runtime::finalizer::Error as F;
        let throttled = || {
            Error::Graph(GraphError::Throttled {
                retry_after: Some(Duration::from_secs(42)),
            })
        };
        let wrapped = Error::Finalizer(Box::new(F::ApplyFailed(throttled())));
        assert_eq!(wrapped.retry_after(), Some(Duration::from_secs(42)));
        let cleanup = Error::Finalizer(Box::new(F::CleanupFailed(throttled())));
        assert_eq!(cleanup.retry_after(), Some(Duration::from_secs(42)));
        let status = |code, causes: serde_json::Value| {
            kube::Error::Api(Box::new(
                serde_json::from_value(
                    json!({"status": "Failure", "code": code, "reason": "Invalid",
                    "message": "test failed", "details": {"causes": causes}}),
                )
                .unwrap(),
            ))
        };
        let stale = Error::Finalizer(Box::new(F::AddFinalizer(status(422, json!([])))));
        assert_eq!(stale.retry_after(), Some(Duration::from_secs(1)));
        let forbidden = Error::Finalizer(Box::new(F::AddFinalizer(status(403, json!([])))));
        assert_eq!(forbidden.retry_after(), None);
        // An admission policy refusing the patch is not a stale copy: no fast retry.
        let denied = status(422, json!([{"message": "denied request"}]));
        let refused = Error::Finalizer(Box::new(F::RemoveFinalizer(denied)));
        assert_eq!(refused.retry_after(), None);
        let other = Error::InvalidSpec("x".into());
        assert_eq!(other.retry_after(), None);
    }

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "fhirapps.io/v1alpha1".into(),
            kind: "FhirClientApp".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn desired() -> DesiredSecret<'static> {
        DesiredSecret {
            namespace: "ns",
            name: "web-credentials",
            owner: owner("u1"),
            labels: managed_labels("FhirClientApp", "web"),
            annotations: BTreeMap::from([("fhirapps.io/key-id".into(), "k1".into())]),
            data: BTreeMap::from([("AZURE_CLIENT_ID".into(), "app".into())]),
        }
    }

    /// The Secret as the API server returns it after applying `desired()` (plus what others add).
    fn as_written() -> Secret {
        let d = desired();
        let mut labels = d.labels.clone();
        labels.insert("team".into(), "blue".into());
        let mut annotations = d.annotations.clone();
        annotations.insert("argocd.argoproj.io/compare-options".into(), "x".into());
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(d.name.into()),
                namespace: Some(d.namespace.into()),
                resource_version: Some("42".into()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![d.owner.clone()]),
                ..Default::default()
            },
            data: Some(
                d.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                    .collect(),
            ),
            type_: Some("Opaque".into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_unchanged_secret_needs_no_write_even_with_others_labels_and_annotations() {
        assert!(secret_is_current(&as_written(), &desired()));
    }

    #[test]
    fn any_difference_that_apply_would_fix_needs_a_write() {
        let d = desired();
        let mut s = as_written();
        s.data
            .as_mut()
            .unwrap()
            .insert("AZURE_CLIENT_ID".into(), ByteString(b"edited".to_vec()));
        assert!(!secret_is_current(&s, &d), "edited value");

        let mut s = as_written();
        s.data.as_mut().unwrap().remove("AZURE_CLIENT_ID");
        assert!(!secret_is_current(&s, &d), "deleted key");

        let mut s = as_written();
        s.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("fhirapps.io/previous-key-id".into(), "k0".into());
        assert!(
            !secret_is_current(&s, &d),
            "an annotation of ours the new write drops"
        );

        let mut s = as_written();
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("fhirapps.io/owner-name");
        assert!(!secret_is_current(&s, &d), "label removed");

        let mut s = as_written();
        s.metadata.owner_references = Some(vec![owner("another-uid")]);
        assert!(
            !secret_is_current(&s, &d),
            "owned by a previous object of that name"
        );

        let mut s = as_written();
        s.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert!(!secret_is_current(&s, &d), "being deleted");
    }
}
