//! Applications: read by `uniqueName`, upsert, patch, delete, and their client secrets.

use reqwest::Method;
use serde_json::{Value, json};

use super::call::{Lag, decode, empty_body, ignore_not_found, odata_quote};
use super::client::GraphClient;
use super::error::GraphError;
use super::types::PasswordCredential;

fn path_by_unique_name(unique_name: &str) -> String {
    format!("/applications(uniqueName='{}')", odata_quote(unique_name))
}

impl GraphClient {
    /// Raw application JSON by `uniqueName`, `None` when absent.
    pub async fn get_application_by_unique_name(
        &self,
        unique_name: &str,
    ) -> Result<Option<Value>, GraphError> {
        self.get_opt(
            "getApplication",
            &path_by_unique_name(unique_name),
            Lag::NoRetry,
        )
        .await
    }

    /// Tags of the application (if any) that holds identifier URI `uri`, to name it in an error.
    pub async fn application_tags_with_identifier_uri(
        &self,
        uri: &str,
    ) -> Result<Option<Vec<String>>, GraphError> {
        let path = format!(
            "/applications?$filter=identifierUris/any(x:x eq '{}')&$select=id,tags",
            odata_quote(uri)
        );
        let v = self
            .send(
                "listApplications",
                Method::GET,
                &path,
                None,
                &[],
                Lag::NoRetry,
            )
            .await?
            .unwrap_or(json!({"value": []}));
        Ok(v["value"].as_array().and_then(|a| a.first()).map(|app| {
            app["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        }))
    }

    /// The application to delete by `uniqueName`, `None` when absent. A 404 is retried for a few
    /// seconds first: an application created moments ago (perhaps by a reconcile cut short) may not be
    /// readable yet (replication lag), and taking it as absent would leave it behind when its
    /// resource is deleted right after being created.
    pub async fn find_application_to_delete(
        &self,
        unique_name: &str,
    ) -> Result<Option<Value>, GraphError> {
        let path = path_by_unique_name(unique_name);
        self.get_opt("getApplication", &path, Lag::Brief).await
    }

    /// Upsert by `uniqueName` (`Prefer: create-if-missing`). Returns the application (201 body or a
    /// follow-up GET after 204) and whether it was created.
    pub async fn upsert_application(
        &self,
        unique_name: &str,
        body: &Value,
    ) -> Result<(Value, bool), GraphError> {
        let path = path_by_unique_name(unique_name);
        match self
            .send(
                "upsertApplication",
                Method::PATCH,
                &path,
                Some(body),
                &[("Prefer", "create-if-missing")],
                Lag::NoRetry,
            )
            .await?
        {
            Some(app) => Ok((app, true)),
            None => {
                let app = self
                    .send("getApplication", Method::GET, &path, None, &[], Lag::Retry)
                    .await?;
                Ok((app.ok_or_else(|| empty_body("getApplication"))?, false))
            }
        }
    }

    pub async fn patch_application(&self, object_id: &str, body: &Value) -> Result<(), GraphError> {
        self.write(
            "patchApplication",
            Method::PATCH,
            &format!("/applications/{object_id}"),
            body,
        )
        .await
    }

    pub async fn delete_application(&self, object_id: &str) -> Result<(), GraphError> {
        self.delete("deleteApplication", &format!("/applications/{object_id}"))
            .await
    }

    /// Adds a client secret. The returned credential holds `secretText` — never log it.
    pub async fn add_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: jiff::Timestamp,
    ) -> Result<PasswordCredential, GraphError> {
        let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end.to_string()}});
        let v = self
            .send(
                "addPassword",
                Method::POST,
                &format!("/applications/{object_id}/addPassword"),
                Some(&body),
                &[],
                Lag::Retry,
            )
            .await?;
        decode("addPassword", v.ok_or_else(|| empty_body("addPassword"))?)
    }

    pub async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), GraphError> {
        let body = json!({"keyId": key_id});
        ignore_not_found(
            self.send(
                "removePassword",
                Method::POST,
                &format!("/applications/{object_id}/removePassword"),
                Some(&body),
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }
}
