//! The tenant's deleted items: soft delete, restore, purge and the 30-day expiry of applications and
//! service principals (docs/entra-facts/lifecycle-and-policies.md §1 has every source).
//!
//! - Deleting an application moves it "to a temporary container" where it "can be restored within
//!   30 days" (Learn `application-delete`), and "deleting an application object will also delete
//!   its home tenant service principal object" (Learn `recover-deleted-apps-faq`; Azure/ARO-HCP#6781:
//!   "Deleting an application through Microsoft Graph only soft-deletes it and its service
//!   principal"). Each keeps its own `deletedDateTime`.
//! - After 30 days an item is deleted for good; the interval cannot be configured (Learn
//!   `directory-deleteditems-restore`, `delete-recover-faq`).
//! - A service principal's app role assignments and consents "are restored alongside" it (Learn
//!   `howto-restore-app`), so they are set aside with it rather than dropped. [INF] those whose other
//!   side is still deleted wait with that side and come back when both are live.
use super::basics::{fmt_secs, now_ms, parse_time};
use super::changes::Collection::{Applications, ServicePrincipals};
use super::store::{AppRec, DeletedSp, Tenant};
use super::views::GraphObject;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// How long a deleted application or service principal can be restored.
pub const RETENTION_DAYS: i64 = 30;

/// Soft-deletes the application at `i` and its service principal(s) in this tenant.
pub fn delete_app(t: &mut Tenant, i: usize, now: DateTime<Utc>) {
    let mut rec = t.apps.remove(i);
    rec.body["deletedDateTime"] = json!(fmt_secs(now));
    // [INF] as for a service principal's (below): policies are not recovered (facts §1.3).
    t.app_policies.forget(rec.id());
    let app_id = rec.app_id().to_string();
    let sp_ids: Vec<String> = t
        .sps
        .iter()
        .filter(|sp| sp.app_id() == app_id)
        .map(|sp| sp.id().to_string())
        .collect();
    for id in &sp_ids {
        delete_sp(t, id, now);
    }
    t.changes
        .removed(Applications, rec.id(), now.timestamp_millis());
    t.deleted_apps.push(rec);
}

/// Soft-deletes a service principal, setting aside the assignments and grants it is a side of.
pub fn delete_sp(t: &mut Tenant, id: &str, now: DateTime<Utc>) {
    let Some(i) = t.sp_idx(id) else { return };
    let mut rec = t.sps.remove(i);
    rec.body["deletedDateTime"] = json!(fmt_secs(now));
    // "Policies can't be recovered currently. When you restore a service principal, you have to
    // configure the policies again" (Learn `delete-recover-faq`): its app management policy
    // assignment is dropped, not set aside.
    t.app_policies.forget(id);
    // [INF] the same for its claims-mapping policy (same page; the policies are alike).
    t.claims_policies.forget(id);
    let (assignments, kept) = std::mem::take(&mut t.assignments)
        .into_iter()
        .partition(|a| a.principal_id == id || a.resource_id == id);
    t.assignments = kept;
    let (grants, kept) = std::mem::take(&mut t.grants)
        .into_iter()
        .partition(|g| g.client_id == id || g.resource_id == id);
    t.grants = kept;
    t.changes
        .removed(ServicePrincipals, id, now.timestamp_millis());
    t.deleted_sps.push(DeletedSp {
        rec,
        assignments,
        grants,
    });
}

/// Where a deleted item of this id is, if it is one.
pub enum Deleted {
    App(usize),
    Sp(usize),
}

pub fn find(t: &Tenant, id: &str) -> Option<Deleted> {
    if let Some(j) = t.deleted_apps.iter().position(|a| a.id() == id) {
        return Some(Deleted::App(j));
    }
    t.deleted_sps
        .iter()
        .position(|d| d.rec.id() == id)
        .map(Deleted::Sp)
}

/// The deleted application at `j`, back among the applications (the caller checked it may be).
pub fn restore_app(t: &mut Tenant, j: usize) -> &AppRec {
    let mut rec = t.deleted_apps.remove(j);
    rec.body["deletedDateTime"] = serde_json::Value::Null;
    t.changes.created(Applications, rec.id(), now_ms());
    t.apps.push(rec);
    t.apps.last().unwrap()
}

/// The deleted service principal at `j`, back with its assignments and grants whose other side is
/// live; those whose other side is still deleted move to that side's record.
pub fn restore_sp(t: &mut Tenant, j: usize) {
    let DeletedSp {
        mut rec,
        assignments,
        grants,
    } = t.deleted_sps.remove(j);
    rec.body["deletedDateTime"] = serde_json::Value::Null;
    let id = rec.id().to_string();
    t.changes.created(ServicePrincipals, &id, now_ms());
    t.sps.push(rec);
    let other = |a: &str, b: &str| {
        if a == id {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    put_back(
        t,
        assignments,
        |a| other(&a.principal_id, &a.resource_id),
        |t| &mut t.assignments,
        |d| &mut d.assignments,
    );
    put_back(
        t,
        grants,
        |g| other(&g.client_id, &g.resource_id),
        |t| &mut t.grants,
        |d| &mut d.grants,
    );
}

/// Each item back among the live ones if its other side is live, else with that side's deleted
/// record, else (that side was purged) dropped.
fn put_back<T>(
    t: &mut Tenant,
    items: Vec<T>,
    other_side: impl Fn(&T) -> String,
    live: fn(&mut Tenant) -> &mut Vec<T>,
    held: fn(&mut DeletedSp) -> &mut Vec<T>,
) {
    for item in items {
        match side(t, &other_side(&item)) {
            Side::Live => live(t).push(item),
            Side::Deleted(k) => held(&mut t.deleted_sps[k]).push(item),
            Side::Gone => {}
        }
    }
}

enum Side {
    Live,
    Deleted(usize),
    Gone,
}

/// The other side of an assignment or grant: a live object (service principal, user or group), a
/// deleted service principal, or nothing any more (purged).
fn side(t: &Tenant, id: &str) -> Side {
    if t.sp_idx(id).is_some()
        || t.users.iter().any(|u| u.id() == id)
        || t.groups.iter().any(|g| g.id() == id)
    {
        return Side::Live;
    }
    match t.deleted_sps.iter().position(|d| d.rec.id() == id) {
        Some(k) => Side::Deleted(k),
        None => Side::Gone,
    }
}

/// Permanently deletes a deleted item. Purging an application does not purge its service
/// principal, which stays deleted until its own 30 days are over (Learn `howto-restore-app`).
pub fn purge(t: &mut Tenant, which: Deleted) {
    match which {
        Deleted::App(j) => {
            let gone = t.deleted_apps.remove(j);
            t.creators.remove(gone.id());
            t.changes.removed(Applications, gone.id(), now_ms());
        }
        Deleted::Sp(j) => {
            let gone = t.deleted_sps.remove(j);
            t.creators.remove(gone.rec.id());
            t.changes
                .removed(ServicePrincipals, gone.rec.id(), now_ms());
        }
    }
}

/// Deletes for good what was deleted 30 days or more before `now`; returns how many.
pub fn expire(t: &mut Tenant, now: DateTime<Utc>) -> usize {
    let live = |v: &serde_json::Value| {
        v["deletedDateTime"]
            .as_str()
            .and_then(parse_time)
            .is_some_and(|d| d + Duration::days(RETENTION_DAYS) > now)
    };
    let (apps, sps) = (&mut t.deleted_apps, &mut t.deleted_sps);
    let gone_apps: Vec<String> = apps
        .extract_if(.., |a| !live(&a.body))
        .map(|a| a.id().to_string())
        .collect();
    let gone_sps: Vec<String> = sps
        .extract_if(.., |d| !live(&d.rec.body))
        .map(|d| d.rec.id().to_string())
        .collect();
    let expired = gone_apps.len() + gone_sps.len();
    // Gone for good: delta says `deleted` from now on (Learn `delta-query-overview`).
    let at = now.timestamp_millis();
    gone_apps
        .iter()
        .for_each(|id| t.changes.removed(Applications, id, at));
    gone_sps
        .iter()
        .for_each(|id| t.changes.removed(ServicePrincipals, id, at));
    if expired > 0 {
        // The per-creator count forgets what is gone for good (`super::quota`).
        let held: std::collections::HashSet<String> = super::quota::held_ids(t)
            .into_iter()
            .map(str::to_string)
            .collect();
        t.creators.retain(|id, _| held.contains(id));
    }
    expired
}

/// Makes every deleted item `days` older (the admin API's clock for deleted items).
pub fn age(t: &mut Tenant, days: i64) {
    let older = |v: &mut serde_json::Value| {
        if let Some(d) = v["deletedDateTime"].as_str().and_then(parse_time) {
            v["deletedDateTime"] = json!(fmt_secs(d - Duration::days(days)));
        }
    };
    t.deleted_apps.iter_mut().for_each(|a| older(&mut a.body));
    t.deleted_sps
        .iter_mut()
        .for_each(|d| older(&mut d.rec.body));
}

/// Whether a deleted application holds `unique_name` (compared as Graph does, ignoring case).
pub fn holds_unique_name(t: &Tenant, unique_name: &str, except_id: &str) -> bool {
    t.deleted_apps.iter().any(|a| {
        a.id() != except_id
            && a.unique_name()
                .is_some_and(|x| x.eq_ignore_ascii_case(unique_name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::{Assignment, Grant, SpRec, new_application, new_service_principal};

    fn tenant_with_app() -> (Tenant, String, String) {
        let mut t = Tenant::new("72f988bf-0000-4000-8000-000000000001", vec![], false);
        let now = Utc::now();
        let app = new_application("contoso.onmicrosoft.com", now);
        let sp = new_service_principal(&app, &t.id, now);
        let (app_id, sp_id) = (
            app["id"].as_str().unwrap().to_string(),
            sp["id"].as_str().unwrap().to_string(),
        );
        let graph_sp = t.sps[0].id().to_string();
        t.apps.push(AppRec {
            body: app,
            ..Default::default()
        });
        t.sps.push(SpRec {
            body: sp.clone(),
            owners: vec![],
            visible_from_ms: 0,
            secrets: vec![],
        });
        t.assignments.push(Assignment::new(
            &sp_id,
            "ServicePrincipal",
            "c",
            "r",
            &t.sps[0].body.clone(),
            now,
        ));
        t.grants
            .push(Grant::new(&sp_id, &graph_sp, None, "User.Read".into()));
        (t, app_id, sp_id)
    }

    #[test]
    fn delete_restore_and_expire() {
        let (mut t, app_id, sp_id) = tenant_with_app();
        let now = Utc::now();
        let i = t.app_idx(&app_id).unwrap();
        delete_app(&mut t, i, now);
        assert!(t.apps.is_empty() && t.sp_idx(&sp_id).is_none());
        assert!(t.assignments.is_empty() && t.grants.is_empty());
        assert_eq!(t.deleted_sps[0].assignments.len(), 1);
        let Some(Deleted::App(j)) = find(&t, &app_id) else {
            panic!()
        };
        restore_app(&mut t, j);
        assert!(
            t.sp_idx(&sp_id).is_none(),
            "restoring the app leaves its SP deleted"
        );
        let Some(Deleted::Sp(j)) = find(&t, &sp_id) else {
            panic!()
        };
        restore_sp(&mut t, j);
        assert_eq!((t.assignments.len(), t.grants.len()), (1, 1));
        assert!(t.sps.iter().all(|s| s.body["deletedDateTime"].is_null()));
        let i = t.app_idx(&app_id).unwrap();
        delete_app(&mut t, i, now);
        assert_eq!(expire(&mut t, now + Duration::days(29)), 0);
        age(&mut t, 1);
        assert_eq!(expire(&mut t, now + Duration::days(29)), 2);
        assert!(find(&t, &app_id).is_none() && find(&t, &sp_id).is_none());
    }
}
