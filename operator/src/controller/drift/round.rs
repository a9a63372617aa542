//! What the watcher does, as pure functions: whether a tenant counts as watched, what a failed
//! round means, which owners a round's entries name.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::index::{Expected, Index, Owner};
use crate::desired::diff;
use crate::graph::GraphError;
use crate::graph::delta::{DeltaEntry, DeltaKind, is_stale_token};

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

/// The owners in `tenant` whose objects a round names and whose reconcile would find something to
/// do, each once: a removal always; a change unless the entry shows exactly what the owner's last
/// reconcile left (the echo of the operator's own write).
pub fn owners_to_reconcile(
    index: &Index,
    tenant: &str,
    kind: DeltaKind,
    entries: &[DeltaEntry],
) -> Vec<Owner> {
    let mut owners: Vec<Owner> = entries
        .iter()
        .flat_map(|e| {
            index
                .owners_of(tenant, e.ids())
                .into_iter()
                .filter(|o| drifted(index.expected(o), kind, e))
        })
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Whether `entry` differs from what the owner's reconcile left in Graph: the converged properties
/// as `desired::diff` compares them when it converges (a PATCH would be sent), and the password or
/// certificate the Secret holds still registered. Only what the entry carries is compared: "Updated
/// instances are represented by their id with at least the properties that have been updated"
/// (Learn `delta-query-overview`, "Resource representation in the delta query response"), so a
/// property it leaves out has not changed since the last round, and every earlier change came as an
/// entry then (a tenant's first round re-reads its owners). Anything not recorded counts as drift
/// (a reconcile costs a few reads; a missed change costs a broken client).
pub fn drifted(expected: Option<&Expected>, kind: DeltaKind, entry: &DeltaEntry) -> bool {
    if entry.removed.is_some() {
        return true;
    }
    let Some(e) = expected else { return true };
    let recorded = match kind {
        DeltaKind::Applications => e.application.as_deref(),
        DeltaKind::ServicePrincipals => e.service_principal.as_deref(),
    };
    let Some(Value::Object(desired)) = recorded.and_then(|j| serde_json::from_str(j).ok()) else {
        return true;
    };
    let carried = |k: &str| entry.properties.contains_key(k);
    let desired: serde_json::Map<String, Value> =
        desired.into_iter().filter(|(k, _)| carried(k)).collect();
    let actual = Value::Object(entry.properties.clone());
    if diff::patch_body(&Value::Object(desired), &actual).is_some() {
        return true;
    }
    let apps = kind == DeltaKind::Applications;
    let accepts = actual.pointer("/api/acceptMappedClaims") == Some(&Value::Bool(true));
    if apps && e.accepts_mapped_claims && carried("api") && !accepts {
        return true;
    }
    let credentials = carried("passwordCredentials") || carried("keyCredentials");
    apps && credentials
        && e.key_id
            .as_deref()
            .is_some_and(|k| !key_registered(&entry.properties, k))
}

/// Whether `key_id` is among the entry's passwords or certificates.
fn key_registered(properties: &serde_json::Map<String, Value>, key_id: &str) -> bool {
    ["passwordCredentials", "keyCredentials"]
        .iter()
        .filter_map(|p| properties.get(*p)?.as_array())
        .flatten()
        .any(|c| c["keyId"].as_str() == Some(key_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::drift::TenantSource;
    use crate::controller::drift::index::Part;
    use serde_json::json;

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

    fn entry(id: &str, app_id: Option<&str>, props: Value) -> DeltaEntry {
        DeltaEntry {
            id: id.into(),
            app_id: app_id.map(String::from),
            removed: None,
            properties: props.as_object().cloned().unwrap_or_default(),
        }
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
        let entries = [
            entry("app", Some("appid"), json!({})),
            entry("sp", Some("appid"), json!({})),
            entry("someone-else", Some("other"), json!({})),
        ];
        let kind = DeltaKind::Applications;
        assert_eq!(owners_to_reconcile(&ix, "t", kind, &entries), [etl]);
        assert!(owners_to_reconcile(&ix, "t", kind, &entries[2..]).is_empty());
        assert!(owners_to_reconcile(&ix, "other-tenant", kind, &entries).is_empty());
    }

    #[test]
    fn accept_mapped_claims_turned_off_out_of_band_is_drift_only_where_the_fhir_user_step_keeps_it()
    {
        let mut ix = Index::default();
        let smart = Owner::client("ns", "smart");
        let selected: Vec<&str> = DeltaKind::Applications.selected().collect();
        ix.expect(
            &smart,
            Part::Application,
            &json!({"displayName": "smart"}),
            &selected,
        );
        let app = |accepts: Value| {
            let props = json!({"displayName": "smart", "api": {"acceptMappedClaims": accepts}});
            entry("o", Some("a"), props)
        };
        let apps = DeltaKind::Applications;
        assert!(
            !drifted(ix.expected(&smart), apps, &app(json!(null))),
            "no claim kept"
        );
        ix.expect_mapped_claims(&smart, true);
        let e = ix.expected(&smart);
        assert!(
            !drifted(e, apps, &app(json!(true))),
            "the echo of the operator's own write"
        );
        assert!(
            drifted(e, apps, &app(json!(false))),
            "turned off: AADSTS50146 for every token"
        );
        assert!(drifted(e, apps, &app(json!(null))));
        let renamed_only = entry("o", Some("a"), json!({"displayName": "smart"}));
        assert!(
            !drifted(e, apps, &renamed_only),
            "api not carried: not changed"
        );
    }

    #[test]
    fn an_echo_of_the_operators_own_write_is_no_drift_and_a_change_or_removal_is() {
        let mut ix = Index::default();
        let etl = Owner::client("ns", "etl");
        let selected: Vec<&str> = DeltaKind::Applications.selected().collect();
        let desired = json!({"displayName": "etl", "uniqueName": "u",
            "web": {"redirectUris": ["https://a/cb"]}, "tags": ["x", "y"]});
        ix.expect(&etl, Part::Application, &desired, &selected);
        ix.expect(
            &etl,
            Part::ServicePrincipal,
            &json!({}),
            &["appRoleAssignmentRequired"],
        );
        ix.expect_key(&etl, Some("k1"));
        let e = ix.expected(&etl);
        let app = |web: Value, keys: &[&str]| {
            let pw: Vec<Value> = keys.iter().map(|k| json!({"keyId": k})).collect();
            entry(
                "o",
                Some("a"),
                json!({"displayName": "etl", "tags": ["y", "x"], "web": web,
                "passwordCredentials": pw, "keyCredentials": [], "api": {}}),
            )
        };
        let apps = DeltaKind::Applications;
        let same = json!({"redirectUris": ["https://a/cb"], "homePageUrl": null});
        assert!(
            !drifted(e, apps, &app(same.clone(), &["k0", "k1"])),
            "own write"
        );
        assert!(drifted(
            e,
            apps,
            &app(json!({"redirectUris": ["https://evil/cb"]}), &["k1"])
        ));
        assert!(
            drifted(e, apps, &app(same.clone(), &["k0"])),
            "password removed"
        );
        let mut removed = app(same, &["k1"]);
        removed.removed = Some(json!({"reason": "changed"}));
        assert!(drifted(e, apps, &removed));
        let partial = entry("o", None, json!({"displayName": "etl"}));
        assert!(
            !drifted(e, apps, &partial),
            "what an updated entry leaves out did not change (Learn: at least the updated properties)"
        );
        let renamed = entry("o", None, json!({"displayName": "evil"}));
        assert!(drifted(e, apps, &renamed), "what it carries is compared");
        let keys_only = entry("o", None, json!({"passwordCredentials": [{"keyId": "k0"}]}));
        assert!(drifted(e, apps, &keys_only), "the Secret's key gone");
        assert!(
            drifted(None, apps, &app(json!({}), &[])),
            "nothing recorded"
        );
        let sps = DeltaKind::ServicePrincipals;
        let sp = entry("sp", Some("a"), json!({"appRoleAssignmentRequired": true}));
        assert!(
            !drifted(e, sps, &sp),
            "a client converges nothing on its service principal"
        );
        let mut api = Index::default();
        let fhir = Owner::resource("ns", "fhir");
        let sel = ["appRoleAssignmentRequired"];
        api.expect(
            &fhir,
            Part::ServicePrincipal,
            &json!({"appRoleAssignmentRequired": false}),
            &sel,
        );
        assert!(drifted(api.expected(&fhir), sps, &sp));
    }
}
