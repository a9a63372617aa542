//! How the Graph client calls Graph: each call's retry class ([`Lag`]), Graph's rules for the HTTP
//! layer (its errors, what is waited out, its metric), and what every operation uses: the request,
//! an optional read, paging, decoding.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::GraphClient;
use super::error::{GraphError, classify};
use super::types::Page;
use crate::http::{Request, RetryPolicy, ServiceError, TransportError, transport};
use crate::metrics::Metrics;

/// The retry policy of a call, by its class: what a 404 means for it. Throttling, 5xx and dropped
/// connections are retried for every class (honouring `Retry-After`), a stale token once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lag {
    /// Reading or changing what was just written: a 404 is replication lag, retried.
    Retry,
    /// A lookup before a delete: absence is the common answer, so a 404 is retried only a few
    /// times (about 7 s), long enough for an object created moments ago to appear.
    Brief,
    /// A lookup where absence is an answer: a 404 is returned at once.
    NoRetry,
}

/// Attempts within which [`Lag::Brief`] retries a 404 (waits of 1, 2 and 4 s).
const BRIEF_LAG_ATTEMPTS: u32 = 3;

impl Lag {
    /// The wait before attempt `attempt + 1` of a call of this class that failed with `err`, or
    /// `None` when the error is its answer (a stale token is handled by the caller).
    fn wait(self, err: &GraphError, attempt: u32, retry: &RetryPolicy) -> Option<Duration> {
        match err {
            GraphError::Throttled { .. }
            | GraphError::Transient { .. }
            | GraphError::Transport(_)
            | GraphError::Unreachable(_) => {
                Some(err.retry_after().unwrap_or_else(|| retry.backoff(attempt)))
            }
            GraphError::ReplicationLag { .. } => Some(retry.backoff(attempt)),
            GraphError::NotFound { .. } if self == Lag::Retry => Some(retry.backoff(attempt)),
            GraphError::NotFound { .. } if self == Lag::Brief && attempt <= BRIEF_LAG_ATTEMPTS => {
                Some(retry.backoff(attempt))
            }
            _ => None,
        }
    }
}

impl ServiceError for GraphError {
    type Class = Lag;
    const SERVICE: &'static str = "Microsoft Graph";
    const SETTING: &'static str = "FHIR_OP_GRAPH_URL";

    fn count(metrics: &Metrics, op: &str, status: u16) {
        metrics.graph_call(op, status);
    }
    fn from_answer(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        classify(status, retry_after, body)
    }
    fn from_transport(e: TransportError) -> Self {
        e.into()
    }
    fn decode(message: String) -> Self {
        GraphError::Decode(message)
    }
    fn from_token(e: GraphError) -> Self {
        e
    }
    fn is_stale_token(&self) -> bool {
        matches!(
            self,
            GraphError::Auth {
                permanent: false,
                ..
            }
        )
    }
    fn wait(&self, class: Lag, attempt: u32, retry: &RetryPolicy) -> Option<Duration> {
        class.wait(self, attempt, retry)
    }
    fn category(&self) -> &'static str {
        GraphError::category(self)
    }
}

/// Most pages [`GraphClient::list_all`] follows (100 000 items at Graph's default page size).
const MAX_PAGES: usize = 1000;

impl GraphClient {
    /// One Graph call; `path` is below the Graph URL, or absolute (a `@odata.nextLink`).
    pub(super) async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        lag: Lag,
    ) -> Result<Option<Value>, GraphError> {
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoints.graph_url)
        };
        let req = Request {
            op,
            method,
            url: &url,
            body,
            headers,
        };
        self.caller.send::<GraphError>(&req, lag).await
    }

    /// GET `path`, `None` on 404 (after `lag`'s retries of it).
    pub(super) async fn get_opt(
        &self,
        op: &'static str,
        path: &str,
        lag: Lag,
    ) -> Result<Option<Value>, GraphError> {
        match self.send(op, Method::GET, path, None, &[], lag).await {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => Err(empty_body(op)),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// DELETE `path`: done, or already gone (absence is an answer: a 404 is not retried).
    pub(super) async fn delete(&self, op: &'static str, path: &str) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(op, Method::DELETE, path, None, &[], Lag::NoRetry)
                .await,
        )
    }

    /// A write to what was just written (a 404 is replication lag, retried) whose answer body is
    /// not needed.
    pub(super) async fn write(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<(), GraphError> {
        self.send(op, method, path, Some(body), &[], Lag::Retry)
            .await
            .map(|_| ())
    }

    /// Every item of a Graph collection: the first page and each `@odata.nextLink` after it (Graph
    /// pages at 100 by default). At most [`MAX_PAGES`] pages, so a Graph that keeps linking cannot
    /// hold a reconcile forever.
    pub(super) async fn list_all<T: DeserializeOwned + Default>(
        &self,
        op: &'static str,
        path: &str,
        lag: Lag,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let v = self.send(op, Method::GET, &url, None, &[], lag).await?;
            let page: Page<T> = decode(op, v.unwrap_or(json!({"value": []})))?;
            items.extend(page.value);
            next = page.next_link;
        }
        Err(GraphError::Decode(format!(
            "{op}: more than {MAX_PAGES} pages"
        )))
    }
}

/// Parses a successful response body as JSON; the error names the operation and the content type.
pub fn parse_json_body(op: &str, content_type: &str, text: &str) -> Result<Value, GraphError> {
    transport::parse_json(op, content_type, text).map_err(GraphError::Decode)
}

pub(super) fn decode<T: DeserializeOwned>(op: &str, v: Value) -> Result<T, GraphError> {
    serde_json::from_value(v).map_err(|e| GraphError::Decode(format!("{op}: {e}")))
}

/// A success without the body the operation needs.
pub(super) fn empty_body(op: &str) -> GraphError {
    GraphError::Decode(format!("{op}: empty body"))
}

/// A removal's answer: done, or already gone.
pub(super) fn ignore_not_found(r: Result<Option<Value>, GraphError>) -> Result<(), GraphError> {
    match r {
        Ok(_) | Err(GraphError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Quotes a value inside an OData string literal.
pub fn odata_quote(s: &str) -> String {
    s.replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_class_retries_a_404_as_its_policy_says_and_every_class_waits_out_throttling() {
        let r = RetryPolicy::default();
        let not_found = GraphError::NotFound {
            code: "Request_ResourceNotFound".into(),
            message: "gone".into(),
        };
        assert_eq!(Lag::NoRetry.wait(&not_found, 1, &r), None);
        assert_eq!(Lag::Retry.wait(&not_found, 5, &r), Some(r.backoff(5)));
        assert_eq!(Lag::Brief.wait(&not_found, 3, &r), Some(r.backoff(3)));
        assert_eq!(
            Lag::Brief.wait(&not_found, 4, &r),
            None,
            "about 7 s, then absent"
        );
        let throttled = GraphError::Throttled {
            retry_after: Some(Duration::from_secs(7)),
        };
        for class in [Lag::Retry, Lag::Brief, Lag::NoRetry] {
            assert_eq!(class.wait(&throttled, 1, &r), Some(Duration::from_secs(7)));
        }
        let refused = GraphError::BadRequest {
            code: "Request_BadRequest".into(),
            message: "no".into(),
        };
        assert_eq!(Lag::Retry.wait(&refused, 1, &r), None);
    }
}
