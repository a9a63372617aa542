//! An adaptive rate for one tenant's bucket: additive increase, multiplicative decrease (AIMD).
//!
//! It starts at the ceiling (Graph's documented limit, or the user's lower cap), halves on a 429,
//! holds every request of its kind until `Retry-After` has passed, and after a quiet period climbs
//! back one step at a time. Pure: the caller passes the time in; nothing here sleeps.
//! Hand-written rather than `governor`: governor's quotas are fixed when a limiter is built, and
//! this rate changes with Graph's answers.

use std::time::{Duration, Instant};

/// How the rate reacts to Graph's feedback.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapt {
    /// The rate is multiplied by this on a 429 (0 < factor < 1).
    pub decrease: f64,
    /// The rate never falls below this share of the ceiling.
    pub floor_share: f64,
    /// No 429 for this long after the pause ends before the rate climbs.
    pub quiet: Duration,
    /// Each further `quiet` without a 429 adds this share of the ceiling.
    pub step_share: f64,
    /// Used when a 429 carries no `Retry-After`.
    pub default_pause: Duration,
}

impl Default for Adapt {
    fn default() -> Self {
        Self {
            decrease: 0.5,
            floor_share: 0.05,
            quiet: Duration::from_secs(5),
            step_share: 0.1,
            default_pause: Duration::from_secs(1),
        }
    }
}

/// One tenant's current rate for one kind of request.
#[derive(Clone, Debug)]
pub struct Budget {
    ceiling: f64,
    adapt: Adapt,
    /// The rate set by the last decrease (the ceiling before any).
    lowered_to: f64,
    /// No request of this kind goes before this instant (Retry-After, for the whole tenant).
    paused_until: Option<Instant>,
}

impl Budget {
    pub fn new(ceiling: f64, adapt: Adapt) -> Self {
        let ceiling = ceiling.max(0.001);
        Self {
            ceiling,
            adapt,
            lowered_to: ceiling,
            paused_until: None,
        }
    }

    /// The rate allowed at `now`: the lowered rate plus one step per quiet period since the pause
    /// ended, never above the ceiling.
    pub fn rate(&self, now: Instant) -> f64 {
        let Some(until) = self.paused_until else {
            return self.lowered_to;
        };
        let quiet = now.saturating_duration_since(until).as_secs_f64();
        let steps = (quiet / self.adapt.quiet.as_secs_f64().max(1e-3)).floor();
        let climbed = self.lowered_to + steps * self.adapt.step_share * self.ceiling;
        climbed.min(self.ceiling)
    }

    /// How long a request must wait at `now` for the tenant's pause to end.
    pub fn pause_left(&self, now: Instant) -> Duration {
        self.paused_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }

    /// Graph answered 429 at `now`. The rate drops once per pause: the many requests in flight
    /// when the quota ran out all come back 429, and they are one signal, not many.
    pub fn throttled(&mut self, now: Instant, retry_after: Option<Duration>) {
        let wait = retry_after.unwrap_or(self.adapt.default_pause);
        let until = now + wait;
        if self.pause_left(now).is_zero() {
            let floor = self.adapt.floor_share * self.ceiling;
            self.lowered_to = (self.rate(now) * self.adapt.decrease).max(floor);
        }
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: f64 = 20.0;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn starts_at_the_ceiling_and_halves_on_a_429() {
        let t0 = Instant::now();
        let mut b = Budget::new(CEILING, Adapt::default());
        assert_eq!(b.rate(t0), CEILING);
        b.throttled(t0, Some(secs(2.0)));
        assert_eq!(b.rate(t0), 10.0);
    }

    #[test]
    fn retry_after_holds_the_whole_tenant_and_a_burst_of_429s_is_one_signal() {
        let t0 = Instant::now();
        let mut b = Budget::new(CEILING, Adapt::default());
        b.throttled(t0, Some(secs(3.0)));
        // Other requests in flight come back 429 too: the pause may grow, the rate drops once.
        b.throttled(t0 + secs(0.1), Some(secs(3.0)));
        b.throttled(t0 + secs(0.2), Some(secs(1.0)));
        assert_eq!(b.rate(t0 + secs(0.2)), 10.0);
        assert_eq!(b.pause_left(t0 + secs(1.1)), secs(2.0));
        assert_eq!(b.pause_left(t0 + secs(3.1)), Duration::ZERO);
        // A 429 without Retry-After still pauses.
        let mut c = Budget::new(CEILING, Adapt::default());
        c.throttled(t0, None);
        assert_eq!(c.pause_left(t0), Adapt::default().default_pause);
    }

    #[test]
    fn a_429_after_the_pause_lowers_it_again_down_to_the_floor() {
        let t0 = Instant::now();
        let mut b = Budget::new(CEILING, Adapt::default());
        let mut t = t0;
        for _ in 0..20 {
            b.throttled(t, Some(secs(1.0)));
            t += secs(1.5);
        }
        assert_eq!(b.rate(t), CEILING * Adapt::default().floor_share);
    }

    #[test]
    fn climbs_back_after_quiet_periods_and_never_above_the_ceiling() {
        let t0 = Instant::now();
        let mut b = Budget::new(CEILING, Adapt::default());
        b.throttled(t0, Some(secs(1.0)));
        let resumed = t0 + secs(1.0);
        assert_eq!(
            b.rate(resumed + secs(4.9)),
            10.0,
            "not before a quiet period"
        );
        assert_eq!(
            b.rate(resumed + secs(5.0)),
            12.0,
            "one step of 10 % of 20/s"
        );
        assert_eq!(b.rate(resumed + secs(15.0)), 16.0);
        assert_eq!(b.rate(resumed + secs(3600.0)), CEILING, "capped");
        // A 429 while climbing halves what it had climbed to.
        b.throttled(resumed + secs(10.0), Some(secs(1.0)));
        assert_eq!(b.rate(resumed + secs(10.0)), 7.0);
    }

    #[test]
    fn a_users_lower_cap_is_the_ceiling() {
        let t0 = Instant::now();
        let mut b = Budget::new(5.0, Adapt::default());
        assert_eq!(b.rate(t0), 5.0);
        b.throttled(t0, Some(secs(1.0)));
        assert!(b.rate(t0 + secs(1e6)) <= 5.0);
    }
}
