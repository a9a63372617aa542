//! Token buckets per tenant so many resources do not stampede Graph and Azure Resource Manager,
//! with rates that follow Graph's feedback (see `budget`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::budget::{Adapt, Budget};

/// One token bucket's refill rate and size: the ceiling its adaptive rate climbs back to.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub per_sec: f64,
    pub burst: u32,
}

/// One bucket of one tenant: its tokens and its adaptive rate.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    budget: Budget,
}

impl Bucket {
    fn new(limit: Limit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            last: now,
            budget: Budget::new(limit.per_sec, Adapt::default()),
        }
    }

    /// Refills at the current rate; the bucket shrinks with the rate so a lowered budget does not
    /// let a full burst through after its pause.
    fn refill(&mut self, limit: Limit, now: Instant) -> f64 {
        let rate = self.budget.rate(now);
        let capacity = (f64::from(limit.burst) * rate / limit.per_sec).max(1.0);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.last = now;
        rate
    }

    /// Takes one token; the wait until it is due (and until the tenant's pause ends).
    fn take(&mut self, limit: Limit, now: Instant) -> Duration {
        let rate = self.refill(limit, now);
        self.tokens -= 1.0;
        let deficit = if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        };
        deficit.max(self.budget.pause_left(now))
    }
}

/// Token buckets per tenant: one for all requests, one more for writes. They mirror Graph's two
/// quotas per application and tenant (resource units for every request; a separate, much smaller
/// write quota), so reads for drift checks are not held back by writes, nor writes allowed to
/// exceed Graph's write quota. Each starts at its configured limit, is lowered by a 429 on its
/// kind of request and climbs back when Graph stops throttling. Graph and ARM callers of a tenant
/// share one limiter, so both count against the same budget.
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

    fn with_bucket<T>(
        &self,
        tenant: &str,
        write_bucket: bool,
        now: Instant,
        f: impl FnOnce(&mut Bucket, Limit) -> T,
    ) -> T {
        let limit = if write_bucket {
            self.writes
        } else {
            self.requests
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets
            .entry((tenant.to_string(), write_bucket))
            .or_insert_with(|| Bucket::new(limit, now));
        f(bucket, limit)
    }

    /// How long to wait before one request may go (and reserve it). Zero when a token is available
    /// and the tenant is not paused. A write takes a token from both buckets.
    pub fn reserve(&self, tenant: &str, write: bool, now: Instant) -> Duration {
        let wait = self.with_bucket(tenant, false, now, |b, l| b.take(l, now));
        if write {
            wait.max(self.with_bucket(tenant, true, now, |b, l| b.take(l, now)))
        } else {
            wait
        }
    }

    /// The wait left at `now` for a pause that began after the request reserved its token.
    fn pause_left(&self, tenant: &str, write: bool, now: Instant) -> Duration {
        let left = self.with_bucket(tenant, false, now, |b, _| b.budget.pause_left(now));
        if write {
            left.max(self.with_bucket(tenant, true, now, |b, _| b.budget.pause_left(now)))
        } else {
            left
        }
    }

    /// Graph (or ARM) answered a request of this kind with 429: lower the tenant's rate for that
    /// kind, empty its bucket and hold the kind's requests until `Retry-After` has passed.
    pub fn throttled(
        &self,
        tenant: &str,
        write: bool,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        self.with_bucket(tenant, write, now, |b, l| {
            b.refill(l, now);
            b.budget.throttled(now, retry_after);
            b.tokens = b.tokens.min(0.0);
        });
    }

    /// The tenant's current write rate (writes per second).
    pub fn write_rate(&self, tenant: &str, now: Instant) -> f64 {
        self.with_bucket(tenant, true, now, |b, _| b.budget.rate(now))
    }

    /// Waits for a token, and for any pause the tenant entered meanwhile.
    pub async fn acquire(&self, tenant: &str, write: bool) {
        let wait = self.reserve(tenant, write, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        loop {
            let left = self.pause_left(tenant, write, Instant::now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
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

    #[test]
    fn a_429_pauses_the_tenants_writes_lowers_their_rate_and_leaves_reads_and_other_tenants() {
        let rl = RateLimiter::new(
            Limit {
                per_sec: 100.0,
                burst: 100,
            },
            Limit {
                per_sec: 20.0,
                burst: 20,
            },
        );
        let t0 = Instant::now();
        assert_eq!(rl.write_rate("t", t0), 20.0);
        rl.throttled("t", true, Some(Duration::from_secs(2)), t0);
        assert_eq!(rl.write_rate("t", t0), 10.0);
        let w = rl.reserve("t", true, t0);
        assert!(w >= Duration::from_secs(2), "waits out Retry-After: {w:?}");
        assert_eq!(rl.reserve("t", false, t0), Duration::ZERO, "reads go on");
        assert_eq!(
            rl.reserve("u", true, t0),
            Duration::ZERO,
            "other tenants too"
        );
        assert_eq!(rl.write_rate("u", t0), 20.0);
        // After the pause, the bucket holds at most the lowered share of its burst.
        let later = t0 + Duration::from_secs(60);
        let free = (0..30)
            .take_while(|_| rl.reserve("t", true, later).is_zero())
            .count();
        assert!(free <= 20, "{free}");
        assert_eq!(rl.write_rate("t", t0 + Duration::from_secs(3600)), 20.0);
    }
}
