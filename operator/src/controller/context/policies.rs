//! The tenants' default app management policies, read once per tenant and credential and kept for
//! [`DEFAULT_POLICY_TTL`]: the policy changes rarely, and reading it on every reconcile would cost a
//! Graph call per resource per resync. A refusal that names a policy (Graph enforced one the cached
//! copy does not show) drops the copy ([`Context::forget_default_app_policy`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Context;
use crate::graph::{GraphClient, GraphError};

/// How long a default policy (or the answer that it may not be read) is used before it is read
/// again. An admin's change reaches new credentials within this time; a change Entra enforces
/// sooner is seen at once through its refusal.
pub const DEFAULT_POLICY_TTL: Duration = Duration::from_secs(300);

/// What reading a tenant's default app management policy gave.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyRead {
    /// The `tenantAppManagementPolicy` as Graph returned it.
    Read(Arc<Value>),
    /// The operator may not read it (403), or Graph does not serve it (404, 400): Graph's words,
    /// for the condition that says so. Entra still enforces what it cannot see.
    Unreadable(String),
}

/// The cache key: tenant and the client ID that signs in there (another credential in the same
/// tenant may hold other permissions).
fn key(graph: &GraphClient) -> (String, String) {
    (graph.tenant_id().to_string(), graph.client_id().to_string())
}

impl Context {
    /// The default app management policy of `graph`'s tenant, from the cache while it is fresh.
    /// Transient failures (throttling, 5xx, transport) are errors: the reconcile retries.
    pub async fn default_app_policy(&self, graph: &GraphClient) -> Result<PolicyRead, GraphError> {
        let k = key(graph);
        if let Some((at, read)) = self.default_policies.lock().await.get(&k)
            && at.elapsed() < DEFAULT_POLICY_TTL
        {
            return Ok(read.clone());
        }
        let read = match graph.default_app_management_policy().await {
            Ok(v) => PolicyRead::Read(Arc::new(v)),
            Err(
                GraphError::PermissionDenied { message, .. }
                | GraphError::NotFound { message, .. }
                | GraphError::BadRequest { message, .. },
            ) => PolicyRead::Unreadable(message),
            Err(e) => return Err(e),
        };
        self.default_policies
            .lock()
            .await
            .insert(k, (Instant::now(), read.clone()));
        Ok(read)
    }

    /// Drops the cached default policy of `graph`'s tenant: the next read goes to Graph.
    pub async fn forget_default_app_policy(&self, graph: &GraphClient) {
        self.default_policies.lock().await.remove(&key(graph));
    }
}
