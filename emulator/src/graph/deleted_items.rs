//! `/directory/deletedItems`: deleted applications and service principals, listed by type, read,
//! restored or purged (Learn `directory-deleteditems-list`, `-get`, `-restore`, `-delete`; the
//! state's side, with the 30 days, is `state::recycle`).
use super::app_validation::validate_app;
use super::applications::APP_FILTERABLE;
use super::errors::{GErr, R, bad, denied, not_found};
use super::odata::{entity, list_response, no_content, with_context_type};
use super::pattern::Params;
use super::req::Req;
use super::service_principals::{SP_FILTERABLE, sp_name_in_use};
use crate::state::recycle::{self, Deleted};
use crate::state::store::{self, Tenant};
use crate::state::views::GraphObject;
use serde_json::Value;

const APP_TYPE: &str = "#microsoft.graph.application";
const SP_TYPE: &str = "#microsoft.graph.servicePrincipal";

/// GET `…/deletedItems/microsoft.graph.{type}` with the cast type's query options (`$filter`,
/// e.g. `appId eq '…'` on service principals as Learn `restore-application` shows). Needs
/// Application.Read.All (or more). Other types (users, groups) are never deleted here: empty.
pub fn list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let cast = p.wild();
    let (items, filterable): (Vec<Value>, &[&str]) = match cast {
        "microsoft.graph.application" => (
            t.deleted_apps.iter().map(store::app_public_view).collect(),
            APP_FILTERABLE,
        ),
        "microsoft.graph.servicePrincipal" => (
            t.deleted_sps.iter().map(|d| d.rec.body.clone()).collect(),
            SP_FILTERABLE,
        ),
        _ => (vec![], &[]),
    };
    list_response(
        r,
        &format!("directory/deletedItems/{cast}"),
        items,
        filterable,
    )
}

/// GET `…/deletedItems/{id}`: the deleted object with its `@odata.type`.
pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let shown = match find(t, p)? {
        Deleted::App(j) => with_context_type(APP_TYPE, &store::app_public_view(&t.deleted_apps[j])),
        Deleted::Sp(j) => with_context_type(SP_TYPE, &t.deleted_sps[j].rec.body),
    };
    Ok(entity(r, "directoryObjects/$entity", &shown))
}

fn find(t: &Tenant, p: &Params) -> Result<Deleted, GErr> {
    let id = p.id("deleted").value();
    recycle::find(t, id).ok_or_else(|| not_found(id))
}

/// The deleted item of the route, which the caller may change: Application.ReadWrite.All, or
/// OwnedBy on an object it owns (the owner link survives the delete; facts §1.1).
fn writable(r: &Req, t: &Tenant, p: &Params) -> Result<Deleted, GErr> {
    let which = find(t, p)?;
    let owners = match which {
        Deleted::App(j) => &t.deleted_apps[j].owners,
        Deleted::Sp(j) => &t.deleted_sps[j].rec.owners,
    };
    if !r.can_write(owners) {
        return Err(denied());
    }
    Ok(which)
}

/// DELETE `…/deletedItems/{id}`: gone for good, 204. An application's service principal is not
/// purged with it (Learn `howto-restore-app`).
pub fn purge(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let which = writable(r, t, p)?;
    recycle::purge(t, which);
    Ok(no_content())
}

/// POST `…/restore` (no body): 200 with the object. Restoring an application does not restore its
/// service principal: "You must call this API to explicitly restore the deleted service principal"
/// (Learn `directory-deleteditems-restore`).
pub fn restore(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let shown = match writable(r, t, p)? {
        Deleted::App(j) => restore_app(t, j)?,
        Deleted::Sp(j) => restore_sp(t, j)?,
    };
    Ok(entity(r, "directoryObjects/$entity", &shown))
}

/// The application, if it is still valid among the live ones (a restore fails on an identifier URI
/// another application took: the support-wiki copy, facts §1.4).
fn restore_app(t: &mut Tenant, j: usize) -> Result<Value, GErr> {
    let mut body = t.deleted_apps[j].body.clone();
    body["deletedDateTime"] = Value::Null;
    let id = t.deleted_apps[j].id().to_string();
    validate_app(t, &body, None, &id).map_err(|mut e| {
        e.message = format!("The object cannot be restored: {}", e.message);
        e
    })?;
    let rec = recycle::restore_app(t, j);
    Ok(with_context_type(APP_TYPE, &store::app_public_view(rec)))
}

/// The service principal, once its application is live again: "Cannot restore ServicePrincipal
/// without backing Application <appid>" (support-wiki copy, facts §1.2; its status is not known,
/// [INF] 400 as Graph's other refused writes), and not while another live one has its appId (409).
fn restore_sp(t: &mut Tenant, j: usize) -> Result<Value, GErr> {
    let sp = &t.deleted_sps[j].rec;
    let app_id = sp.app_id().to_string();
    let home_tenant = sp.text("appOwnerOrganizationId") == t.id;
    if home_tenant && t.app_idx_by_app_id(&app_id).is_none() {
        return Err(bad(format!(
            "Cannot restore ServicePrincipal without backing Application {app_id}"
        )));
    }
    if t.sp_idx_by_app_id(&app_id).is_some() {
        return Err(sp_name_in_use(&app_id));
    }
    recycle::restore_sp(t, j);
    let shown = t.sps.last().map(|s| s.body.clone()).unwrap_or_default();
    Ok(with_context_type(SP_TYPE, &shown))
}
