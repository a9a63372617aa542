//! The directory's object quota: per tenant, and per creator where Entra caps one
//! (docs/entra-facts/lifecycle-and-policies.md §2 has every source).
//!
//! - Per tenant: "50,000 Microsoft Entra resources" by default, "300,000" once the tenant has "at
//!   least one verified domain"; the limits "apply to all directory objects … including users,
//!   groups, applications, and service principals" (Learn, Microsoft Entra service limits,
//!   `entra-service-limits-include`). Soft-deleted objects count until purged or expired: "Both
//!   active resources and deleted resources that are available to restore count toward this
//!   quota", and purging frees it at once ("permanently delete … to free up the quota", Learn
//!   `recover-deleted-apps-faq`; Azure/ARO-HCP#6781 purges app-only CI leftovers because
//!   "thousands of recoverable … identities … consumed directory quota"). The same page's "count
//!   … at a value of one-quarter for 30 days" for objects "no longer available to restore" is
//!   about the per-user cap's objects deleted for good; the emulator frees a purged object at once,
//!   as the FAQ says.
//! - Per creator: "A non-admin user can create no more than 250 Microsoft Entra resources" (same
//!   include). Whether app-only callers are capped too, sources conflict: the 2022 FAQ said "Creating
//!   applications using the Microsoft Graph API programmatically using application flow won't have
//!   this restriction" (AD `recover-deleted-apps-faq`, since removed); a 2020 Microsoft answer
//!   (MicrosoftDocs/azure-docs#63468) said "Yes, this applies to service princi[pals]". The one
//!   recorded outcome sides with the FAQ: Azure/ARO-HCP#6781's app-only CI (not a tenant-wide
//!   writer: its sweeper needed a new `Application.ReadWrite.All` identity, ARO-HCP#6871) held
//!   "thousands" of its own soft-deleted apps, far past 250. So the emulator caps only non-admin
//!   users by default (its Graph takes application tokens only, so none today), and a tenant may
//!   opt in to the 2020 reading (`creator_quota_applies_to_apps`) to test a client against it.
use super::store::Tenant;
use super::views::GraphObject;
use std::collections::HashSet;

/// A tenant without a verified domain (self-service sign-up, Free edition).
pub const UNVERIFIED_TENANT_QUOTA: u64 = 50_000;
/// A tenant with at least one verified domain.
pub const VERIFIED_TENANT_QUOTA: u64 = 300_000;
/// Objects one non-admin creator may hold.
pub const CREATOR_QUOTA: u64 = 250;

/// The tenant's configured quotas, kept with the tenant ([`super::store`] depends on no rule).
pub use super::store::Quota;

/// Which quota a create would exceed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Exceeded {
    Tenant,
    Principal,
}

/// The tenant's limit: configured, else by its domains (`*.onmicrosoft.com` is the initial domain,
/// every tenant has it; another one is a verified custom domain).
pub fn tenant_limit(t: &Tenant) -> u64 {
    t.quota.directory.unwrap_or_else(|| {
        if t.domains.iter().any(|d| !d.ends_with(".onmicrosoft.com")) {
            VERIFIED_TENANT_QUOTA
        } else {
            UNVERIFIED_TENANT_QUOTA
        }
    })
}

/// Directory objects the tenant holds, soft-deleted ones included.
pub fn objects(t: &Tenant) -> u64 {
    (t.apps.len() + t.deleted_apps.len() + t.sps.len() + t.deleted_sps.len()) as u64
        + (t.users.len() + t.groups.len()) as u64
}

/// Objects `creator` created that are still held (live or restorable).
pub fn created_by(t: &Tenant, creator: &str) -> u64 {
    let held = held_ids(t);
    t.creators
        .iter()
        .filter(|(id, c)| *c == creator && held.contains(id.as_str()))
        .count() as u64
}

/// The ids of the applications and service principals the tenant holds, live or restorable.
pub fn held_ids(t: &Tenant) -> HashSet<&str> {
    t.apps
        .iter()
        .chain(&t.deleted_apps)
        .map(|a| a.id())
        .chain(t.sps.iter().map(|s| s.id()))
        .chain(t.deleted_sps.iter().map(|d| d.rec.id()))
        .collect()
}

/// Whether one more object may be created; `capped_creator` is the caller when the per-creator
/// cap applies to it.
pub fn check(t: &Tenant, capped_creator: Option<&str>) -> Result<(), Exceeded> {
    if objects(t) >= tenant_limit(t) {
        return Err(Exceeded::Tenant);
    }
    if let Some(c) = capped_creator
        && created_by(t, c) >= t.quota.creator.unwrap_or(CREATOR_QUOTA)
    {
        return Err(Exceeded::Principal);
    }
    Ok(())
}

/// Remembers who created an object, for the per-creator count (an object gone for good is
/// forgotten by `recycle`).
pub fn record(t: &mut Tenant, object_id: &str, creator: &str) {
    t.creators
        .insert(object_id.to_string(), creator.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::{AppRec, new_application};
    use chrono::Utc;

    #[test]
    fn deleted_objects_count_until_purged() {
        let mut t = Tenant::new("72f988bf-0000-4000-8000-000000000001", vec![], false);
        assert_eq!(tenant_limit(&t), UNVERIFIED_TENANT_QUOTA);
        t.domains.push("contoso.example".into());
        assert_eq!(tenant_limit(&t), VERIFIED_TENANT_QUOTA);
        t.quota.directory = Some(objects(&t) + 1);
        t.quota.creator = Some(1);
        assert_eq!(check(&t, Some("me")), Ok(()));
        let app = AppRec {
            body: new_application("contoso.onmicrosoft.com", Utc::now()),
            ..Default::default()
        };
        let id = app.id().to_string();
        t.apps.push(app);
        record(&mut t, &id, "me");
        assert_eq!(check(&t, None), Err(Exceeded::Tenant));
        t.quota.directory = None;
        assert_eq!(check(&t, Some("me")), Err(Exceeded::Principal));
        assert_eq!(check(&t, Some("other")), Ok(()));
        crate::state::recycle::delete_app(&mut t, 0, Utc::now());
        assert_eq!(
            check(&t, Some("me")),
            Err(Exceeded::Principal),
            "a deleted object counts"
        );
        t.deleted_apps.clear();
        assert_eq!(check(&t, Some("me")), Ok(()), "a purged one does not");
    }
}
