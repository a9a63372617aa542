//! The bottom layer: everything the emulator remembers, behind one [`Shared`]. The directory
//! ([`store`], [`directory`]) is saved to the state file ([`persistence`]); each surface owns its
//! in-memory part — sign-in flows ([`sign_in`]), ARM's role assignments ([`arm`]) — and the
//! pipeline its call log ([`calls`]) and realism ([`realism`]). [`seed`] fills the store from the
//! config. Nothing here imports a surface or the server.
pub mod app_policies;
pub mod arm;
pub mod basics;
pub mod calls;
pub mod changes;
pub mod claims;
pub mod claims_policies;
pub mod directory;
pub mod extensions;
pub mod objects;
pub mod persistence;
pub mod quota;
pub mod realism;
pub mod recycle;
pub mod seed;
pub mod sign_in;
pub mod store;
pub mod views;

use crate::config::{DeltaConfig, Realism, ThrottleLimits};
use crate::crypto;
use calls::{CallRecord, CallSummary};
use persistence::{Snapshot, StateFile};
use std::collections::HashMap;
use std::sync::Mutex;
use store::Store;

pub use basics::{now_secs, random_guid};

pub struct Shared {
    pub store: Mutex<Store>,
    pub signing: crypto::SigningKey,
    pub base_url: String,
    pub realism: Mutex<Realism>,
    pub limits: Mutex<ThrottleLimits>,
    pub(crate) faults: realism::Faults,
    pub calls: Mutex<Vec<CallRecord>>,
    pub summary: Mutex<CallSummary>,
    /// Bearer tokens already verified (signature checks are the costliest part of a Graph call).
    pub token_cache: Mutex<HashMap<String, (crate::request::Caller, i64)>>,
    pub(crate) state_file: Option<StateFile>,
    pub http: reqwest::Client,
    pub default_sign_in_audience: String,
    pub token_lifetime_secs: u64,
    /// Sign-in state kept in memory only: pending requests, sessions, codes, refresh tokens.
    pub flows: Mutex<sign_in::Flows>,
    /// Azure Resource Manager's role assignments and the FHIR stand-ins (in memory only).
    pub arm: Mutex<arm::ArmState>,
    /// Delta queries' page size, token lifetime and change retention.
    pub delta: DeltaConfig,
}

impl Shared {
    pub fn set_realism(&self, r: Realism) {
        self.faults.reset(r.seed);
        *self.realism.lock().unwrap() = r;
    }
    /// Draws this request's fault: the same seed and call sequence give the same faults.
    pub fn draw_fault(&self, realism: &Realism) -> realism::Fault {
        self.faults.draw(realism)
    }
    /// Graph's token buckets when `realism.throttling` is on: `Err(retry_after_secs, scope)` when
    /// throttled, else the share of the resource-unit bucket used.
    pub fn throttle(&self, key: &str, ru: u64, write: bool) -> Result<f64, (u64, &'static str)> {
        if !self.realism.lock().unwrap().throttling {
            return Ok(0.0);
        }
        let limits = self.limits.lock().unwrap().clone();
        self.faults.take(&limits, key, ru, write)
    }
    /// Appends to the call log (the newest 100,000 calls are kept) and to the summary counters.
    pub fn record_call(&self, c: CallRecord) {
        self.summary.lock().unwrap().count(&c);
        calls::append(&mut self.calls.lock().unwrap(), c);
    }
    pub fn lag_ms(&self) -> i64 {
        self.realism.lock().unwrap().replication_lag_ms as i64
    }
    /// A copy of the store to save, taken under the store lock after a change (None when
    /// persistence is off). Save it with [`Shared::save`] once the lock is released.
    pub fn snapshot(&self, store: &Store) -> Option<Snapshot> {
        self.state_file.as_ref()?.snapshot(store)
    }
    /// Writes a snapshot to the state file (unless a newer one was written meanwhile).
    pub fn save(&self, snap: Option<Snapshot>) {
        if let (Some(f), Some(snap)) = (&self.state_file, snap) {
            f.save(snap);
        }
    }
    /// Snapshots the store under its lock, releases the lock, then saves. Call after every change.
    pub fn persist(&self, store: std::sync::MutexGuard<'_, Store>) {
        let snap = self.snapshot(&store);
        drop(store);
        self.save(snap);
    }
}

/// The object id of the emulator's own admin principal (`Running::admin_token`, `POST
/// /_emulator/tenants/{tid}/admin-token`): Graph lets it do what no application may.
pub const ADMIN_OID: &str = "a11ad000-0000-4000-8000-00000000ad01";
