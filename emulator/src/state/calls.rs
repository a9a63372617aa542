//! The call log: one record per request the pipeline answered (admin API excluded), and counters.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub operation: String,
    pub status: u16,
    pub tenant: String,
    pub caller: String,
    /// The query string as sent (without `?`; empty when there is none), the values of
    /// [`SECRET_PARAMETERS`] replaced by `REDACTED`. Form bodies and headers are never logged.
    #[serde(default)]
    pub query: String,
    /// An error answer's code: Graph's and ARM's `error.code`, the token endpoint's `error`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The identity platform's first AADSTS number (`error_codes[0]`) of an error answer.
    #[serde(default)]
    pub aadsts_code: Option<u32>,
}

/// Query parameters whose values are credentials or grants: Graph and ARM take none in the query,
/// but a client may put a token-endpoint parameter there by mistake, and that must not reach a log.
pub const SECRET_PARAMETERS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "device_code",
    "refresh_token",
    "password",
    "access_token",
    "id_token",
];

/// `raw` (a query string as sent) with the value of every [`SECRET_PARAMETERS`] entry redacted and
/// everything else byte for byte.
pub fn loggable_query(raw: &str) -> String {
    raw.split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let decoded: Vec<(String, String)> =
                serde_urlencoded::from_str(name).unwrap_or_default();
            let name_decoded = decoded.first().map(|(n, _)| n.as_str()).unwrap_or(name);
            if SECRET_PARAMETERS.contains(&name_decoded.to_ascii_lowercase().as_str()) {
                format!("{name}=REDACTED")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The code of a JSON error body: `{"error": {"code": …}}` (Graph, ARM) or `{"error": "…",
/// "error_codes": [n, …]}` (the identity platform), with its first AADSTS number.
pub fn error_code(body: &[u8]) -> (Option<String>, Option<u32>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let code = v["error"]["code"]
        .as_str()
        .or_else(|| v["error"].as_str())
        .map(str::to_string);
    let aadsts = v["error_codes"][0]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok());
    (code, aadsts)
}

/// Counts of calls since start (or the last `DELETE /_emulator/calls`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallSummary {
    pub total: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_operation_and_status: BTreeMap<String, BTreeMap<String, u64>>,
}

impl CallSummary {
    pub fn count(&mut self, c: &CallRecord) {
        self.total += 1;
        *self.by_operation.entry(c.operation.clone()).or_default() += 1;
        *self.by_status.entry(c.status.to_string()).or_default() += 1;
        *self
            .by_operation_and_status
            .entry(c.operation.clone())
            .or_default()
            .entry(c.status.to_string())
            .or_default() += 1;
    }
}

/// Appends `c`, keeping the newest 100,000 records (the oldest 10,000 go when full).
pub fn append(calls: &mut Vec<CallRecord>, c: CallRecord) {
    if calls.len() >= 100_000 {
        calls.drain(..10_000);
    }
    calls.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_filters_and_hides_secrets() {
        let q = "$filter=startswith(displayName,'a')&client_secret=s3cr3t&client%5Fsecret=x&code=abc&$top=5";
        assert_eq!(
            loggable_query(q),
            "$filter=startswith(displayName,'a')&client_secret=REDACTED&client%5Fsecret=REDACTED&code=REDACTED&$top=5"
        );
        assert_eq!(loggable_query(""), "");
    }

    #[test]
    fn error_codes_of_each_surface() {
        let graph = br#"{"error":{"code":"Request_BadRequest","message":"m"}}"#;
        assert_eq!(error_code(graph), (Some("Request_BadRequest".into()), None));
        let token = br#"{"error":"invalid_client","error_description":"AADSTS7000215: x","error_codes":[7000215]}"#;
        assert_eq!(
            error_code(token),
            (Some("invalid_client".into()), Some(7000215))
        );
        assert_eq!(error_code(b"<html>"), (None, None));
    }
}
