//! The Microsoft Graph client of one tenant and credential, and how it is built. Its calls go
//! through the operator's HTTP layer (`crate::http`: token, rate limit, retries); Graph's rules for
//! them are in `call.rs`, the operations by resource in the files next to it.

use std::sync::Arc;
use std::time::Duration;

use super::error::GraphError;
use crate::http::ratelimit::RateLimiter;
use crate::http::{Caller, Tokens, transport};
use crate::metrics::Metrics;

pub use super::call::{odata_quote, parse_json_body};
pub use crate::http::transport::{DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES};
pub use crate::http::{Credential, RetryPolicy};

/// Token scope of Microsoft Graph in the public cloud.
pub const DEFAULT_GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Settings shared by every tenant's client.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// e.g. `https://graph.microsoft.com/v1.0`
    pub graph_url: String,
    /// e.g. `https://login.microsoftonline.com/` (always ends with `/`)
    pub authority_host: String,
    /// Token scope for Graph, e.g. `https://graph.microsoft.com/.default` (Graph's identifier, which is
    /// not the Graph URL's host for emulators and proxies).
    pub graph_scope: String,
}

impl Endpoints {
    pub fn new(graph_url: &str, authority_host: &str) -> Self {
        Self {
            graph_url: crate::url::without_slash(graph_url).to_string(),
            authority_host: crate::url::with_slash(authority_host),
            graph_scope: DEFAULT_GRAPH_SCOPE.into(),
        }
    }
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}{tenant}/oauth2/v2.0/token", self.authority_host)
    }
}

/// Builds the HTTP client (rustls; optional extra CA bundle in PEM) with the default timeout.
pub fn http_client(extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, GraphError> {
    http_client_with_timeout(extra_ca_pem, DEFAULT_TIMEOUT)
}

/// Builds the HTTP client; `timeout` bounds each request from connect to the last body byte, so a
/// server that trickles its response cannot hold a reconcile forever.
pub fn http_client_with_timeout(
    extra_ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, GraphError> {
    transport::client(extra_ca_pem, timeout).map_err(GraphError::Transport)
}

/// Graph client for one tenant and one credential. Clones share the token cache.
#[derive(Clone)]
pub struct GraphClient {
    pub(super) endpoints: Endpoints,
    pub(super) caller: Caller,
}

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        tenant_id: String,
        credential: Credential,
        limiter: Arc<RateLimiter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let endpoint = endpoints.token_endpoint(&tenant_id);
        let tokens = Arc::new(Tokens::new(http, endpoint, credential, metrics));
        let caller = Caller::new(tokens, tenant_id, endpoints.graph_scope.clone(), limiter);
        Self { endpoints, caller }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.caller = self.caller.with_retry(retry);
        self
    }

    /// Whether two clients share one token cache (a clone of the same client).
    #[cfg(test)]
    pub(crate) fn shares_token_cache(&self, other: &GraphClient) -> bool {
        Arc::ptr_eq(self.caller.tokens(), other.caller.tokens())
    }

    pub fn tenant_id(&self) -> &str {
        self.caller.tenant()
    }
    /// The client ID this client signs in as.
    pub fn client_id(&self) -> &str {
        self.caller.tokens().credential().client_id()
    }
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The HTTP access of this client's tenant and credential, for another service of the same
    /// credential (Azure Resource Manager): same token cache, same rate limit.
    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        let e = Endpoints::new(
            "https://graph.microsoft.com/v1.0/",
            "https://login.microsoftonline.com",
        );
        assert_eq!(e.graph_scope, "https://graph.microsoft.com/.default");
        assert_eq!(e.graph_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(
            e.token_endpoint("t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(odata_quote("a'b"), "a''b");
        let p = RetryPolicy::default();
        assert!(p.backoff(1) < p.backoff(2));
        assert_eq!(p.backoff(30), p.max_backoff);
    }
}
