//! How long the controllers wait after a watch error before polling their watches again.
//!
//! kube-runtime pauses *all* of a controller's watches after an error from any one of them, with one
//! shared backoff (default 0.8 s doubling to 30 s, reset only after 2 min without errors). After an
//! API-server restart every watch gets `410 Expired` once or twice, so those pauses stack: the failure
//! suite measured 60–75 s without any reconcile trigger after a 3 s outage. Capping the pause at 5 s
//! keeps that short while still costing the API server at most one list per watch per 5 s.

use std::time::{Duration, Instant};

use kube::runtime::utils::Backoff;

const FIRST: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(5);
/// Errors further apart than this start again from `FIRST`.
const RESET_AFTER: Duration = Duration::from_secs(30);

/// 0.5 s, 1 s, 2 s, 4 s, then 5 s until `RESET_AFTER` passes without an error.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    next: Option<Duration>,
    last: Option<Instant>,
}

impl WatchBackoff {
    /// The pause after an error at `now`.
    fn next_at(&mut self, now: Instant) -> Duration {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) > RESET_AFTER)
        {
            self.next = None;
        }
        self.last = Some(now);
        let wait = self.next.unwrap_or(FIRST);
        self.next = Some((wait * 2).min(CAP));
        wait
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_at(Instant::now()))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_starts_over_after_a_quiet_period() {
        let mut b = WatchBackoff::default();
        let t0 = Instant::now();
        let waits: Vec<f64> = (0..6)
            .map(|i| b.next_at(t0 + Duration::from_secs(i)).as_secs_f64())
            .collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]);
        // Within the reset window the cap holds; after it, the first pause again.
        assert_eq!(b.next_at(t0 + Duration::from_secs(30)), CAP);
        assert_eq!(b.next_at(t0 + Duration::from_secs(61)), FIRST);
        b.next_at(t0 + Duration::from_secs(62));
        b.reset();
        assert_eq!(b.next_at(t0 + Duration::from_secs(63)), FIRST);
    }
}
