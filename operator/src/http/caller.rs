//! One call to a service, retried by the service's rules: the per-tenant rate limit before each
//! try, a bearer token for the service's audience (a fresh one once when it is refused), the answer
//! read within limits, and waits that honour `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::credential::Tokens;
use super::ratelimit::RateLimiter;
use super::service::{RetryPolicy, ServiceError};
use super::transport;
use crate::metrics::Metrics;

/// One request: the operation's name (metrics, logs), method, absolute URL, JSON body and headers.
pub struct Request<'a> {
    pub op: &'static str,
    pub method: Method,
    pub url: &'a str,
    pub body: Option<&'a Value>,
    pub headers: &'a [(&'a str, &'a str)],
}

/// HTTP access to one service for one tenant and credential. Clones share the token cache.
#[derive(Clone)]
pub struct Caller {
    http: reqwest::Client,
    tenant: String,
    scope: String,
    tokens: Arc<Tokens>,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
}

/// How one try ended when it did not fail in a way worth another.
enum Try<E> {
    Answered(Option<Value>),
    Failed(E),
}

impl Caller {
    /// A caller with `tokens`' HTTP client and metrics for the service whose token scope is
    /// `scope`, rate limited under `tenant`.
    pub fn new(
        tokens: Arc<Tokens>,
        tenant: String,
        scope: String,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self {
            http: tokens.http().clone(),
            metrics: tokens.metrics().clone(),
            tenant,
            scope,
            tokens,
            limiter,
            retry: RetryPolicy::default(),
        }
    }

    /// The same credential, tenant and rate limit, for another service: its scope, its retries.
    pub fn for_service(
        &self,
        http: reqwest::Client,
        scope: &str,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            scope: scope.to_string(),
            retry,
            metrics,
            ..self.clone()
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// Sends `req` until it is answered, its error is the answer, or the attempts run out. A token
    /// the service refuses is replaced once, at once; other errors wait as `E::wait` says.
    pub async fn send<E: ServiceError>(
        &self,
        req: &Request<'_>,
        class: E::Class,
    ) -> Result<Option<Value>, E> {
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            let err = match self.try_once::<E>(req).await? {
                Try::Answered(v) => return Ok(v),
                Try::Failed(e) => e,
            };
            attempt += 1;
            let wait = if err.is_stale_token() && !reauthed {
                reauthed = true;
                self.tokens.forget(&self.scope).await;
                Duration::ZERO
            } else {
                match err.wait(class, attempt, &self.retry) {
                    Some(wait) => wait,
                    None => return Err(err),
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            tracing::debug!(
                service = E::SERVICE,
                operation = req.op,
                method = %req.method,
                category = err.category(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One try. `Err` is final (no token, an answer too large or cut off, a success that is not
    /// JSON); `Failed` goes to the retry rules.
    async fn try_once<E: ServiceError>(&self, req: &Request<'_>) -> Result<Try<E>, E> {
        let write = req.method != Method::GET;
        self.limiter.acquire(&self.tenant, write).await;
        if write {
            let rate = self
                .limiter
                .write_rate(&self.tenant, std::time::Instant::now());
            self.metrics.set_write_budget(&self.tenant, rate);
        }
        let token = self
            .tokens
            .token(&self.scope)
            .await
            .map_err(E::from_token)?;
        let mut builder = self
            .http
            .request(req.method.clone(), req.url)
            .bearer_auth(token);
        for (k, v) in req.headers {
            builder = builder.header(*k, *v);
        }
        if let Some(b) = req.body {
            builder = builder.json(b);
        }
        let resp = match transport::send(builder, req.url, E::SETTING).await {
            Ok(resp) => resp,
            Err(e) => return Ok(Try::Failed(E::from_transport(e))),
        };
        E::count(&self.metrics, req.op, resp.status().as_u16());
        let answer = transport::read(req.op, resp, E::SETTING)
            .await
            .map_err(E::from_failure)?;
        if (200..300).contains(&answer.status) {
            return answer.json(req.op).map(Try::Answered).map_err(E::decode);
        }
        if answer.status == 429 {
            self.throttled(req, answer.retry_after.as_deref());
        }
        Ok(Try::Failed(E::from_answer(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
        )))
    }
}

impl Caller {
    /// The service throttled this tenant: its budget for this kind of request drops and the
    /// tenant waits out `Retry-After` (seconds or an HTTP date), not just this request.
    fn throttled(&self, req: &Request<'_>, retry_after: Option<&str>) {
        let now = std::time::Instant::now();
        let wait = retry_after.and_then(crate::graph::error::parse_retry_after);
        let write = req.method != Method::GET;
        self.limiter.throttled(&self.tenant, write, wait, now);
        let rate = self.limiter.write_rate(&self.tenant, now);
        self.metrics.set_write_budget(&self.tenant, rate);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::graph::GraphError;
    use crate::graph::call::Lag;
    use crate::http::Credential;
    use crate::http::fake::Fake;
    use crate::http::ratelimit::Limit;

    /// A Graph-like caller of `fake` whose own backoff is far longer than any wait the tests allow.
    fn caller(fake: &Fake) -> Caller {
        let http = transport::client(None, Duration::from_secs(5)).unwrap();
        let metrics = Arc::new(Metrics::default());
        let credential = Credential::Secret {
            client_id: "operator".into(),
            secret: "s".into(),
        };
        let endpoint = format!("{}/t/oauth2/v2.0/token", fake.base);
        let tokens = Tokens::new(http, endpoint, credential, metrics);
        let l = Limit {
            per_sec: 1000.0,
            burst: 1000,
        };
        let limiter = Arc::new(RateLimiter::new(l, l));
        let scope = "https://graph.microsoft.com/.default".to_string();
        Caller::new(Arc::new(tokens), "t".into(), scope, limiter).with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60),
        })
    }

    async fn get(caller: &Caller, fake: &Fake) -> Result<Option<Value>, GraphError> {
        let url = format!("{}/v1.0/things", fake.base);
        let req = Request {
            op: "listThings",
            method: Method::GET,
            url: &url,
            body: None,
            headers: &[],
        };
        caller.send::<GraphError>(&req, Lag::NoRetry).await
    }

    #[tokio::test]
    async fn a_refused_token_is_replaced_once_at_once_and_the_call_goes_on() {
        let fake = Fake::start().await;
        let expired = r#"{"error":{"code":"InvalidAuthenticationToken","message":"expired"}}"#;
        fake.then(401, "", expired);
        let c = caller(&fake);
        let t = Instant::now();
        let v = get(&c, &fake).await.unwrap();
        assert_eq!(v, Some(serde_json::json!({"value": []})));
        assert_eq!((fake.tokens(), fake.calls()), (2, 2), "a fresh token, once");
        assert!(t.elapsed() < Duration::from_secs(5), "no backoff before it");
        // Refused again after the fresh token: the error is the answer (its class waits out no 401).
        fake.then(401, "", expired);
        fake.then(401, "", expired);
        let e = get(&c, &fake).await.unwrap_err();
        assert_eq!(e.category(), "AuthFailed");
        assert_eq!(fake.tokens(), 3, "one fresh token per call, not per 401");
    }

    #[tokio::test]
    async fn a_throttled_call_waits_as_retry_after_says_not_its_backoff() {
        let fake = Fake::start().await;
        let throttled = r#"{"error":{"code":"TooManyRequests","message":"later"}}"#;
        fake.then(429, "retry-after: 0.3\r\n", throttled);
        let t = Instant::now();
        get(&caller(&fake), &fake).await.unwrap();
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(
            waited < Duration::from_secs(10),
            "not the 60 s backoff: {waited:?}"
        );
        assert_eq!(fake.calls(), 2);
    }
}
