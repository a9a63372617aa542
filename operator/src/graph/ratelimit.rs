//! A token bucket per tenant so many resources do not stampede Graph.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by tenant.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Self {
            rate_per_sec: rate_per_sec.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long to wait before one request may go (and reserve it). Zero when a token is available.
    pub fn reserve(&self, tenant: &str, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate_per_sec).min(self.burst);
        b.last = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate_per_sec)
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self, tenant: &str) {
        let wait = self.reserve(tenant, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let rl = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(rl.reserve("t", t0), Duration::ZERO);
        }
        let w = rl.reserve("t", t0);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-6, "{w:?}");
        let w2 = rl.reserve("t", t0);
        assert!(
            (w2.as_secs_f64() - 0.2).abs() < 1e-6,
            "queued requests wait longer: {w2:?}"
        );
        assert_eq!(
            rl.reserve("other", t0),
            Duration::ZERO,
            "tenants are independent"
        );
        assert_eq!(
            rl.reserve("t", t0 + Duration::from_secs(10)),
            Duration::ZERO,
            "refills"
        );
    }
}
