//! The state file: the store saved after every change. A snapshot is taken under the store lock
//! and written after the lock is released; snapshots are numbered in the order they were taken,
//! so a request that reaches the writer late never overwrites a newer state with an older one.
use crate::state::store::Store;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The serialised store, numbered in the order the snapshots were taken.
pub struct Snapshot {
    seq: u64,
    bytes: Vec<u8>,
}

pub struct StateFile {
    path: PathBuf,
    /// Snapshots taken so far.
    taken: AtomicU64,
    /// The number of the last snapshot written (the writers' lock).
    written: Mutex<u64>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            taken: AtomicU64::new(0),
            written: Mutex::new(0),
        }
    }

    /// Take under the store lock, so that the numbers follow the order of the changes.
    pub fn snapshot(&self, store: &Store) -> Option<Snapshot> {
        match serde_json::to_vec_pretty(store) {
            Ok(bytes) => Some(Snapshot {
                seq: self.taken.fetch_add(1, Ordering::SeqCst) + 1,
                bytes,
            }),
            Err(e) => {
                tracing::warn!("could not serialise state: {e}");
                None
            }
        }
    }

    /// Writes the snapshot (through a temporary file and a rename), unless a newer one has been
    /// written already.
    pub fn save(&self, snap: Snapshot) {
        let mut written = self.written.lock().unwrap();
        if snap.seq <= *written {
            return;
        }
        let tmp = self.path.with_extension("tmp");
        if std::fs::write(&tmp, &snap.bytes)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .is_err()
        {
            tracing::warn!(path = %self.path.display(), "could not save state");
        }
        *written = snap.seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_snapshot_never_overwrites_a_newer_one() {
        let dir = std::env::temp_dir().join(format!("entra-emu-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = StateFile::new(dir.join("state.json"));
        let mut store = Store::default();
        store
            .trusted_issuers
            .insert("first".into(), serde_json::Value::Null);
        let first = f.snapshot(&store).unwrap();
        store
            .trusted_issuers
            .insert("second".into(), serde_json::Value::Null);
        let second = f.snapshot(&store).unwrap();
        f.save(second);
        f.save(first);
        let saved: Store =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        assert!(saved.trusted_issuers.contains_key("second"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
