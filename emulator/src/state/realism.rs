//! Realism the pipeline applies: Graph's token buckets (429 with `Retry-After`) and the seeded
//! fault generator (dropped connections, random 5xx).
use crate::config::{Realism, ThrottleLimits};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Bucket {
    ru: f64,
    writes: f64,
    last: std::time::Instant,
}

/// What the fault generator drew for one request.
pub struct Fault {
    pub drop: bool,
    pub fail: bool,
    /// The 5xx status of a failure.
    pub code: u16,
}

/// The fault generator and the token buckets (per app+tenant).
pub struct Faults {
    rng: Mutex<rand::rngs::StdRng>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Reseeds the generator and refills every bucket (new realism settings).
    pub fn reset(&self, seed: u64) {
        *self.rng.lock().unwrap() = rand::rngs::StdRng::seed_from_u64(seed);
        self.buckets.lock().unwrap().clear();
    }

    /// Draws this request's fault: the same seed and call sequence give the same faults.
    pub fn draw(&self, realism: &Realism) -> Fault {
        if realism.drop_rate <= 0.0 && realism.error_rate <= 0.0 {
            return Fault {
                drop: false,
                fail: false,
                code: 500,
            };
        }
        let mut rng = self.rng.lock().unwrap();
        let d: f64 = rng.r#gen();
        let e: f64 = rng.r#gen();
        let code = [500u16, 502, 503, 504][rng.gen_range(0..4)];
        Fault {
            drop: d < realism.drop_rate,
            fail: e < realism.error_rate,
            code,
        }
    }

    /// Token-bucket check; `Err(retry_after_secs, scope)` when throttled, else the share of the
    /// resource-unit bucket used.
    pub fn take(
        &self,
        r: &ThrottleLimits,
        key: &str,
        ru: u64,
        write: bool,
    ) -> Result<f64, (u64, &'static str)> {
        let ru_cap = r.throttle_resource_units_per_10s.max(1) as f64;
        let w_cap = r.throttle_writes_per_150s.max(1) as f64;
        let mut b = self.buckets.lock().unwrap();
        let now = std::time::Instant::now();
        let e = b.entry(key.to_string()).or_insert(Bucket {
            ru: ru_cap,
            writes: w_cap,
            last: now,
        });
        let dt = now.duration_since(e.last).as_secs_f64();
        e.last = now;
        e.ru = (e.ru + dt * ru_cap / 10.0).min(ru_cap);
        e.writes = (e.writes + dt * w_cap / 150.0).min(w_cap);
        let need = ru as f64;
        if e.ru < need {
            let secs = ((need - e.ru) / (ru_cap / 10.0)).ceil().max(1.0) as u64;
            return Err((secs, "ResourceUnitLimitExceeded"));
        }
        if write && e.writes < 1.0 {
            let secs = ((1.0 - e.writes) / (w_cap / 150.0)).ceil().max(1.0) as u64;
            return Err((secs, "WriteLimitExceeded"));
        }
        e.ru -= need;
        if write {
            e.writes -= 1.0;
        }
        Ok(1.0 - e.ru / ru_cap)
    }
}
