//! How long the controllers wait after a watch error before polling their watches again.
//!
//! kube-runtime pauses *all* of a controller's watches after an error from any one of them, with one
//! shared backoff (default 0.8 s doubling to 30 s, reset only after 2 min without errors). After an
//! API-server restart every watch gets `410 Expired` once or twice, so those pauses stack: the failure
//! suite measured 60–75 s without any reconcile trigger after a 3 s outage. Capping the pause at 5 s
//! keeps that short while still costing the API server at most one list per watch per 5 s.

use std::time::Duration;

use kube::runtime::utils::{Backoff, ResetTimerBackoff};

const FIRST: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(5);
/// Errors further apart than this start again from `FIRST`.
const RESET_AFTER: Duration = Duration::from_secs(30);

/// 0.5 s, 1 s, 2 s, 4 s, then 5 s until `RESET_AFTER` passes without an error.
pub fn watch_backoff() -> ResetTimerBackoff<Doubling> {
    ResetTimerBackoff::new(Doubling::default(), RESET_AFTER)
}

/// `FIRST`, doubling up to `CAP`.
#[derive(Debug, Default)]
pub struct Doubling {
    next: Option<Duration>,
}

impl Iterator for Doubling {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next.unwrap_or(FIRST);
        self.next = Some((wait * 2).min(CAP));
        Some(wait)
    }
}

impl Backoff for Doubling {
    fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_to_the_cap_and_starts_over_after_a_quiet_period() {
        let mut b = watch_backoff();
        let mut waits = vec![];
        for _ in 0..6 {
            waits.push(b.next().unwrap().as_secs_f64());
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]);
        // Within the reset window the cap holds; after it, the first pause again.
        tokio::time::advance(Duration::from_secs(24)).await;
        assert_eq!(b.next(), Some(CAP));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.next(), Some(FIRST));
        b.next();
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
