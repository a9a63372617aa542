//! ARM errors, from ARM's envelope `{"error": {"code", "message"}}`.

use std::time::Duration;

use crate::graph::GraphError;
use crate::graph::error::parse_retry_after;
use crate::http::{RetryPolicy, ServiceError, TransportError};
use crate::metrics::Metrics;

/// A failed ARM call. `category()` is stable (logs, metrics, condition reasons).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArmError {
    /// 400 PrincipalNotFound: ARM's directory replica does not show the service principal yet.
    #[error(
        "Azure Resource Manager does not see the service principal yet (replication from Entra ID): {message}"
    )]
    PrincipalNotFound { message: String },
    /// 409 RoleAssignmentExists.
    #[error("role assignment exists under another name: {message}")]
    Exists { message: String },
    /// 403 AuthorizationFailed (or LinkedAuthorizationFailed).
    #[error("{message}")]
    AuthorizationFailed { code: String, message: String },
    #[error("not found ({code}): {message}")]
    NotFound { code: String, message: String },
    /// 401: the token was refused (expired, revoked): fetched again once.
    #[error("Azure Resource Manager refused the token ({code}): {message}")]
    TokenRejected { code: String, message: String },
    #[error("Azure Resource Manager throttled the call (retry after {retry_after:?})")]
    Throttled { retry_after: Option<Duration> },
    #[error("Azure Resource Manager is unavailable (HTTP {status}): {message}")]
    Transient {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("Azure Resource Manager refused the request ({code}): {message}")]
    BadRequest { code: String, message: String },
    /// No token for ARM's audience.
    #[error("token for Azure Resource Manager: {0}")]
    Token(GraphError),
    /// The connection failed after it was made (timeout, dropped): the message names the host.
    #[error("HTTP transport error: {0}")]
    Transport(String),
    /// No connection to ARM (DNS, refused, TLS, connect timeout): the message names the host, the
    /// cause and the setting to check.
    #[error("{0}")]
    Unreachable(String),
    #[error("unexpected response from Azure Resource Manager: {0}")]
    Decode(String),
}

impl ArmError {
    pub fn category(&self) -> &'static str {
        match self {
            Self::PrincipalNotFound { .. } => "PrincipalNotFound",
            Self::Exists { .. } => "Conflict",
            Self::AuthorizationFailed { .. } => "RoleAssignmentPermissionMissing",
            Self::NotFound { .. } => "NotFound",
            Self::TokenRejected { .. } => "AuthFailed",
            Self::Throttled { .. } => "Throttled",
            Self::Transient { .. } => "Transient",
            Self::BadRequest { .. } => "BadRequest",
            Self::Token(e) => e.category(),
            Self::Transport(_) => "Transport",
            Self::Unreachable(_) => "Unreachable",
            Self::Decode(_) => "Decode",
        }
    }

    /// Needs a human; retrying soon will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::AuthorizationFailed { .. } | Self::BadRequest { .. } => true,
            Self::Token(e) => e.is_permanent(),
            _ => false,
        }
    }

    pub(crate) fn is_retried_in_call(&self) -> bool {
        matches!(
            self,
            Self::PrincipalNotFound { .. }
                | Self::Throttled { .. }
                | Self::Transient { .. }
                | Self::Transport(_)
                | Self::Unreachable(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<TransportError> for ArmError {
    fn from(e: TransportError) -> Self {
        e.into_error(ArmError::Unreachable, ArmError::Transport)
    }
}

/// ARM's rules for the HTTP layer: errors from its envelope, its metric, and the errors a call
/// waits out (throttling, 5xx, no connection, and a principal ARM does not see yet).
impl ServiceError for ArmError {
    type Class = ();
    const SERVICE: &'static str = "Azure Resource Manager";
    const SETTING: &'static str = "FHIR_OP_ARM_URL";

    fn count(metrics: &Metrics, op: &str, status: u16) {
        metrics.arm_call(op, status);
    }
    fn from_answer(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        classify(status, retry_after.and_then(parse_retry_after), body)
    }
    fn from_transport(e: TransportError) -> Self {
        e.into()
    }
    fn decode(message: String) -> Self {
        ArmError::Decode(message)
    }
    fn from_token(e: GraphError) -> Self {
        ArmError::Token(e)
    }
    fn is_stale_token(&self) -> bool {
        matches!(self, ArmError::TokenRejected { .. })
    }
    fn wait(&self, _: (), attempt: u32, retry: &RetryPolicy) -> Option<Duration> {
        self.is_retried_in_call()
            .then(|| self.retry_after().unwrap_or_else(|| retry.backoff(attempt)))
    }
    fn category(&self) -> &'static str {
        ArmError::category(self)
    }
}

/// An error response, by HTTP status and ARM's error code.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> ArmError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or_default().to_string();
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    match (status, code.as_str()) {
        (400, "PrincipalNotFound") => ArmError::PrincipalNotFound { message },
        (409, "RoleAssignmentExists") => ArmError::Exists { message },
        (403, _) => ArmError::AuthorizationFailed { code, message },
        (401, _) => ArmError::TokenRejected { code, message },
        (404, _) => ArmError::NotFound { code, message },
        (429, _) => ArmError::Throttled { retry_after },
        (500..=599, _) => ArmError::Transient {
            status,
            message,
            retry_after,
        },
        _ => ArmError::BadRequest { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_errors_classify() {
        // From Azure Service Operator's recording (Test_Authorization_RoleAssignment_OnResourceGroup_CRUD).
        let pnf = r#"{"error":{"code":"PrincipalNotFound","message":"Principal 2c1d2f7e21a04bb2b3b1b1a0ddd3e3a3 does not exist in the directory 00000000-0000-0000-0000-000000000000. Check that you have the correct principal ID."}}"#;
        assert!(matches!(
            classify(400, None, pnf),
            ArmError::PrincipalNotFound { .. }
        ));
        let nf = r#"{"error":{"code":"RoleAssignmentNotFound","message":"The role assignment 'x' is not found."}}"#;
        assert!(matches!(classify(404, None, nf), ArmError::NotFound { .. }));
        let exists = r#"{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists."}}"#;
        assert!(matches!(
            classify(409, None, exists),
            ArmError::Exists { .. }
        ));
        let denied = classify(
            403,
            None,
            r#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#,
        );
        assert!(denied.is_permanent());
        assert!(!classify(503, None, "").is_permanent());
        assert!(
            classify(
                400,
                None,
                r#"{"error":{"code":"RoleAssignmentUpdateNotPermitted","message":"m"}}"#
            )
            .is_permanent()
        );
    }
}
