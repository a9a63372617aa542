//! `GET /users`, `/users/{id|upn}`, `/users/{id}/appRoleAssignments`, `/groups`, `/groups/{id}`,
//! `/groups/{id}/members` (reads; users and groups come from the config and the admin API, groups
//! also from `POST /groups`, see groups.rs).
use super::errors::{GErr, R, denied, not_found, unsupported};
use super::odata::{entity, list_response};
use super::pattern::Params;
use super::req::Req;
use crate::state::directory::{GroupRec, UserRec};
use crate::state::store::{Tenant, s, to_json};
use crate::state::views::GraphObject;
use serde_json::{Value, json};

fn check_read(r: &Req) -> Result<(), GErr> {
    if r.can_read() { Ok(()) } else { Err(denied()) }
}

/// `{user}` of the route, by id or userPrincipalName.
fn user<'t>(r: &Req, t: &'t Tenant, p: &Params) -> Result<&'t UserRec, GErr> {
    check_read(r)?;
    let id = p.id("user").value();
    t.users
        .iter()
        .find(|u| u.body.id() == id || s(&u.body, "userPrincipalName").eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found(id))
}

fn group<'t>(r: &Req, t: &'t Tenant, p: &Params) -> Result<&'t GroupRec, GErr> {
    check_read(r)?;
    let id = p.id("group").value();
    t.groups
        .iter()
        .find(|g| g.body.id() == id)
        .ok_or_else(|| not_found(id))
}

pub fn users(r: &Req, t: &mut Tenant, _: &Params) -> R {
    check_read(r)?;
    let users = t
        .users
        .iter()
        .map(|u| super::extensions::user_shown(r, t, u))
        .collect();
    list_response(
        r,
        "users",
        users,
        &["id", "userPrincipalName", "displayName"],
    )
}

pub fn user_get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let u = user(r, t, p)?;
    super::extensions::user_entity(r, t, u)
}

pub fn user_assignments(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let id = s(&user(r, t, p)?.body, "id");
    let items = t
        .assignments
        .iter()
        .filter(|a| a.principal_id == id)
        .map(to_json)
        .collect();
    list_response(
        r,
        &format!("users('{id}')/appRoleAssignments"),
        items,
        &["resourceId", "appRoleId"],
    )
}

pub fn user_unsupported(r: &Req, t: &mut Tenant, p: &Params) -> R {
    user(r, t, p)?;
    Err(unsupported())
}

pub fn groups(r: &Req, t: &mut Tenant, _: &Params) -> R {
    check_read(r)?;
    let gs = t.groups.iter().map(|g| g.body.clone()).collect();
    list_response(r, "groups", gs, super::groups::GROUP_FILTERABLE)
}

pub fn group_get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let g = group(r, t, p)?;
    Ok(entity(r, "groups/$entity", &g.body))
}

pub fn group_members(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let g = group(r, t, p)?;
    let items: Vec<Value> = t
        .users
        .iter()
        .filter(|u| g.members.contains(&s(&u.body, "id")))
        .map(|u| {
            let mut v = u.body.clone();
            v["@odata.type"] = json!("#microsoft.graph.user");
            v
        })
        .collect();
    list_response(r, "directoryObjects", items, &["id"])
}

pub fn group_unsupported(r: &Req, t: &mut Tenant, p: &Params) -> R {
    group(r, t, p)?;
    Err(unsupported())
}
