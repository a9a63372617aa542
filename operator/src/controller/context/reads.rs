//! Reads through the watch caches (or live without them): FhirResourceApps, FhirClientApps and the
//! operator's output Secrets (metadata only: credential decisions read the Secret live).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};

use super::{Context, resource_app_is_ready};
use crate::api::{FhirClientApp, FhirResourceApp};
use crate::controller::Error;

impl Context {
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

    /// An output Secret's metadata as the watch cache has it (no API call). The cache keeps no
    /// data: the operator does not hold every client's credential in memory for its whole life, and
    /// the data was most of what a cached Secret cost.
    fn cached_secret(&self, ns: &str, name: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        self.caches
            .secrets
            .as_ref()?
            .get(&ObjectRef::new(name).within(ns))
    }

    /// The output Secret for a reconcile that may issue or prune credentials, read live: the
    /// credential decisions never stand on a cache that may lag behind the operator's own last
    /// write (which could make it issue a second credential). A full reconcile is rare (a change, a
    /// drift, a due credential, the safety-net re-read), so this costs one GET each.
    pub async fn current_secret(&self, ns: &str, name: &str) -> Result<Option<Secret>, Error> {
        Ok(Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?)
    }
}
