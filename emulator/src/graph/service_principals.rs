//! `/servicePrincipals`: list, count, create (for an application of this tenant, Microsoft's
//! healthcare app, or another tenant's multi-tenant app), get, update, delete, and the service
//! principal's delegated permission grants.
use super::errors::{GErr, R, bad, denied, err};
use super::lookup::find_sp;
use super::odata::{
    self, check_writable, created, deep_merge, entity, list_response, location, no_content,
    with_location,
};
use super::pattern::Params;
use super::req::Req;
use crate::state::changes::Collection::ServicePrincipals;
use crate::state::recycle;
use crate::state::store::{self, SpRec, Tenant, now_ms, s, to_json};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub const SP_FILTERABLE: &[&str] = &[
    "id",
    "appId",
    "displayName",
    "servicePrincipalNames",
    "tags",
    "accountEnabled",
    "servicePrincipalType",
    "appOwnerOrganizationId",
    "alternativeNames",
    "preferredSingleSignOnMode",
    "appRoleAssignmentRequired",
    "createdDateTime",
    "signInAudience",
    "appDisplayName",
    "replyUrls",
    "notificationEmailAddresses",
];

const SP_WRITABLE: &[&str] = &[
    "appId",
    "accountEnabled",
    "appRoleAssignmentRequired",
    "tags",
    "notes",
    "description",
    "displayName",
    "homepage",
    "loginUrl",
    "logoutUrl",
    "notificationEmailAddresses",
    "preferredSingleSignOnMode",
    "replyUrls",
    "alternativeNames",
    "appDescription",
    "servicePrincipalType",
    "keyCredentials",
    "passwordCredentials",
    "samlSingleSignOnSettings",
    "preferredTokenSigningKeyThumbprint",
    "info",
    "addIns",
];

fn sp(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    find_sp(r, t, p.id("sp"))
}

fn can_read(r: &Req) -> bool {
    r.can_read() || r.caller.has("AppRoleAssignment.ReadWrite.All")
}

pub fn list(r: &Req, t: &mut Tenant, _: &Params) -> R {
    if !can_read(r) {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .sps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .map(|x| x.body.clone())
        .collect();
    list_response(r, "servicePrincipals", items, SP_FILTERABLE)
}

pub fn count(r: &Req, t: &mut Tenant, _: &Params) -> R {
    let n = t
        .sps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .count();
    odata::count(r, n)
}

/// The application a new service principal is for: (its body, its home tenant, its owners).
type Backing = (Value, String, Vec<String>);

pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    if !r.can_create() {
        return Err(denied());
    }
    check_writable(&r.body, SP_WRITABLE, "ServicePrincipal")?;
    let app_id = r
        .body
        .get("appId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if app_id.is_empty() {
        return Err(bad(
            "Property 'appId' is required when creating a service principal.",
        ));
    }
    if t.sp_idx_by_app_id(&app_id).is_some() {
        return Err(sp_name_in_use(&app_id));
    }
    if t.app_idx_by_app_id(&app_id).is_none() && app_id == store::HEALTHCARE_APP_ID {
        return create_healthcare_sp(r, t);
    }
    let (app_body, home_tenant, owners) = backing_app(r, t, &app_id)?;
    super::applications::check_directory_quota(r, t)?;
    let sp = new_sp(r, &app_body, &home_tenant);
    let id = s(&sp, "id");
    t.sps.push(SpRec {
        body: sp.clone(),
        owners: sp_owners(r, owners),
        visible_from_ms: now_ms() + r.lag,
        secrets: vec![],
    });
    t.changes
        .created(ServicePrincipals, &id, r.now.timestamp_millis());
    crate::state::quota::record(t, &id, &r.caller.oid);
    let resp = created(r, "servicePrincipals/$entity", &sp);
    Ok(with_location(
        resp,
        &location(r, &t.id, &id, "ServicePrincipal"),
    ))
}

/// A live service principal already has this appId: a create, or a restore of a deleted one (a
/// restore whose names clash with an active service principal fails with 409: the support-wiki
/// copy in docs/entra-facts/lifecycle-and-policies.md §1.4).
pub fn sp_name_in_use(app_id: &str) -> GErr {
    err(
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
        format!(
            "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
        ),
    )
}

/// Importing Microsoft's first-party app (`az ad sp create --id …`) takes more than OwnedBy.
fn create_healthcare_sp(r: &Req, t: &mut Tenant) -> R {
    if !r.all() {
        return Err(denied());
    }
    let sp = store::healthcare_sp(&t.id);
    t.sps.push(SpRec {
        body: sp.clone(),
        owners: vec![],
        visible_from_ms: now_ms() + r.lag,
        secrets: vec![],
    });
    let id = s(&sp, "id");
    t.changes
        .created(ServicePrincipals, &id, r.now.timestamp_millis());
    Ok(created(r, "servicePrincipals/$entity", &sp))
}

/// The application of this tenant (replicated, and the caller may write it), or a multi-tenant
/// application of another tenant (which takes more than OwnedBy).
fn backing_app(r: &Req, t: &Tenant, app_id: &str) -> Result<Backing, GErr> {
    let no_backing = || {
        let mut e = bad(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        ));
        e.details = Some(json!([{"code": "NoBackingApplicationObject", "target": "appId"}]));
        e
    };
    if let Some(i) = t.app_idx_by_app_id(app_id) {
        if !r.visible(t.apps[i].visible_from_ms) {
            return Err(no_backing());
        }
        if !r.can_write(&t.apps[i].owners) {
            return Err(denied());
        }
        let a = &t.apps[i];
        return Ok((a.body.clone(), t.id.clone(), a.owners.clone()));
    }
    let Some((body, home)) = r.foreign_apps.get(app_id).cloned() else {
        return Err(no_backing());
    };
    if !r.all() {
        return Err(err(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "When using this permission, the backing application of the service principal being created must in the local tenant",
        ));
    }
    Ok((body, home, vec![]))
}

/// The new service principal with the writable properties of the request.
fn new_sp(r: &Req, app_body: &Value, home_tenant: &str) -> Value {
    let mut sp = store::new_service_principal(app_body, home_tenant, r.now);
    if let Some(o) = r.body.as_object() {
        for (k, v) in o {
            if k != "appId"
                && SP_WRITABLE.contains(&k.as_str())
                && !matches!(k.as_str(), "keyCredentials" | "passwordCredentials")
            {
                sp[k] = v.clone();
            }
        }
    }
    sp
}

/// The caller (unless it is the tenant admin) and the application's owners.
fn sp_owners(r: &Req, app_owners: Vec<String>) -> Vec<String> {
    let mut owners = vec![];
    if r.caller.oid != crate::state::ADMIN_OID {
        owners.push(r.caller.oid.clone());
    }
    for o in app_owners {
        if !owners.contains(&o) {
            owners.push(o);
        }
    }
    owners
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = sp(r, t, p)?;
    if !can_read(r) {
        return Err(denied());
    }
    let v = store::select(&t.sps[i].body, &r.q.select);
    Ok(entity(r, "servicePrincipals/$entity", &v))
}

pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = sp(r, t, p)?;
    if !r.can_write(&t.sps[i].owners) {
        return Err(denied());
    }
    check_writable(&r.body, SP_WRITABLE, "ServicePrincipal")?;
    let mut patch = r.body.clone();
    if let Some(o) = patch.as_object_mut() {
        o.remove("appId");
        o.remove("keyCredentials");
        o.remove("passwordCredentials");
    }
    let before = t.sps[i].body.clone();
    deep_merge(&mut t.sps[i].body, &patch);
    let id = s(&before, "id");
    let at = r.now.timestamp_millis();
    t.changes
        .updated(ServicePrincipals, &id, &before, &t.sps[i].body, at);
    Ok(no_content())
}

/// DELETE: the service principal goes to the deleted items for 30 days, with the assignments
/// and grants it is a side of (recorded: `test_service_principal_scenario.yaml`, 204). Microsoft
/// Graph's and the healthcare service principals stay.
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = sp(r, t, p)?;
    if !r.can_write(&t.sps[i].owners) {
        return Err(denied());
    }
    if matches!(
        s(&t.sps[i].body, "appId").as_str(),
        store::GRAPH_APP_ID | store::HEALTHCARE_APP_ID
    ) {
        return Err(denied());
    }
    let id = s(&t.sps[i].body, "id");
    recycle::delete_sp(t, &id, r.now);
    Ok(no_content())
}

/// GET `…/oauth2PermissionGrants`: the grants the service principal is the client of.
pub fn permission_grants(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = sp(r, t, p)?;
    if !r.can_read() && !r.caller.has("DelegatedPermissionGrant.ReadWrite.All") {
        return Err(denied());
    }
    let id = s(&t.sps[i].body, "id");
    let items: Vec<Value> = t
        .grants
        .iter()
        .filter(|g| g.client_id == id)
        .map(to_json)
        .collect();
    list_response(
        r,
        "oauth2PermissionGrants",
        items,
        &["clientId", "resourceId", "consentType", "principalId"],
    )
}
