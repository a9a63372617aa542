//! What differs between the services the operator calls: how an error answer reads, which errors a
//! call waits out, and which metric counts a call. Implemented by each service's error type.

use std::time::Duration;

use super::transport::{Failure, TransportError};
use crate::graph::GraphError;
use crate::metrics::Metrics;

/// Retries within one call: at most `max_attempts` tries, waits doubling from `2 × base` up to
/// `max_backoff` unless the service says how long (`Retry-After`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1, 2, …): 1 s, 2 s, 4 s, … with the defaults.
    pub fn backoff(&self, attempt: u32) -> Duration {
        (self.base * 2u32.saturating_pow(attempt.min(16))).min(self.max_backoff)
    }
}

/// A service's error type, as the HTTP layer needs it.
pub trait ServiceError: Sized + std::fmt::Display {
    /// What a call tells the retry loop beyond its request (Graph: what a 404 means for it).
    type Class: Copy;
    /// The service's name in logs.
    const SERVICE: &'static str;
    /// The setting that chooses the service's endpoint, named when it cannot be reached.
    const SETTING: &'static str;

    /// Counts one answer in the service's metric.
    fn count(metrics: &Metrics, op: &str, status: u16);
    /// An error answer, by status, `Retry-After` and body.
    fn from_answer(status: u16, retry_after: Option<&str>, body: &str) -> Self;
    /// No (whole) answer.
    fn from_transport(e: TransportError) -> Self;
    /// An answer that could not be read.
    fn decode(message: String) -> Self;
    /// No token for the service's audience.
    fn from_token(e: GraphError) -> Self;
    /// The service refused the token as expired or revoked: worth one fresh token, at once.
    fn is_stale_token(&self) -> bool;
    /// The wait before the next attempt after this error, or `None` when it is the call's answer.
    fn wait(&self, class: Self::Class, attempt: u32, retry: &RetryPolicy) -> Option<Duration>;
    /// Stable, low-cardinality category (logs).
    fn category(&self) -> &'static str;

    fn from_failure(f: Failure) -> Self {
        match f {
            Failure::Transport(e) => Self::from_transport(e),
            Failure::TooLarge(message) => Self::decode(message),
        }
    }
}
