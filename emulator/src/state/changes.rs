//! The tenant's change log behind Graph's delta queries (`graph::delta`): every write to an
//! application or a service principal appends a numbered change; a delta token is a position in
//! this log. docs/entra-facts/claims-and-delta.md part B has every source.
//!
//! - What is tracked: the object's own properties. "Navigation properties are not supported…
//!   changes to [them] do not cause the [parent] object to be included in the delta response"
//!   (Learn `delta-query-overview`, "Limitations"), so owners, federated identity credentials, app
//!   role assignments, grants and app management policy assignments append nothing here; they are
//!   kept outside the object's body in the store as well.
//! - A change remembers which top-level properties it touched: with `$select`, "if a change occurs
//!   to a property that isn't selected, the resource for which that property changed doesn't appear
//!   in the delta response" (same page, for users and groups; [INF] for applications and service
//!   principals). Creations, restores and removals concern the whole object.
//! - Bounded retention: the oldest changes are dropped (`DeltaConfig::retained_changes`), and a
//!   token older than what is kept can no longer be answered (Graph: "Delta tokens are only valid
//!   for a specific period", same page).
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};

/// The two collections with a delta function here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Collection {
    #[serde(rename = "applications")]
    Applications,
    #[serde(rename = "servicePrincipals")]
    ServicePrincipals,
}

impl Collection {
    /// The collection's name in paths and in `@odata.context`.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Applications => "applications",
            Collection::ServicePrincipals => "servicePrincipals",
        }
    }
}

/// One change to one object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Change {
    #[serde(rename = "n")]
    pub seq: u64,
    #[serde(rename = "c")]
    pub coll: Collection,
    pub id: String,
    /// When it happened (unix ms); it shows in delta once the replication lag has passed.
    #[serde(rename = "at")]
    pub at_ms: i64,
    /// The top-level properties it touched; None: the whole object (created, restored, removed).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Vec<String>>,
}

impl Change {
    /// Whether a client tracking `select` (empty: every property) sees this change.
    fn seen_by(&self, select: &[String]) -> bool {
        match &self.props {
            None => true,
            Some(_) if select.is_empty() => true,
            Some(props) => props
                .iter()
                .any(|p| select.iter().any(|s| s.eq_ignore_ascii_case(p))),
        }
    }
}

/// Why a token can no longer be answered.
#[derive(Debug, PartialEq)]
pub enum Gone {
    /// The changes after it were dropped (retention, or the admin API expired every token).
    Expired,
    /// The admin API asked for Graph's "synchronization reset".
    Reset,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeLog {
    /// The number of the last change (0: none yet).
    last_seq: u64,
    /// A position below this cannot be answered: the changes after it were dropped.
    horizon: u64,
    /// A position below this gets the synchronization reset rather than an expiry.
    reset_below: u64,
    entries: VecDeque<Change>,
}

impl ChangeLog {
    /// The whole object changed: created, or restored from the deleted items ("Instances restored
    /// from deletedItems show up as newly created instances", Learn `delta-query-overview`).
    pub fn created(&mut self, coll: Collection, id: &str, at_ms: i64) {
        self.append(coll, id, None, at_ms);
    }

    /// Soft-deleted, purged or expired: the delta shows `@removed`, its reason read from where the
    /// object is when the delta is asked for.
    pub fn removed(&mut self, coll: Collection, id: &str, at_ms: i64) {
        self.append(coll, id, None, at_ms);
    }

    /// These properties changed (an action such as `addPassword`).
    pub fn touched(&mut self, coll: Collection, id: &str, props: &[&str], at_ms: i64) {
        let props = props.iter().map(|p| p.to_string()).collect();
        self.append(coll, id, Some(props), at_ms);
    }

    /// The object went from `old` to `new` (a PATCH): the top-level properties that differ, if any.
    pub fn updated(&mut self, coll: Collection, id: &str, old: &Value, new: &Value, at_ms: i64) {
        let props = changed_properties(old, new);
        if !props.is_empty() {
            self.append(coll, id, Some(props), at_ms);
        }
    }

    fn append(&mut self, coll: Collection, id: &str, props: Option<Vec<String>>, at_ms: i64) {
        self.last_seq += 1;
        self.entries.push_back(Change {
            seq: self.last_seq,
            coll,
            id: id.to_string(),
            at_ms,
            props,
        });
    }

    /// Keeps the newest `keep` changes; tokens from before the dropped ones expire.
    pub fn trim(&mut self, keep: usize) {
        while self.entries.len() > keep {
            if let Some(c) = self.entries.pop_front() {
                self.horizon = self.horizon.max(c.seq);
            }
        }
    }

    /// Every token issued so far stops working (`POST /_emulator/delta/expire`): with `reset`, they
    /// get Graph's synchronization reset (410), else the expiry error.
    pub fn expire_all(&mut self, reset: bool) {
        self.entries.clear();
        // A position of its own for the tokens issued from now on.
        self.last_seq += 1;
        self.horizon = self.last_seq;
        if reset {
            self.reset_below = self.last_seq;
        }
    }

    /// The newest position whose changes have all replicated (`lag_ms` after they happened): a
    /// round covers the changes up to it, and later ones wait for the next round ("Expect varying
    /// delays between the time a resource instance changes, and the time the tracked change is
    /// reflected in a delta query response", Learn `delta-query-overview`). Changes are appended
    /// in time order, so the newest are looked at first.
    pub fn watermark(&self, now_ms: i64, lag_ms: i64) -> u64 {
        let mut mark = self.last_seq;
        for c in self.entries.iter().rev() {
            if c.at_ms + lag_ms <= now_ms {
                break;
            }
            mark = c.seq - 1;
        }
        mark
    }

    /// Whether changes after `position` can still be listed.
    pub fn check(&self, position: u64) -> Result<(), Gone> {
        if position < self.reset_below {
            Err(Gone::Reset)
        } else if position < self.horizon || position > self.last_seq {
            // Beyond the last change: a token of a log that is no more (a state file replaced).
            Err(Gone::Expired)
        } else {
            Ok(())
        }
    }

    /// The ids of `coll` with a change in `(from, to]` that a client tracking `select` sees, in
    /// id order (optionally only `ids`).
    pub fn changed_ids(
        &self,
        coll: Collection,
        (from, to): (u64, u64),
        select: &[String],
        ids: &[String],
    ) -> BTreeSet<String> {
        let start = self.entries.partition_point(|c| c.seq <= from);
        self.entries
            .range(start..)
            .take_while(|c| c.seq <= to)
            .filter(|c| c.coll == coll)
            .filter(|c| ids.is_empty() || ids.iter().any(|i| i.eq_ignore_ascii_case(&c.id)))
            .filter(|c| c.seen_by(select))
            .map(|c| c.id.clone())
            .collect()
    }
}

/// The top-level properties whose values differ between two versions of an object.
pub fn changed_properties(old: &Value, new: &Value) -> Vec<String> {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return vec![];
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const APPS: Collection = Collection::Applications;

    #[test]
    fn changes_are_numbered_and_filtered_by_selection() {
        let mut log = ChangeLog::default();
        log.created(APPS, "a", 0);
        log.touched(APPS, "b", &["passwordCredentials"], 0);
        let old = json!({"displayName": "x", "web": {"redirectUris": []}});
        let new = json!({"displayName": "x", "web": {"redirectUris": ["https://a"]}});
        log.updated(APPS, "c", &old, &new, 0);
        log.updated(APPS, "d", &old, &old, 0);
        log.created(Collection::ServicePrincipals, "s", 0);
        assert_eq!(log.watermark(0, 0), 4);
        let all = log.changed_ids(APPS, (0, 4), &[], &[]);
        assert_eq!(all.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        let web = log.changed_ids(APPS, (0, 4), &["Web".into()], &[]);
        assert_eq!(web.into_iter().collect::<Vec<_>>(), ["a", "c"]);
        let since = log.changed_ids(APPS, (1, 4), &[], &["B".into()]);
        assert_eq!(since.into_iter().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn lagging_changes_wait_and_dropped_ones_expire_tokens() {
        let mut log = ChangeLog::default();
        log.created(APPS, "a", 1_000);
        log.created(APPS, "b", 5_000);
        assert_eq!(log.watermark(3_000, 1_000), 1, "b has not replicated");
        assert_eq!(log.watermark(6_000, 1_000), 2);
        assert_eq!(log.check(0), Ok(()));
        log.trim(1);
        assert_eq!(log.check(0), Err(Gone::Expired));
        assert_eq!(log.check(1), Ok(()));
        assert_eq!(log.check(3), Err(Gone::Expired), "beyond the log");
        log.expire_all(true);
        assert_eq!(log.check(2), Err(Gone::Reset));
        assert_eq!(log.check(3), Ok(()), "a token issued after the reset works");
    }
}
