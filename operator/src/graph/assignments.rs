//! App role assignments, from the side of the principal that holds them and of the resource
//! service principal whose roles they are.

use reqwest::Method;
use serde_json::json;

use super::call::Lag;
use super::client::GraphClient;
use super::error::GraphError;
use super::types::AppRoleAssignment;

impl GraphClient {
    /// App role assignments held by a client service principal.
    pub async fn list_app_role_assignments(
        &self,
        client_sp: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.list_all(
            "listAppRoleAssignments",
            &format!("/servicePrincipals/{client_sp}/appRoleAssignments"),
            Lag::Retry,
        )
        .await
    }

    pub async fn assign_app_role(
        &self,
        client_sp: &str,
        resource_sp: &str,
        role_id: &str,
    ) -> Result<(), GraphError> {
        self.assign(client_sp, resource_sp, role_id, Lag::Retry)
            .await
    }

    /// Assigns a user or group (given by object ID in the spec) an app role of `resource_sp`. A 404
    /// is retried only briefly: it is far more often a wrong ID than a group created moments ago.
    pub async fn assign_app_role_to_principal(
        &self,
        principal: &str,
        resource_sp: &str,
        role_id: &str,
    ) -> Result<(), GraphError> {
        self.assign(principal, resource_sp, role_id, Lag::Brief)
            .await
    }

    async fn assign(
        &self,
        principal: &str,
        resource_sp: &str,
        role_id: &str,
        lag: Lag,
    ) -> Result<(), GraphError> {
        let body =
            json!({"principalId": principal, "resourceId": resource_sp, "appRoleId": role_id});
        match self
            .send(
                "assignAppRole",
                Method::POST,
                &format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo"),
                Some(&body),
                &[],
                lag,
            )
            .await
        {
            Ok(_) | Err(GraphError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn remove_app_role_assignment(
        &self,
        client_sp: &str,
        assignment_id: &str,
    ) -> Result<(), GraphError> {
        self.delete(
            "removeAppRoleAssignment",
            &format!("/servicePrincipals/{client_sp}/appRoleAssignments/{assignment_id}"),
        )
        .await
    }

    /// The principals (users, groups, service principals) assigned app roles of `resource_sp`.
    pub async fn list_assigned_to(
        &self,
        resource_sp: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.assigned_to(resource_sp, Lag::Retry).await
    }

    /// [`Self::list_assigned_to`] for a service principal known from an earlier reconcile: a 404
    /// means it is gone (nothing is held on it), answered at once instead of waited out as lag.
    pub async fn list_assigned_to_known(
        &self,
        resource_sp: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.assigned_to(resource_sp, Lag::NoRetry).await
    }

    async fn assigned_to(
        &self,
        resource_sp: &str,
        lag: Lag,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        let path = format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo");
        self.list_all("listAppRoleAssignedTo", &path, lag).await
    }

    /// Removes an assignment of `resource_sp`'s app role (to a user, group or service principal).
    pub async fn remove_assigned_to(
        &self,
        resource_sp: &str,
        assignment_id: &str,
    ) -> Result<(), GraphError> {
        self.delete(
            "removeAppRoleAssignedTo",
            &format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo/{assignment_id}"),
        )
        .await
    }
}
