//! The tenant's deleted items: a deleted application found by `uniqueName`, a deleted service
//! principal by `appId`, restore and purge (docs/entra-facts/lifecycle-and-policies.md §1).

use reqwest::Method;
use serde_json::Value;

use super::call::{Lag, empty_body, ignore_not_found, odata_quote};
use super::client::GraphClient;
use super::error::GraphError;
use super::types::{Application, ServicePrincipal};

const DELETED: &str = "/directory/deletedItems";

impl GraphClient {
    /// The deleted application holding `unique_name`, if any. Filtering deleted applications on
    /// `uniqueName` is not documented, so every deleted application is listed and compared here
    /// (facts §1.1).
    pub async fn find_deleted_application(
        &self,
        unique_name: &str,
    ) -> Result<Option<Application>, GraphError> {
        let apps = self.deleted_applications("uniqueName").await?;
        Ok(apps.into_iter().find(|a| {
            a.unique_name
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(unique_name))
        }))
    }

    /// The deleted application holding identifier URI `uri`, if any: a deleted application keeps its
    /// identifier URIs (facts §1.5), so a new one with the URI is refused.
    pub async fn find_deleted_application_with_identifier_uri(
        &self,
        uri: &str,
    ) -> Result<Option<Application>, GraphError> {
        let apps = self.deleted_applications("identifierUris").await?;
        let same = |u: &String| {
            u.trim_end_matches('/')
                .eq_ignore_ascii_case(uri.trim_end_matches('/'))
        };
        Ok(apps
            .into_iter()
            .find(|a| a.identifier_uris.iter().any(same)))
    }

    /// Every deleted application's id, appId, tags and `field` (`$top=999`, Graph's most per page).
    async fn deleted_applications(&self, field: &str) -> Result<Vec<Application>, GraphError> {
        let path =
            format!("{DELETED}/microsoft.graph.application?$select=id,appId,tags,{field}&$top=999");
        self.list_all("listDeletedApplications", &path, Lag::NoRetry)
            .await
    }

    /// The deleted service principal of `app_id`, if any (the filter Learn `restore-application`
    /// documents).
    pub async fn find_deleted_service_principal(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, GraphError> {
        let path = format!(
            "{DELETED}/microsoft.graph.servicePrincipal?$filter=appId eq '{}'&$select=id,appId,displayName",
            odata_quote(app_id)
        );
        let sps: Vec<ServicePrincipal> = self
            .list_all("listDeletedServicePrincipals", &path, Lag::NoRetry)
            .await?;
        Ok(sps.into_iter().next())
    }

    /// Restores a deleted application or service principal (no body); returns the object as Graph
    /// answers (200, the full object).
    pub async fn restore_deleted(&self, object_id: &str) -> Result<Value, GraphError> {
        let op = "restoreDeletedItem";
        let path = format!("{DELETED}/{object_id}/restore");
        self.send(op, Method::POST, &path, None, &[], Lag::NoRetry)
            .await?
            .ok_or_else(|| empty_body(op))
    }

    /// Deletes a deleted item for good (204); already gone is done.
    pub async fn purge_deleted(&self, object_id: &str) -> Result<(), GraphError> {
        let path = format!("{DELETED}/{object_id}");
        ignore_not_found(
            self.send(
                "purgeDeletedItem",
                Method::DELETE,
                &path,
                None,
                &[],
                Lag::Brief,
            )
            .await,
        )
    }

    /// The Graph URL of a deleted item, for the commands an error names.
    pub fn deleted_item_url(&self, object_id: &str) -> String {
        format!("{}{DELETED}/{object_id}", self.endpoints().graph_url)
    }
}
