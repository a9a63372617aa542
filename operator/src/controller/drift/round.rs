//! What the watcher does, as pure functions: whether a tenant counts as watched, what a failed
//! round means, which owners a round's entries name.

use std::time::{Duration, Instant};

use super::index::{Index, Owner};
use crate::graph::GraphError;
use crate::graph::delta::{DeltaEntry, is_stale_token};

/// Rounds a tenant may miss (a Graph hiccup, a slow page) before its objects go back to the
/// unwatched pace: a round that fails keeps its deltaLink, and the next good one catches up.
const MISSED_ROUNDS: u32 = 3;
/// Slack on top of the missed rounds, for a round that takes long (paging, throttling).
const ROUND_SLACK: Duration = Duration::from_secs(30);

/// Whether a tenant is watched at `now`: delta is on, Graph has not refused it, and a round of both
/// collections ended well within the last few poll intervals.
pub fn watching(
    poll: Option<Duration>,
    last_ok: Option<Instant>,
    forbidden: bool,
    now: Instant,
) -> bool {
    let (Some(poll), Some(ok)) = (poll, last_ok) else {
        return false;
    };
    !forbidden && now.saturating_duration_since(ok) <= poll * MISSED_ROUNDS + ROUND_SLACK
}

/// Why a round failed, as the watcher acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The deltaLink is of no use any more (expired, reset): start a new round from now, and
    /// re-read every owner once, since what changed in the gap is unknown.
    Stale,
    /// The operator may not read delta (403): the tenant is re-read at the unwatched pace.
    Forbidden,
    /// Anything else (Graph down, throttled past the retries, no credentials): try again at the
    /// next poll with the same link.
    Other,
}

impl Failure {
    /// The metric's outcome label.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Stale => "stale",
            Failure::Forbidden => "forbidden",
            Failure::Other => "error",
        }
    }
}

/// What a failed request of a round means; `following` is whether it followed a link Graph gave
/// (a refusal of the first request is not a stale token).
pub fn failure(e: &GraphError, following: bool) -> Failure {
    match e {
        GraphError::PermissionDenied { .. } => Failure::Forbidden,
        _ if following && is_stale_token(e) => Failure::Stale,
        _ => Failure::Other,
    }
}

/// The owners in `tenant` of the objects a round names (changed or removed), each once.
pub fn owners_named(index: &Index, tenant: &str, entries: &[DeltaEntry]) -> Vec<Owner> {
    let mut owners: Vec<Owner> = entries
        .iter()
        .flat_map(|e| index.owners_of(tenant, e.ids()))
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::drift::TenantSource;

    #[test]
    fn a_tenant_is_watched_while_rounds_end_well_and_graph_allows_delta() {
        let now = Instant::now();
        let poll = Some(Duration::from_secs(60));
        let ago = |s| now - Duration::from_secs(s);
        assert!(watching(poll, Some(ago(5)), false, now));
        assert!(
            watching(poll, Some(ago(200)), false, now),
            "two missed rounds"
        );
        assert!(!watching(poll, Some(ago(211)), false, now));
        assert!(!watching(poll, None, false, now), "no round yet");
        assert!(!watching(poll, Some(ago(5)), true, now), "403");
        assert!(!watching(None, Some(ago(5)), false, now), "disabled");
    }

    #[test]
    fn a_refused_link_is_stale_a_refused_start_is_not_and_403_is_forbidden() {
        let bad = GraphError::BadRequest {
            code: "syncStateNotFound".into(),
            message: "The sync state generation is not found.".into(),
        };
        assert_eq!(failure(&bad, true), Failure::Stale);
        assert_eq!(failure(&bad, false), Failure::Other);
        let denied = GraphError::PermissionDenied {
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges to complete the operation.".into(),
        };
        assert_eq!(failure(&denied, true), Failure::Forbidden);
        assert_eq!(failure(&denied, false), Failure::Forbidden);
        let down = GraphError::Transient {
            status: 503,
            code: String::new(),
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(failure(&down, true), Failure::Other);
    }

    #[test]
    fn entries_name_each_owner_once_and_unowned_ids_nobody() {
        let mut ix = Index::default();
        let src = TenantSource {
            namespace: "ns".into(),
            spec: None,
        };
        let etl = Owner::client("ns", "etl");
        ix.track(etl.clone(), "t", src, &["app", "appid", "sp"]);
        let entry = |id: &str, app_id: Option<&str>| DeltaEntry {
            id: id.into(),
            app_id: app_id.map(String::from),
            removed: None,
        };
        let entries = [
            entry("app", Some("appid")),
            entry("sp", Some("appid")),
            entry("someone-else", Some("other")),
        ];
        assert_eq!(owners_named(&ix, "t", &entries), [etl]);
        assert!(owners_named(&ix, "t", &entries[2..]).is_empty());
        assert!(owners_named(&ix, "other-tenant", &entries).is_empty());
    }
}
