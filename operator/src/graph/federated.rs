//! Federated identity credentials of an application (workload identity).

use reqwest::Method;
use serde_json::json;

use super::call::{Lag, odata_quote};
use super::client::GraphClient;
use super::error::GraphError;
use super::types::FederatedIdentityCredential;

impl GraphClient {
    /// Upserts a federated identity credential by name.
    pub async fn upsert_federated_credential(
        &self,
        object_id: &str,
        name: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"name": name, "issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"],
            "description": "Kubernetes workload identity (fhir-app-operator)"});
        let path = format!(
            "/applications/{object_id}/federatedIdentityCredentials(name='{}')",
            odata_quote(name)
        );
        self.send(
            "upsertFederatedCredential",
            Method::PATCH,
            &path,
            Some(&body),
            &[("Prefer", "create-if-missing")],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    pub async fn list_federated_credentials(
        &self,
        object_id: &str,
    ) -> Result<Vec<FederatedIdentityCredential>, GraphError> {
        self.list_all(
            "listFederatedCredentials",
            &format!("/applications/{object_id}/federatedIdentityCredentials"),
            Lag::Retry,
        )
        .await
    }
}
