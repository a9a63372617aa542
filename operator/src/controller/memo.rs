//! The reconcile memo: the fingerprint of each object's last successful full reconcile and until
//! when it stays valid, so a watch event caused by the operator's own writes (status, Secret) costs
//! no Graph calls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One object's last successful full reconcile.
struct Entry {
    fingerprint: String,
    valid_until: Instant,
    ready_message: String,
}

/// Memo of full reconciles, by object key (`Kind/namespace/name`).
#[derive(Default)]
pub struct Memo(Mutex<HashMap<String, Entry>>);

impl Memo {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time left and the Ready message, if `key`'s last full reconcile had fingerprint `fp` and is
    /// still valid.
    pub fn fresh(&self, key: &str, fp: &str) -> Option<(Duration, String)> {
        let now = Instant::now();
        self.entries()
            .get(key)
            .filter(|e| e.fingerprint == fp && now < e.valid_until)
            .map(|e| (e.valid_until - now, e.ready_message.clone()))
    }

    pub fn remember(&self, key: &str, fingerprint: String, valid: Duration, ready_message: String) {
        let entry = Entry {
            fingerprint,
            valid_until: Instant::now() + valid,
            ready_message,
        };
        self.entries().insert(key.to_string(), entry);
    }

    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }
}
