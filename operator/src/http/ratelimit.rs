//! A token bucket per tenant so many resources do not stampede Graph and Azure Resource Manager.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One token bucket's refill rate and size.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub per_sec: f64,
    pub burst: u32,
}

/// Token buckets per tenant: one for all requests, one more for writes. They mirror Graph's two
/// quotas per application and tenant (resource units for every request; a separate, much smaller
/// write quota), so reads for drift checks are not held back by writes, nor writes allowed to
/// exceed Graph's write quota and draw 429s.
#[derive(Debug)]
pub struct RateLimiter {
    requests: Limit,
    writes: Limit,
    buckets: Mutex<HashMap<(String, bool), Bucket>>,
}

impl RateLimiter {
    pub fn new(requests: Limit, writes: Limit) -> Self {
        let sane = |l: Limit| Limit {
            per_sec: l.per_sec.max(0.001),
            burst: l.burst.max(1),
        };
        Self {
            requests: sane(requests),
            writes: sane(writes),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long to wait before one request may go (and reserve it). Zero when a token is available.
    /// A write takes a token from both buckets.
    pub fn reserve(&self, tenant: &str, write: bool, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut take = |write_bucket: bool, limit: Limit| {
            let b = buckets
                .entry((tenant.to_string(), write_bucket))
                .or_insert(Bucket {
                    tokens: f64::from(limit.burst),
                    last: now,
                });
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * limit.per_sec).min(f64::from(limit.burst));
            b.last = now;
            b.tokens -= 1.0;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / limit.per_sec)
            }
        };
        let wait = take(false, self.requests);
        if write {
            wait.max(take(true, self.writes))
        } else {
            wait
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self, tenant: &str, write: bool) {
        let wait = self.reserve(tenant, write, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            Limit {
                per_sec: 10.0,
                burst: 3,
            },
            Limit {
                per_sec: 1.0,
                burst: 2,
            },
        )
    }

    #[test]
    fn burst_then_rate() {
        let rl = limiter();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(rl.reserve("t", false, t0), Duration::ZERO);
        }
        let w = rl.reserve("t", false, t0);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-6, "{w:?}");
        let w2 = rl.reserve("t", false, t0);
        assert!(
            (w2.as_secs_f64() - 0.2).abs() < 1e-6,
            "queued requests wait longer: {w2:?}"
        );
        assert_eq!(
            rl.reserve("other", false, t0),
            Duration::ZERO,
            "tenants are independent"
        );
        assert_eq!(
            rl.reserve("t", false, t0 + Duration::from_secs(10)),
            Duration::ZERO,
            "refills"
        );
    }

    #[test]
    fn writes_have_their_own_smaller_budget_and_also_count_as_requests() {
        let rl = limiter();
        let t0 = Instant::now();
        assert_eq!(rl.reserve("t", true, t0), Duration::ZERO);
        assert_eq!(rl.reserve("t", true, t0), Duration::ZERO);
        // The write bucket (burst 2, 1/s) is empty; the request bucket still has a token.
        let w = rl.reserve("t", true, t0);
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
        // The three writes used all three request tokens: a read now waits for the request bucket
        // only, not for the write bucket.
        let r = rl.reserve("t", false, t0);
        assert!((r.as_secs_f64() - 0.1).abs() < 1e-6, "{r:?}");
    }
}
