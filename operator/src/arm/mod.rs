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
use crate::http::{Caller, Request, RetryPolicy};
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
fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(500),
        max_backoff: Duration::from_secs(4),
    }
}

/// An ARM client of one tenant: the Graph client's credential and token cache, ARM's audience, and
/// the same per-tenant rate limit as Graph's calls.
#[derive(Clone)]
pub struct ArmClient {
    base: String,
    caller: Caller,
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
            base: crate::url::without_slash(base).to_string(),
            caller: credential
                .caller()
                .for_service(http, scope, retry(), metrics),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.caller = self.caller.with_retry(retry);
        self
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
        let req = Request {
            op,
            method,
            url,
            body,
            headers: &[],
        };
        self.caller.send::<ArmError>(&req, ()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::graph::ratelimit::{Limit, RateLimiter};
    use crate::graph::{Credential, Endpoints, http_client};
    use crate::http::fake::Fake;

    fn arm_client(entra: &str, arm: &str, limiter: Arc<RateLimiter>) -> ArmClient {
        let http = http_client(None).unwrap();
        let metrics = Arc::new(Metrics::default());
        let graph = GraphClient::new(
            http.clone(),
            Endpoints::new(&format!("{entra}/v1.0"), entra),
            "tenant-a".into(),
            Credential::Secret {
                client_id: "operator".into(),
                secret: "s".into(),
            },
            limiter,
            metrics.clone(),
        );
        ArmClient::new(http, arm, DEFAULT_ARM_SCOPE, graph, metrics)
    }

    fn generous() -> Arc<RateLimiter> {
        let l = Limit {
            per_sec: 1000.0,
            burst: 1000,
        };
        Arc::new(RateLimiter::new(l, l))
    }

    #[tokio::test]
    async fn an_arm_endpoint_nothing_listens_on_is_named_with_the_setting_that_chose_it() {
        let entra = Fake::start().await.base;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let arm = arm_client(&entra, &format!("http://127.0.0.1:{closed}"), generous()).with_retry(
            RetryPolicy {
                max_attempts: 2,
                base: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            },
        );
        let e = arm
            .list_for_principal("/subscriptions/s", "p")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot reach 127.0.0.1:{closed}: connection refused (is FHIR_OP_ARM_URL right?)"
            )
        );
        let e = crate::controller::Error::Arm(e);
        assert_eq!(e.category(), "Unreachable");
        assert!(
            !e.is_permanent(),
            "retried: the network or the setting may be fixed"
        );
    }

    #[tokio::test]
    async fn arm_calls_take_from_the_tenants_rate_limit_as_graph_calls_do() {
        let server = Fake::start().await.base;
        let one = Limit {
            per_sec: 0.01,
            burst: 1,
        };
        let limiter = Arc::new(RateLimiter::new(one, one));
        let arm = arm_client(&server, &server, limiter.clone());
        let found = arm
            .list_for_principal("/subscriptions/s", "p")
            .await
            .unwrap();
        assert!(found.is_empty());
        assert!(
            limiter.reserve("tenant-a", false, Instant::now()) > Duration::from_secs(50),
            "the ARM call took the tenant's only token"
        );
        assert_eq!(
            limiter.reserve("tenant-b", false, Instant::now()),
            Duration::ZERO,
            "per tenant"
        );
    }
}
