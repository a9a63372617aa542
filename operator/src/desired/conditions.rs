//! The one place conditions are computed (kstatus: Ready / Reconciling / Stalled).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Outcome of one reconcile as far as conditions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Everything is in place.
    Ready { message: String },
    /// Work in progress or waiting for something that will come (e.g. the resource app).
    Progressing { reason: String, message: String },
    /// A permanent error that needs a human (e.g. missing Graph permission).
    Stalled { reason: String, message: String },
}

/// New condition list for `phase`. `lastTransitionTime` is kept for a condition whose status did not
/// change; every condition carries `observedGeneration`.
pub fn conditions(
    old: &[Condition],
    phase: &Phase,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let (ready, reconciling, stalled) = match phase {
        Phase::Ready { message } => (
            ("True", "Ready", message.as_str()),
            ("False", "Ready", ""),
            ("False", "Ready", ""),
        ),
        Phase::Progressing { reason, message } => (
            ("False", reason.as_str(), message.as_str()),
            ("True", reason.as_str(), message.as_str()),
            ("False", reason.as_str(), ""),
        ),
        Phase::Stalled { reason, message } => (
            ("False", reason.as_str(), message.as_str()),
            ("False", reason.as_str(), ""),
            ("True", reason.as_str(), message.as_str()),
        ),
    };
    [
        (READY, ready),
        (RECONCILING, reconciling),
        (STALLED, stalled),
    ]
    .into_iter()
    .map(|(ty, c)| condition(old, ty, c, generation, now.clone()))
    .collect()
}

/// Condition `ty` with (status, reason, message); `lastTransitionTime` is the old one's while the
/// status is unchanged, else `now`.
fn condition(
    old: &[Condition],
    ty: &str,
    (status, reason, message): (&str, &str, &str),
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let last_transition_time = match old.iter().find(|c| c.type_ == ty) {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now,
    };
    Condition {
        type_: ty.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The conditions of `list` besides Ready, Reconciling and Stalled (those are recomputed each
/// reconcile; the others, like `AppManagementPolicy`, are set by the step that knows).
pub fn others(list: &[Condition]) -> Vec<Condition> {
    list.iter()
        .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect()
}

/// One more condition of type `ty` in `list`, replacing the old one of that type; its
/// `lastTransitionTime` is kept while its status does not change.
pub fn set(
    list: &mut Vec<Condition>,
    ty: &str,
    value: (&str, &str, &str),
    generation: Option<i64>,
    now: Time,
) {
    let c = condition(list, ty, value, generation, now);
    list.retain(|c| c.type_ != ty);
    list.push(c);
}

/// Whether a condition list says Ready=True for `generation`.
pub fn is_ready(conds: &[Condition], generation: Option<i64>) -> bool {
    conds.iter().any(|c| {
        c.type_ == READY
            && c.status == "True"
            && (generation.is_none() || c.observed_generation == generation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let p = Phase::Progressing {
            reason: "Creating".into(),
            message: "creating app".into(),
        };
        let first = conditions(&[], &p, Some(1), t("2026-01-01T00:00:00Z"));
        let again = conditions(&first, &p, Some(1), t("2026-01-01T00:05:00Z"));
        assert_eq!(
            first, again,
            "same phase → identical conditions → no status write"
        );
        let ready = conditions(
            &again,
            &Phase::Ready {
                message: "ok".into(),
            },
            Some(2),
            t("2026-01-01T00:10:00Z"),
        );
        let r = ready.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (r.status.as_str(), r.observed_generation),
            ("True", Some(2))
        );
        assert_eq!(r.last_transition_time, t("2026-01-01T00:10:00Z"));
        let s = ready.iter().find(|c| c.type_ == STALLED).unwrap();
        assert_eq!(
            s.last_transition_time,
            t("2026-01-01T00:00:00Z"),
            "Stalled stayed False"
        );
        assert!(is_ready(&ready, Some(2)));
        assert!(!is_ready(&ready, Some(3)));
    }

    #[test]
    fn another_condition_keeps_its_transition_time_and_survives_the_three() {
        let mut list = conditions(
            &[],
            &Phase::Ready {
                message: "ok".into(),
            },
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        set(
            &mut list,
            "AppManagementPolicy",
            ("True", "PolicyRead", "a"),
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        set(
            &mut list,
            "AppManagementPolicy",
            ("True", "PolicyRead", "b"),
            Some(2),
            t("2026-01-02T00:00:00Z"),
        );
        let extra = others(&list);
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].message, "b");
        assert_eq!(extra[0].last_transition_time, t("2026-01-01T00:00:00Z"));
        set(
            &mut list,
            "AppManagementPolicy",
            ("Unknown", "PolicyUnreadable", "c"),
            Some(2),
            t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(
            others(&list)[0].last_transition_time,
            t("2026-01-03T00:00:00Z")
        );
        assert_eq!(list.len(), 4);
    }

    #[test]
    fn stalled_sets_ready_false_with_the_message() {
        let c = conditions(
            &[],
            &Phase::Stalled {
                reason: "PermissionDenied".into(),
                message: "grant X".into(),
            },
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        let get = |ty: &str| c.iter().find(|c| c.type_ == ty).unwrap().clone();
        assert_eq!(get(STALLED).status, "True");
        assert_eq!(get(STALLED).message, "grant X");
        assert_eq!(get(READY).status, "False");
        assert_eq!(get(RECONCILING).status, "False");
    }
}
