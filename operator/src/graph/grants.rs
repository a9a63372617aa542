//! Delegated permission grants (admin consent for all principals) of a client service principal.

use reqwest::Method;
use serde_json::json;

use super::call::{Lag, odata_quote};
use super::client::GraphClient;
use super::error::GraphError;
use super::types::PermissionGrant;

impl GraphClient {
    /// Delegated grants of a client service principal.
    pub async fn list_grants(&self, client_sp: &str) -> Result<Vec<PermissionGrant>, GraphError> {
        let path = format!(
            "/oauth2PermissionGrants?$filter=clientId eq '{}'",
            odata_quote(client_sp)
        );
        self.list_all("listGrants", &path, Lag::NoRetry).await
    }

    /// Delegated grants on a resource service principal: admin consent and users' own consents of
    /// every client (Graph supports `$filter` on `resourceId` for oauth2PermissionGrants).
    pub async fn list_grants_on(
        &self,
        resource_sp: &str,
    ) -> Result<Vec<PermissionGrant>, GraphError> {
        let path = format!(
            "/oauth2PermissionGrants?$filter=resourceId eq '{}'",
            odata_quote(resource_sp)
        );
        self.list_all("listGrantsOnResource", &path, Lag::NoRetry)
            .await
    }

    pub async fn create_grant(
        &self,
        client_sp: &str,
        resource_sp: &str,
        scope: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"clientId": client_sp, "consentType": "AllPrincipals", "resourceId": resource_sp, "scope": scope});
        self.write(
            "createGrant",
            Method::POST,
            "/oauth2PermissionGrants",
            &body,
        )
        .await
    }

    pub async fn update_grant(&self, grant_id: &str, scope: &str) -> Result<(), GraphError> {
        self.write(
            "updateGrant",
            Method::PATCH,
            &format!("/oauth2PermissionGrants/{grant_id}"),
            &json!({"scope": scope}),
        )
        .await
    }

    pub async fn delete_grant(&self, grant_id: &str) -> Result<(), GraphError> {
        self.delete(
            "deleteGrant",
            &format!("/oauth2PermissionGrants/{grant_id}"),
        )
        .await
    }
}
