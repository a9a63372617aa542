//! Service principals: read by `appId`, create (or find the existing one), delete, and whether
//! tokens for them need an app role assignment.

use reqwest::Method;
use serde_json::json;

use super::call::{Lag, empty_body, odata_quote};
use super::client::GraphClient;
use super::error::GraphError;
use super::types::{ServicePrincipal, parse_service_principal};

fn path_by_app_id(app_id: &str) -> String {
    format!("/servicePrincipals(appId='{}')", odata_quote(app_id))
}

impl GraphClient {
    pub async fn get_service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, GraphError> {
        let op = "getServicePrincipal";
        self.get_opt(op, &path_by_app_id(app_id), Lag::NoRetry)
            .await?
            .map(|v| parse_service_principal(op, v))
            .transpose()
    }

    /// Creates the service principal of an app (retrying replication lag); an existing one is returned.
    pub async fn ensure_service_principal(
        &self,
        app_id: &str,
    ) -> Result<ServicePrincipal, GraphError> {
        Ok(self.service_principal_for(app_id, false).await?.0)
    }

    /// The service principal of an app, created if missing, and whether this call created it. For an
    /// app created a moment ago (`app_is_new`) it cannot exist yet, so the lookup is skipped: one
    /// Graph round trip less per new client. A 409 (it did exist) falls back to reading it.
    pub async fn service_principal_for(
        &self,
        app_id: &str,
        app_is_new: bool,
    ) -> Result<(ServicePrincipal, bool), GraphError> {
        if !app_is_new && let Some(sp) = self.get_service_principal_by_app_id(app_id).await? {
            return Ok((sp, false));
        }
        let body = json!({"appId": app_id});
        match self
            .send(
                "createServicePrincipal",
                Method::POST,
                "/servicePrincipals",
                Some(&body),
                &[],
                Lag::Retry,
            )
            .await
        {
            Ok(Some(v)) => Ok((parse_service_principal("createServicePrincipal", v)?, true)),
            Ok(None) => Err(empty_body("createServicePrincipal")),
            Err(GraphError::Conflict { .. }) => {
                let op = "getServicePrincipal";
                let path = path_by_app_id(app_id);
                let sp = self
                    .send(op, Method::GET, &path, None, &[], Lag::Retry)
                    .await?;
                Ok((
                    parse_service_principal(op, sp.ok_or_else(|| empty_body(op))?)?,
                    false,
                ))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete_service_principal(&self, object_id: &str) -> Result<(), GraphError> {
        self.delete(
            "deleteServicePrincipal",
            &format!("/servicePrincipals/{object_id}"),
        )
        .await
    }

    /// Sets `appRoleAssignmentRequired` on a service principal.
    pub async fn set_assignment_required(
        &self,
        sp: &str,
        required: bool,
    ) -> Result<(), GraphError> {
        let body = json!({"appRoleAssignmentRequired": required});
        self.write(
            "patchServicePrincipal",
            Method::PATCH,
            &format!("/servicePrincipals/{sp}"),
            &body,
        )
        .await
    }
}
