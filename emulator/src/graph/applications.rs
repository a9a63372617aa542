//! `/applications`: list, count, create, get, update (and upsert by uniqueName), delete.
use super::app_payload::apply_app_payload;
use super::app_validation::validate_app;
use super::errors::{GErr, R, denied, quota_exceeded};
use super::lookup::find_app;
use super::odata::{self, check_writable, created, entity, location, no_content, with_location};
use super::pattern::Params;
use super::policy_rules;
use super::read_order::app_as_read;
use super::req::Req;
use crate::state::changes::Collection::{Applications, ServicePrincipals};
use crate::state::quota::{self, Exceeded};
use crate::state::recycle;
use crate::state::store::{self, AppRec, Tenant, fmt_7, now_ms, s};
use crate::state::views::GraphObject;
use axum::http::HeaderValue;
use serde_json::{Value, json};

pub const APP_FILTERABLE: &[&str] = &[
    "id",
    "appId",
    "displayName",
    "identifierUris",
    "tags",
    "publisherDomain",
    "signInAudience",
    "createdDateTime",
    "uniqueName",
    "web",
    "spa",
    "publicClient",
    "info",
    "description",
    "notes",
    "serviceManagementReference",
    "requiredResourceAccess",
    "keyCredentials",
    "passwordCredentials",
    "federatedIdentityCredentials",
    "isFallbackPublicClient",
    "deletedDateTime",
];

/// `{app}` of the route, found (404 otherwise).
fn app(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    find_app(r, t, p.id("app"), false)
}

pub fn list(r: &Req, t: &mut Tenant, _: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .apps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .map(|a| app_as_read(store::app_public_view(a)))
        .collect();
    odata::list_response(r, "applications", items, APP_FILTERABLE)
}

pub fn count(r: &Req, t: &mut Tenant, _: &Params) -> R {
    let n = t
        .apps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .count();
    odata::count(r, n)
}

pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    create_app(r, t, None)
}

fn create_app(r: &Req, t: &mut Tenant, unique_name: Option<&str>) -> R {
    if !r.can_create() {
        return Err(denied());
    }
    check_writable(&r.body, store::APP_WRITABLE, "Application")?;
    let mut body = store::new_application(&t.publisher_domain(), r.now);
    body["signInAudience"] = json!(r.sh.default_sign_in_audience);
    let mut rec = AppRec {
        body,
        ..Default::default()
    };
    apply_app_payload(&mut rec, &r.body, r.now, true)?;
    if let Some(u) = unique_name {
        rec.body["uniqueName"] = json!(u);
    }
    if rec.body["signInAudience"]
        .as_str()
        .is_some_and(|a| a.contains("Personal"))
        && rec.body["api"]["requestedAccessTokenVersion"].is_null()
    {
        rec.body["api"]["requestedAccessTokenVersion"] = json!(2);
    }
    validate_app(t, &rec.body, None, "")?;
    policy_rules::check_app(t, &rec.body, None)?;
    check_directory_quota(r, t)?;
    if r.caller.oid != crate::state::ADMIN_OID {
        rec.owners.push(r.caller.oid.clone());
    }
    rec.visible_from_ms = now_ms() + r.lag;
    let id = s(&rec.body, "id");
    let mut shown = store::app_public_view(&rec);
    shown["createdDateTime"] = json!(fmt_7(r.now));
    t.apps.push(rec);
    t.changes
        .created(Applications, &id, r.now.timestamp_millis());
    quota::record(t, &id, &r.caller.oid);
    let resp = created(r, "applications/$entity", &shown);
    Ok(with_location(resp, &location(r, &t.id, &id, "Application")))
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let i = app(r, t, p)?;
    let v = app_as_read(store::app_public_view(&t.apps[i]));
    let (frag, v) = if r.q.select.is_empty() {
        ("applications/$entity".to_string(), v)
    } else {
        let sel = store::select(&v, &r.q.select);
        let cols: Vec<String> = sel
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        (format!("applications({})/$entity", cols.join(",")), sel)
    };
    Ok(entity(r, &frag, &v))
}

/// PATCH; by `uniqueName` with `Prefer: create-if-missing` it creates the application if none has
/// that name (even one not replicated yet counts).
pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let a = p.id("app");
    let is_unique = a.is_key("uniqueName");
    let i = match find_app(r, t, a, is_unique) {
        Ok(i) => i,
        Err(_) if is_unique && r.prefer_create() => {
            let mut resp = create_app(r, t, Some(a.value()))?;
            resp.headers_mut().insert(
                "Preference-Applied",
                HeaderValue::from_static("create-if-missing"),
            );
            return Ok(resp);
        }
        Err(e) => return Err(e),
    };
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    check_writable(&r.body, store::APP_WRITABLE, "Application")?;
    let old = t.apps[i].body.clone();
    let mut rec = t.apps[i].clone();
    apply_app_payload(&mut rec, &r.body, r.now, false)?;
    let id = s(&old, "id");
    validate_app(t, &rec.body, Some(&old), &id)?;
    policy_rules::check_app(t, &rec.body, Some(&old))?;
    let app_id = s(&rec.body, "appId");
    let at = r.now.timestamp_millis();
    t.changes.updated(Applications, &id, &old, &rec.body, at);
    t.apps[i] = rec;
    let body = t.apps[i].body.clone();
    for sp in t.sps.iter_mut().filter(|sp| sp.body.app_id() == app_id) {
        let before = sp.body.clone();
        store::sync_sp_from_app(&mut sp.body, &body);
        t.changes
            .updated(ServicePrincipals, sp.id(), &before, &sp.body, at);
    }
    Ok(no_content())
}

/// DELETE (by id, `(appId='…')` or `(uniqueName='…')`): the application and its service
/// principal go to the deleted items for 30 days (`state::recycle` has the sources).
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = app(r, t, p)?;
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    recycle::delete_app(t, i, r.now);
    Ok(no_content())
}

/// One more directory object may be created (`state::quota`): the tenant's quota always; the
/// per-creator cap for a caller without a tenant-wide write permission, when the tenant applies it
/// to applications (`creator_quota_applies_to_apps`; off by default, `state::quota` says why).
pub fn check_directory_quota(r: &Req, t: &Tenant) -> Result<(), GErr> {
    let capped =
        t.quota.creator_applies_to_apps && !r.all() && r.caller.oid != crate::state::ADMIN_OID;
    let creator = capped.then_some(r.caller.oid.as_str());
    quota::check(t, creator).map_err(|e| quota_exceeded(e == Exceeded::Tenant))
}
