//! `/directory/deletedItems`: deleted applications, listed by type, read, purged or restored.
use super::app_validation::validate_app;
use super::applications::APP_FILTERABLE;
use super::errors::{GErr, R, denied, not_found};
use super::odata::{entity, list_response, no_content, with_context_type};
use super::pattern::Params;
use super::req::Req;
use crate::state::store::{self, Tenant, s};
use crate::state::views::GraphObject;
use serde_json::Value;

/// GET `…/deletedItems/microsoft.graph.{type}` (only applications are kept).
pub fn list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let cast = p.wild();
    let items: Vec<Value> = if cast == "microsoft.graph.application" {
        t.deleted_apps.iter().map(store::app_public_view).collect()
    } else {
        vec![]
    };
    list_response(
        r,
        &format!("directory/deletedItems/{cast}"),
        items,
        APP_FILTERABLE,
    )
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let a = &t.deleted_apps[find(t, p)?];
    let shown = with_context_type("#microsoft.graph.application", &store::app_public_view(a));
    Ok(entity(r, "directory/deletedItems/$entity", &shown))
}

/// Index of the deleted application of the route.
fn find(t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let id = p.id("deleted").value();
    t.deleted_apps
        .iter()
        .position(|a| a.body.id() == id)
        .ok_or_else(|| not_found(id))
}

/// Index of the deleted application of the route, which the caller may change.
fn writable(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let j = find(t, p)?;
    if !r.can_write(&t.deleted_apps[j].owners) {
        return Err(denied());
    }
    Ok(j)
}

pub fn purge(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let j = writable(r, t, p)?;
    t.deleted_apps.remove(j);
    Ok(no_content())
}

/// POST `…/restore`: back among the applications, if it is still valid there.
pub fn restore(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let j = writable(r, t, p)?;
    let mut rec = t.deleted_apps[j].clone();
    rec.body["deletedDateTime"] = Value::Null;
    validate_app(t, &rec.body, None, &s(&rec.body, "id")).map_err(|mut e| {
        e.message = format!("The object cannot be restored: {}", e.message);
        e
    })?;
    t.deleted_apps.remove(j);
    let shown = with_context_type(
        "#microsoft.graph.application",
        &store::app_public_view(&rec),
    );
    t.apps.push(rec);
    Ok(entity(r, "directoryObjects/$entity", &shown))
}
