//! The operator's Azure Resource Manager client, for one thing: role assignments
//! (`Microsoft.Authorization/roleAssignments`, api-version 2022-04-01) on the managed FHIR service.
//! Its token comes from the operator's Graph credential, asked for ARM's audience. No code or wire
//! types shared with the emulator.

mod error;

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

pub use error::ArmError;

use crate::graph::GraphClient;
use crate::metrics::Metrics;

/// ARM's endpoint in the public cloud.
pub const DEFAULT_ARM_URL: &str = "https://management.azure.com";
/// Token scope for ARM in the public cloud.
pub const DEFAULT_ARM_SCOPE: &str = "https://management.azure.com/.default";
const API_VERSION: &str = "2022-04-01";

/// A role assignment as ARM returns it (the fields the operator reads).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RoleAssignment {
    pub name: String,
    pub properties: Properties,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    pub role_definition_id: String,
    pub principal_id: String,
    #[serde(default)]
    pub scope: String,
}

/// What a PUT did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    /// 201 (new) or 200 (it existed under this name already).
    Done,
    /// 409 RoleAssignmentExists: the same principal, role and scope under another name.
    ExistsElsewhere,
}

/// Retries within one call: throttling, 5xx and dropped connections (waits of 1, 2, 4 s), and a
/// principal ARM does not see yet (replication lag from Entra ID, a few seconds to minutes): three
/// tries here, then the reconcile requeues.
const ATTEMPTS: u32 = 4;

/// An ARM client of one tenant: the Graph client's credential, another audience.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    base: String,
    scope: String,
    credential: GraphClient,
    metrics: std::sync::Arc<Metrics>,
    retry_base: Duration,
}

impl ArmClient {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        scope: &str,
        credential: GraphClient,
        metrics: std::sync::Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            base: crate::url::without_slash(base).to_string(),
            scope: scope.to_string(),
            credential,
            metrics,
            retry_base: Duration::from_secs(1),
        }
    }

    fn url(scope: &str, name: Option<&str>) -> String {
        let scope = scope.trim_end_matches('/');
        match name {
            Some(n) => format!(
                "{scope}/providers/Microsoft.Authorization/roleAssignments/{n}?api-version={API_VERSION}"
            ),
            None => format!(
                "{scope}/providers/Microsoft.Authorization/roleAssignments?api-version={API_VERSION}"
            ),
        }
    }

    /// The principal's role assignments visible at `scope` (at, above and below it).
    pub async fn list_for_principal(
        &self,
        scope: &str,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignment>, ArmError> {
        let filter = format!("principalId eq '{principal_id}'");
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base, Self::url(scope, None)))
            .map_err(|e| ArmError::Decode(format!("role assignment list URL: {e}")))?;
        url.query_pairs_mut().append_pair("$filter", &filter);
        let mut url = url.to_string();
        let mut out = vec![];
        loop {
            let page = self
                .send("listRoleAssignments", Method::GET, &url, None)
                .await?
                .unwrap_or_default();
            let items: Vec<RoleAssignment> =
                serde_json::from_value(page.get("value").cloned().unwrap_or(json!([])))
                    .map_err(|e| ArmError::Decode(format!("role assignment list: {e}")))?;
            out.extend(items);
            match page.get("nextLink").and_then(Value::as_str) {
                Some(next) if next.starts_with(&self.base) => url = next.to_string(),
                Some(other) => {
                    return Err(ArmError::Decode(format!(
                        "nextLink outside the ARM endpoint: {other}"
                    )));
                }
                None => return Ok(out),
            }
        }
    }

    /// PUT the assignment `name` of `role_definition_id` to the service principal `principal_id`.
    pub async fn put(
        &self,
        scope: &str,
        name: &str,
        role_definition_id: &str,
        principal_id: &str,
    ) -> Result<Put, ArmError> {
        // principalType lets ARM accept a principal its directory replica does not show yet (and
        // it defaults to User in this api-version).
        let body = json!({"properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
            "description": "Managed by fhir-app-operator",
        }});
        let url = format!("{}{}", self.base, Self::url(scope, Some(name)));
        match self
            .send("putRoleAssignment", Method::PUT, &url, Some(&body))
            .await
        {
            Ok(_) => Ok(Put::Done),
            Err(ArmError::Exists { .. }) => Ok(Put::ExistsElsewhere),
            Err(e) => Err(e),
        }
    }

    /// DELETE the assignment `name`: 200, 204 (already gone) and 404 all mean it is gone.
    pub async fn delete(&self, scope: &str, name: &str) -> Result<(), ArmError> {
        let url = format!("{}{}", self.base, Self::url(scope, Some(name)));
        match self
            .send("deleteRoleAssignment", Method::DELETE, &url, None)
            .await
        {
            Ok(_) | Err(ArmError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        op: &'static str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ArmError> {
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            let token = self
                .credential
                .token_for(&self.scope)
                .await
                .map_err(ArmError::Token)?;
            let mut req = self.http.request(method.clone(), url).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let err = match req.send().await {
                Err(e) => ArmError::Transport(e.without_url().to_string()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    self.metrics.arm_call(op, status);
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::graph::error::parse_retry_after);
                    let text = resp
                        .text()
                        .await
                        .map_err(|e| ArmError::Transport(e.without_url().to_string()))?;
                    if (200..300).contains(&status) {
                        if text.trim().is_empty() {
                            return Ok(None);
                        }
                        return serde_json::from_str(&text)
                            .map(Some)
                            .map_err(|e| ArmError::Decode(format!("{method} response: {e}")));
                    }
                    error::classify(status, retry_after, &text)
                }
            };
            attempt += 1;
            if matches!(err, ArmError::TokenRejected { .. }) && !reauthed {
                reauthed = true;
                self.credential.forget_token_for(&self.scope).await;
                continue;
            }
            if !err.is_retried_in_call() || attempt >= ATTEMPTS {
                return Err(err);
            }
            let wait = err
                .retry_after()
                .unwrap_or(self.retry_base * 2u32.pow(attempt - 1));
            tracing::debug!(%method, category = err.category(), attempt, wait_ms = wait.as_millis() as u64, "retrying ARM call");
            tokio::time::sleep(wait).await;
        }
    }
}
