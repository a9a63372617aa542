//! The call log: one record per request the pipeline answered (admin API excluded), and counters.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub operation: String,
    pub status: u16,
    pub tenant: String,
    pub caller: String,
}

/// Counts of calls since start (or the last `DELETE /_emulator/calls`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallSummary {
    pub total: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_operation_and_status: BTreeMap<String, BTreeMap<String, u64>>,
}

impl CallSummary {
    pub fn count(&mut self, c: &CallRecord) {
        self.total += 1;
        *self.by_operation.entry(c.operation.clone()).or_default() += 1;
        *self.by_status.entry(c.status.to_string()).or_default() += 1;
        *self
            .by_operation_and_status
            .entry(c.operation.clone())
            .or_default()
            .entry(c.status.to_string())
            .or_default() += 1;
    }
}

/// Appends `c`, keeping the newest 100,000 records (the oldest 10,000 go when full).
pub fn append(calls: &mut Vec<CallRecord>, c: CallRecord) {
    if calls.len() >= 100_000 {
        calls.drain(..10_000);
    }
    calls.push(c);
}
