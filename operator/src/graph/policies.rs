//! App management policies: the tenant's default policy and the policy assigned to an application
//! (docs/entra-facts/lifecycle-and-policies.md §3). Both are returned as Graph's JSON: what they mean
//! for a credential or an identifier URI is decided by pure functions (`desired::app_policy`), so
//! each reader takes the fields it needs.
//!
//! Permissions (Learn `tenantappmanagementpolicy-get`, `appmanagementpolicy-list`): reading needs
//! `Policy.Read.ApplicationConfiguration` or `Policy.Read.All`; without one Graph answers 403, which
//! the caller turns into "policy unreadable", not a failure.

use serde_json::Value;

use super::call::Lag;
use super::client::GraphClient;
use super::error::GraphError;

/// The tenant default policy's fixed path (Learn `tenantappmanagementpolicy-get`).
const DEFAULT_POLICY: &str = "/policies/defaultAppManagementPolicy";

impl GraphClient {
    /// `GET /policies/defaultAppManagementPolicy`: the tenant-wide `tenantAppManagementPolicy` (it
    /// always exists; `isEnabled` is false until an admin turns it on). A 403 is
    /// [`GraphError::PermissionDenied`].
    pub async fn default_app_management_policy(&self) -> Result<Value, GraphError> {
        let op = "getDefaultAppManagementPolicy";
        self.get_opt(op, DEFAULT_POLICY, Lag::NoRetry)
            .await?
            .ok_or_else(|| GraphError::NotFound {
                code: "Request_ResourceNotFound".into(),
                message: format!("{DEFAULT_POLICY} is absent"),
            })
    }

    /// `GET /applications/{id}/appManagementPolicies`: the custom `appManagementPolicy` objects
    /// assigned to application `app_object_id` (Graph allows one; an assigned policy replaces the
    /// tenant default for that application). Empty when none is assigned, and on a 404: an
    /// application created moments ago (replication lag) has no policy assigned yet, and one deleted
    /// out of band is the register step's business.
    pub async fn app_management_policies_of(
        &self,
        app_object_id: &str,
    ) -> Result<Vec<Value>, GraphError> {
        let path = format!("/applications/{app_object_id}/appManagementPolicies");
        let op = "listApplicationAppManagementPolicies";
        match self.list_all(op, &path, Lag::NoRetry).await {
            Err(GraphError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }
}
