//! Graph and token-endpoint errors, parsed from their wire formats.

use std::time::Duration;

use serde_json::Value;

use crate::http::transport::TransportError;

/// A failed Graph or token call. `category()` is stable: it is used in logs, metrics and events.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    #[error("not found: {message}")]
    NotFound { code: String, message: String },
    #[error("throttled by Microsoft Graph (retry after {retry_after:?})")]
    Throttled { retry_after: Option<Duration> },
    #[error("permission denied: {message}")]
    PermissionDenied { code: String, message: String },
    #[error(
        "identifier URI is not on a verified domain of the tenant: {message}. Verify the domain in Entra ID, set spec.identifierUri to a URI on a verified domain, or use the literal 'api://{{appId}}'"
    )]
    HostNameNotOnVerifiedDomain { message: String },
    /// The tenant's app-management policy refuses a new identifier URI (Learn
    /// `identifier-uri-restrictions`, "Policy behavior": only the message is documented).
    #[error("identifier URI refused by the tenant's app-management policy ({code}): {message}")]
    IdentifierUriNotAllowedByPolicy { code: String, message: String },
    /// The directory's object quota is used up (`Directory_QuotaExceeded`; soft-deleted objects
    /// count for their 30 days): facts §2.
    #[error("the directory object quota is exceeded: {message}")]
    DirectoryQuotaExceeded { message: String },
    #[error("directory replication lag: {message}")]
    ReplicationLag { code: String, message: String },
    #[error("conflict: {message}")]
    Conflict { code: String, message: String },
    #[error("Graph is unavailable (HTTP {status}): {message}")]
    Transient {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("request refused ({code}): {message}")]
    BadRequest { code: String, message: String },
    #[error("authentication to Entra ID failed: {message}")]
    Auth {
        code: String,
        message: String,
        permanent: bool,
    },
    /// The connection failed after it was made (timeout, dropped): the message names the host.
    #[error("HTTP transport error: {0}")]
    Transport(String),
    /// No connection to Graph or the token endpoint (DNS, refused, TLS, connect timeout): the
    /// message names the host, the cause and the setting to check.
    #[error("{0}")]
    Unreachable(String),
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl GraphError {
    /// Stable, low-cardinality category.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::Throttled { .. } => "Throttled",
            Self::PermissionDenied { .. } => "PermissionDenied",
            Self::HostNameNotOnVerifiedDomain { .. } => "HostNameNotOnVerifiedDomain",
            Self::IdentifierUriNotAllowedByPolicy { .. } => "IdentifierUriNotAllowedByPolicy",
            Self::DirectoryQuotaExceeded { .. } => "DirectoryQuotaExceeded",
            Self::ReplicationLag { .. } => "ReplicationLag",
            Self::Conflict { .. } => "Conflict",
            Self::Transient { .. } => "Transient",
            Self::BadRequest { .. } => "BadRequest",
            Self::Auth { .. } => "AuthFailed",
            Self::Transport(_) => "Transport",
            Self::Unreachable(_) => "Unreachable",
            Self::Decode(_) => "Decode",
        }
    }

    /// Needs a human; retrying soon will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::PermissionDenied { .. }
            | Self::HostNameNotOnVerifiedDomain { .. }
            | Self::IdentifierUriNotAllowedByPolicy { .. }
            | Self::DirectoryQuotaExceeded { .. }
            | Self::BadRequest { .. } => true,
            Self::Auth { permanent, .. } => *permanent,
            _ => false,
        }
    }

    /// Server-suggested wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::NotFound { code, .. }
            | Self::PermissionDenied { code, .. }
            | Self::ReplicationLag { code, .. }
            | Self::Conflict { code, .. }
            | Self::Transient { code, .. }
            | Self::BadRequest { code, .. }
            | Self::IdentifierUriNotAllowedByPolicy { code, .. }
            | Self::Auth { code, .. } => code,
            Self::HostNameNotOnVerifiedDomain { .. } => "HostNameNotOnVerifiedDomain",
            Self::DirectoryQuotaExceeded { .. } => QUOTA_EXCEEDED,
            Self::Throttled { .. } => "TooManyRequests",
            Self::Transport(_) | Self::Unreachable(_) | Self::Decode(_) => "",
        }
    }
}

impl From<TransportError> for GraphError {
    fn from(e: TransportError) -> Self {
        e.into_error(GraphError::Unreachable, GraphError::Transport)
    }
}

/// `Retry-After` in seconds, fractional allowed (`2.128`).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The OData error envelope: `{"error":{code,message,details}}` or the old `{"odata.error":{code,message:{value}}}`.
pub fn odata_error(body: &str) -> (String, String, Vec<String>) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = v
        .get("error")
        .filter(|e| e.is_object())
        .or_else(|| v.get("odata.error"))
        .cloned()
        .unwrap_or(Value::Null);
    let code = e
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = match e.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(m) => m
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    };
    let details = e
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("code").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (code, message, details)
}

/// The link both of Entra's identifier-URI policy refusals end with: "Failed to add identifier URI
/// {uri}. All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, … See
/// https://aka.ms/identifier-uri-addition-error …" (Learn `identifier-uri-restrictions`) and "The
/// newly added URI {uri} must comply with the format 'api://{appId}' … See
/// https://aka.ms/identifier-uri-addition-error …" (microsoft/entra-apps-identifier-uri-protection).
/// Their status and codes are not documented, so the text decides.
const URI_REFUSED_BY_POLICY: &str = "aka.ms/identifier-uri-addition-error";
/// The directory quota's code (public issues quoted in facts §2; its status is not documented). The
/// same code with "forward-link" in the message is the owners/members cap, not the object quota.
const QUOTA_EXCEEDED: &str = "Directory_QuotaExceeded";

/// Classifies a non-success Graph response.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> GraphError {
    let (code, mut message, details) = odata_error(body);
    if code.is_empty() && message.is_empty() && !body.trim().is_empty() {
        // Not an OData error (e.g. a proxy's HTML page): say so, with a short printable excerpt.
        let excerpt: String = body
            .trim()
            .chars()
            .take(120)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        message = format!(
            "response is not a Graph error ({} bytes): {excerpt}",
            body.len()
        );
    }
    let retry_after = retry_after.and_then(parse_retry_after);
    let lag = details.iter().any(|d| d == "NoBackingApplicationObject")
        || message.contains("does not reference a valid application object")
        || message.contains("backing application of the service principal");
    match status {
        429 => GraphError::Throttled { retry_after },
        _ if code == "HostNameNotOnVerifiedDomain"
            || details.iter().any(|d| d == "HostNameNotOnVerifiedDomain") =>
        {
            GraphError::HostNameNotOnVerifiedDomain { message }
        }
        _ if message.contains(URI_REFUSED_BY_POLICY) => {
            GraphError::IdentifierUriNotAllowedByPolicy { code, message }
        }
        _ if code == QUOTA_EXCEEDED && !message.contains("forward-link") => {
            GraphError::DirectoryQuotaExceeded { message }
        }
        _ if lag => GraphError::ReplicationLag { code, message },
        404 => GraphError::NotFound { code, message },
        401 => GraphError::Auth {
            code,
            message,
            permanent: false,
        },
        403 => GraphError::PermissionDenied { code, message },
        409 => GraphError::Conflict { code, message },
        400 if code == "Request_MultipleObjectsWithSameKeyValue"
            || message.contains("already exists")
            || message.contains("conflicting object") =>
        {
            GraphError::Conflict { code, message }
        }
        400..=499 => GraphError::BadRequest { code, message },
        _ => GraphError::Transient {
            status,
            code,
            message,
            retry_after,
        },
    }
}

/// Classifies a token-endpoint error body (`{"error","error_description","error_codes"}`).
pub fn classify_token_error(status: u16, body: &str) -> GraphError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    // The description's first line is the AADSTS code and text; later lines are trace/correlation IDs.
    let message = v
        .get("error_description")
        .and_then(Value::as_str)
        .and_then(|d| d.lines().next())
        .unwrap_or("no description")
        .to_string();
    let permanent = status < 500
        && status != 429
        && matches!(
            code.as_str(),
            "invalid_client" | "unauthorized_client" | "invalid_scope" | "invalid_request"
        );
    if status >= 500 || status == 429 {
        return GraphError::Transient {
            status,
            code,
            message,
            retry_after: None,
        };
    }
    GraphError::Auth {
        code,
        message,
        permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::types::TokenResponse;

    const NOT_FOUND_404: &str = include_str!("testdata/not_found_404.json");

    #[test]
    fn classifies_recorded_404() {
        let e = classify(404, None, NOT_FOUND_404);
        assert_eq!(e.category(), "NotFound");
        assert_eq!(e.code(), "Request_ResourceNotFound");
        assert!(!e.is_permanent());
    }

    #[test]
    fn classifies_documented_errors() {
        let body = |code: &str, msg: &str| {
            format!(
                r#"{{"error":{{"code":"{code}","message":"{msg}","innerError":{{"date":"2025-02-20T10:52:24"}}}}}}"#
            )
        };
        let e = classify(
            403,
            None,
            &body(
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
        );
        assert_eq!((e.category(), e.is_permanent()), ("PermissionDenied", true));
        let e = classify(
            400,
            None,
            &body(
                "HostNameNotOnVerifiedDomain",
                "Values of identifierUris property must use a verified domain of the organization or its subdomain: 'https://x.example'",
            ),
        );
        assert_eq!(e.category(), "HostNameNotOnVerifiedDomain");
        assert!(e.is_permanent());
        assert!(
            e.to_string().contains("api://{appId}"),
            "says what to do: {e}"
        );
        let lag = r#"{"error":{"code":"Request_BadRequest","message":"The appId 'x' of the service principal does not reference a valid application object.","details":[{"code":"NoBackingApplicationObject","target":"appId"}]}}"#;
        assert_eq!(classify(400, None, lag).category(), "ReplicationLag");
        let e = classify(
            429,
            Some("2.128"),
            &body("TooManyRequests", "Please retry again later."),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_millis(2128)));
        assert_eq!(
            classify(
                409,
                None,
                &body("Request_MultipleObjectsWithSameKeyValue", "dup")
            )
            .category(),
            "Conflict"
        );
        assert_eq!(
            classify(
                400,
                None,
                &body(
                    "Request_BadRequest",
                    "Another object with the same value for property identifierUris already exists."
                )
            )
            .category(),
            "Conflict"
        );
        assert_eq!(classify(503, Some("5"), "").category(), "Transient");
        assert_eq!(
            classify(400, None, &body("Request_BadRequest", "bad")).category(),
            "BadRequest"
        );
    }

    #[test]
    fn tenant_limits_are_told_apart_from_permissions_and_bad_requests() {
        let uri = r#"{"error":{"code":"Request_BadRequest","message":"Failed to add identifier URI api://fhir. All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, as per the default tenant policy of your organization. See https://aka.ms/identifier-uri-addition-error for more information on this error."}}"#;
        let e = classify(400, None, uri);
        assert_eq!(e.category(), "IdentifierUriNotAllowedByPolicy");
        assert!(e.is_permanent());
        let quota = |who: &str| {
            format!(
                r#"{{"error":{{"code":"Directory_QuotaExceeded","message":"The directory object quota limit for the {who} has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota."}}}}"#
            )
        };
        for (status, who) in [(403, "Tenant"), (400, "Principal")] {
            let e = classify(status, None, &quota(who));
            assert_eq!(e.category(), "DirectoryQuotaExceeded", "{status} {who}");
            assert!(e.is_permanent());
            assert_eq!(e.code(), "Directory_QuotaExceeded");
        }
        // The owners cap shares the code but is no object quota.
        let owners = r#"{"error":{"code":"Directory_QuotaExceeded","message":"Unable to perform operation as '121' would exceed the maximum quota count '100' for forward-link 'owners'."}}"#;
        assert_eq!(classify(403, None, owners).category(), "PermissionDenied");
    }

    #[test]
    fn parses_old_odata_error_shape() {
        let old = r#"{"odata.error":{"code":"Request_ResourceNotFound","message":{"lang":"en","value":"Resource 'x' does not exist"}}}"#;
        let e = classify(404, None, old);
        assert_eq!(e.code(), "Request_ResourceNotFound");
        assert!(e.to_string().contains("Resource 'x' does not exist"));
    }

    #[test]
    fn retry_after_accepts_fractions_and_rejects_garbage() {
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn token_errors() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y","error_codes":[7000215]}"#;
        let e = classify_token_error(401, body);
        assert_eq!(e.category(), "AuthFailed");
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            "authentication to Entra ID failed: AADSTS7000215: Invalid client secret provided."
        );
        let tr: TokenResponse = serde_json::from_str(r#"{"token_type":"Bearer","expires_in":86399,"ext_expires_in":86399,"access_token":"access_token"}"#).unwrap();
        assert_eq!(tr.expires_in, 86399);
        assert!(!format!("{tr:?}").contains("access_token\""));
    }
}
