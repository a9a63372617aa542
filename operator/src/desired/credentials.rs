//! Client-secret lifecycle decisions: keep, rotate, prune (pure).

use std::time::Duration;

use jiff::Timestamp;

use super::naming::CREDENTIAL_NAME_PREFIX;

/// A password credential as listed on the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key_id: String,
    pub display_name: Option<String>,
    pub end: Option<Timestamp>,
}

/// What the output Secret currently holds (already checked to be intact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub key_id: String,
    pub expires: Option<Timestamp>,
    pub written_at: Option<Timestamp>,
    pub previous_key_id: Option<String>,
    pub previous_until: Option<Timestamp>,
}

/// Rotation policy with defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub validity: Duration,
    pub renew_before: Duration,
    pub overlap: Duration,
    /// The tenant's app management policy's longest lifetime for this credential kind, when it caps
    /// it (`desired::app_policy::cap_rotation`): a held credential that outlives it is replaced.
    pub max_lifetime: Option<Duration>,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            validity: Duration::from_secs(365 * 24 * 3600),
            renew_before: Duration::from_secs(30 * 24 * 3600),
            overlap: Duration::from_secs(24 * 3600),
            max_lifetime: None,
        }
    }
}

/// How long after writing a Secret we trust it even if the application does not list its key yet
/// (directory replication lag).
pub const REPLICATION_GRACE: Duration = Duration::from_secs(120);

/// The credential display name for a Secret.
pub fn credential_name(namespace: &str, secret: &str) -> String {
    format!("{CREDENTIAL_NAME_PREFIX}{namespace}/{secret}")
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// Whether the held credential can stay: it exists on the app (or was written moments ago), does
/// not expire within `renew_before`, and does not outlive the policy's cap.
pub fn keep_current(
    held: Option<&Held>,
    listed: &[Listed],
    rot: &Rotation,
    now: Timestamp,
) -> bool {
    let Some(h) = held else { return false };
    let listed_end = listed.iter().find(|l| l.key_id == h.key_id).map(|l| l.end);
    let end = match listed_end {
        Some(end) => end.or(h.expires),
        None => {
            let fresh = h
                .written_at
                .is_some_and(|w| now < add(w, REPLICATION_GRACE));
            if !fresh {
                return false;
            }
            h.expires
        }
    };
    end.is_none_or(|e| add(now, rot.renew_before) < e)
        && !super::app_policy::outlives_cap(end, rot, now)
}

/// Key IDs of operator-owned credentials to remove: ours (display name prefix), not `keep`, and not
/// the previous key within its overlap window.
pub fn to_prune(
    listed: &[Listed],
    keep: &[&str],
    previous: Option<(&str, Timestamp)>,
    now: Timestamp,
) -> Vec<String> {
    listed
        .iter()
        .filter(|l| {
            l.display_name
                .as_deref()
                .is_some_and(|d| d.starts_with(CREDENTIAL_NAME_PREFIX))
        })
        .filter(|l| !keep.contains(&l.key_id.as_str()))
        .filter(|l| {
            !previous.is_some_and(|(k, until)| {
                k == l.key_id && now < until && l.end.is_none_or(|e| now < e)
            })
        })
        .map(|l| l.key_id.clone())
        .collect()
}

/// When a kept credential Graph does not list (yet) must be looked at again: at the end of its
/// replication grace, when it is either listed or gone for good (removed out of band). Without
/// this look, a removal made within the grace would wait for the full resync, since delta reports
/// it only once (the reconcile it triggered kept the credential).
pub fn grace_ends(key_id: &str, written_at: Timestamp, listed: &[Listed]) -> Option<Timestamp> {
    if listed.iter().any(|l| l.key_id == key_id) {
        return None;
    }
    Some(add(written_at, REPLICATION_GRACE))
}

/// When the next reconcile must happen for credential reasons.
pub fn next_check(
    current_end: Option<Timestamp>,
    previous_until: Option<Timestamp>,
    rot: &Rotation,
    now: Timestamp,
) -> Option<Duration> {
    let mut next: Option<Duration> = None;
    let mut consider = |t: Timestamp| {
        let d = t.duration_since(now);
        let d = if d.is_negative() {
            Duration::from_secs(1)
        } else {
            Duration::try_from(d).unwrap_or(Duration::MAX)
        };
        next = Some(next.map_or(d, |n| n.min(d)));
    };
    if let Some(e) = current_end {
        let renew_at = e
            .checked_sub(
                jiff::SignedDuration::try_from(rot.renew_before)
                    .unwrap_or(jiff::SignedDuration::ZERO),
            )
            .unwrap_or(now);
        consider(renew_at);
    }
    if let Some(u) = previous_until {
        consider(u);
    }
    next.map(|d| d.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn listed(k: &str, name: Option<&str>, end: &str) -> Listed {
        Listed {
            key_id: k.into(),
            display_name: name.map(str::to_string),
            end: Some(ts(end)),
        }
    }
    fn held(k: &str, written: &str) -> Held {
        Held {
            key_id: k.into(),
            expires: Some(ts("2027-01-01T00:00:00Z")),
            written_at: Some(ts(written)),
            previous_key_id: None,
            previous_until: None,
        }
    }
    const NOW: &str = "2026-06-01T00:00:00Z";

    #[test]
    fn keeps_a_valid_held_credential_and_renews_before_expiry() {
        let rot = Rotation::default();
        let l = [listed(
            "k1",
            Some("fhir-app-operator:ns/s"),
            "2027-01-01T00:00:00Z",
        )];
        assert!(keep_current(
            Some(&held("k1", "2026-01-01T00:00:00Z")),
            &l,
            &rot,
            ts(NOW)
        ));
        assert!(
            !keep_current(
                Some(&held("k1", "2026-01-01T00:00:00Z")),
                &l,
                &rot,
                ts("2026-12-15T00:00:00Z")
            ),
            "within renewBefore"
        );
        assert!(
            !keep_current(None, &l, &rot, ts(NOW)),
            "no Secret → new credential"
        );
    }

    #[test]
    fn a_key_missing_from_the_app_is_trusted_only_briefly() {
        let rot = Rotation::default();
        assert!(
            keep_current(
                Some(&held("new", "2026-05-31T23:59:30Z")),
                &[],
                &rot,
                ts(NOW)
            ),
            "replication lag"
        );
        assert!(
            !keep_current(
                Some(&held("gone", "2026-05-01T00:00:00Z")),
                &[],
                &rot,
                ts(NOW)
            ),
            "deleted out of band"
        );
    }

    #[test]
    fn prunes_only_our_unheld_credentials_after_overlap() {
        let l = [
            listed(
                "cur",
                Some("fhir-app-operator:ns/s"),
                "2027-01-01T00:00:00Z",
            ),
            listed(
                "prev",
                Some("fhir-app-operator:ns/s"),
                "2027-01-01T00:00:00Z",
            ),
            listed(
                "orphan",
                Some("fhir-app-operator:ns/s"),
                "2027-01-01T00:00:00Z",
            ),
            listed("human", Some("added by hand"), "2027-01-01T00:00:00Z"),
            listed("nameless", None, "2027-01-01T00:00:00Z"),
        ];
        let p = to_prune(
            &l,
            &["cur"],
            Some(("prev", ts("2026-06-02T00:00:00Z"))),
            ts(NOW),
        );
        assert_eq!(p, vec!["orphan".to_string()]);
        let p = to_prune(
            &l,
            &["cur"],
            Some(("prev", ts("2026-06-02T00:00:00Z"))),
            ts("2026-06-03T00:00:00Z"),
        );
        assert_eq!(p, vec!["prev".to_string(), "orphan".to_string()]);
    }

    #[test]
    fn an_unlisted_kept_key_is_checked_again_when_its_grace_ends() {
        let written = ts(NOW);
        let listed = |k: &str| Listed {
            key_id: k.into(),
            display_name: None,
            end: None,
        };
        assert_eq!(grace_ends("k", written, &[listed("k")]), None);
        assert_eq!(
            grace_ends("k", written, &[listed("other")]),
            Some(add(written, REPLICATION_GRACE))
        );
    }

    #[test]
    fn next_check_is_the_earlier_of_renewal_and_overlap_end() {
        let rot = Rotation {
            validity: Duration::from_secs(3600),
            renew_before: Duration::from_secs(600),
            overlap: Duration::from_secs(60),
            max_lifetime: None,
        };
        let n = next_check(Some(ts("2026-06-01T01:00:00Z")), None, &rot, ts(NOW)).unwrap();
        assert_eq!(n, Duration::from_secs(3000));
        let n = next_check(
            Some(ts("2026-06-01T01:00:00Z")),
            Some(ts("2026-06-01T00:01:00Z")),
            &rot,
            ts(NOW),
        )
        .unwrap();
        assert_eq!(n, Duration::from_secs(60));
        assert_eq!(next_check(None, None, &rot, ts(NOW)), None);
    }
}
