//! Graph and token-endpoint errors, parsed from their wire formats.

use std::time::Duration;

use serde_json::Value;

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
    #[error("HTTP transport error: {0}")]
    Transport(String),
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
            Self::ReplicationLag { .. } => "ReplicationLag",
            Self::Conflict { .. } => "Conflict",
            Self::Transient { .. } => "Transient",
            Self::BadRequest { .. } => "BadRequest",
            Self::Auth { .. } => "AuthFailed",
            Self::Transport(_) => "Transport",
            Self::Decode(_) => "Decode",
        }
    }

    /// Needs a human; retrying soon will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::PermissionDenied { .. }
            | Self::HostNameNotOnVerifiedDomain { .. }
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
            | Self::Auth { code, .. } => code,
            Self::HostNameNotOnVerifiedDomain { .. } => "HostNameNotOnVerifiedDomain",
            Self::Throttled { .. } => "TooManyRequests",
            Self::Transport(_) | Self::Decode(_) => "",
        }
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
