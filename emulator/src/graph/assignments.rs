//! App role assignments of a service principal: `appRoleAssignedTo` (the principals assigned its
//! roles: service principals, users, groups) and `appRoleAssignments` (the roles it holds).
use super::errors::{GErr, R, bad, denied, not_found};
use super::lookup::find_sp;
use super::odata::{check_writable, created, entity, list_response, no_content};
use super::pattern::Params;
use super::req::Req;
use crate::state::store::{Assignment, Tenant, s, to_json};
use crate::state::views::GraphObject;
use serde_json::Value;

/// Which side of the assignments the path is on.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// `…/appRoleAssignedTo`: the service principal is the resource.
    AssignedTo,
    /// `…/appRoleAssignments`: the service principal is the principal.
    Assignments,
}

/// The service principal of the path, its id and the `@odata.context` fragment of the list.
struct On {
    sp_id: String,
    frag: String,
    side: Side,
}

fn on(r: &Req, t: &Tenant, p: &Params, side: Side) -> Result<On, GErr> {
    let i = find_sp(r, t, p.id("sp"))?;
    let sp_id = s(&t.sps[i].body, "id");
    let frag = format!(
        "servicePrincipals('{sp_id}')/{}",
        match side {
            Side::AssignedTo => "appRoleAssignedTo",
            Side::Assignments => "appRoleAssignments",
        }
    );
    Ok(On { sp_id, frag, side })
}

fn may_write(r: &Req) -> bool {
    r.has_any(&["AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"])
}

pub fn list_assigned_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::AssignedTo)?;
    list(r, t, on)
}
pub fn list_assignments(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::Assignments)?;
    list(r, t, on)
}
pub fn create_assigned_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::AssignedTo)?;
    create(r, t, on)
}
pub fn create_assignment(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::Assignments)?;
    create(r, t, on)
}
pub fn get_assigned_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::AssignedTo)?;
    get(r, t, on, p.id("assignment").value())
}
pub fn get_assignment(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::Assignments)?;
    get(r, t, on, p.id("assignment").value())
}
pub fn delete_assigned_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::AssignedTo)?;
    delete(r, t, on, p.id("assignment").value())
}
pub fn delete_assignment(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let on = on(r, t, p, Side::Assignments)?;
    delete(r, t, on, p.id("assignment").value())
}

fn list(r: &Req, t: &Tenant, on: On) -> R {
    if !r.can_read() && !may_write(r) {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .assignments
        .iter()
        .filter(|a| match on.side {
            Side::AssignedTo => a.resource_id == on.sp_id,
            Side::Assignments => a.principal_id == on.sp_id,
        })
        .map(to_json)
        .collect();
    list_response(
        r,
        &on.frag,
        items,
        &[
            "principalId",
            "resourceId",
            "appRoleId",
            "principalType",
            "id",
        ],
    )
}

fn create(r: &Req, t: &mut Tenant, on: On) -> R {
    if !may_write(r) {
        return Err(denied());
    }
    check_writable(
        &r.body,
        &[
            "principalId",
            "resourceId",
            "appRoleId",
            "principalType",
            "principalDisplayName",
            "resourceDisplayName",
        ],
        "AppRoleAssignment",
    )?;
    let (principal_id, resource_id, role_id) = requested(r, &on)?;
    let (ptype, pname) = principal(r, t, &principal_id, on.side)?;
    let Some(ri) = t
        .sp_idx(&resource_id)
        .filter(|j| r.visible(t.sps[*j].visible_from_ms))
    else {
        return Err(not_found(&resource_id));
    };
    let resource = t.sps[ri].body.clone();
    let member = if ptype == "ServicePrincipal" {
        "Application"
    } else {
        "User"
    };
    if !role_allowed(&resource, &role_id, member) {
        return Err(bad(
            "Permission being assigned was not found on application",
        ));
    }
    if t.assignments.iter().any(|a| {
        a.principal_id == principal_id && a.resource_id == resource_id && a.app_role_id == role_id
    }) {
        return Err(bad(
            "Permission being assigned already exists on the object",
        ));
    }
    let a = Assignment::new(&principal_id, ptype, &pname, &role_id, &resource, r.now);
    let shown = to_json(&a);
    t.assignments.push(a);
    Ok(created(r, &format!("{}/$entity", on.frag), &shown))
}

/// (principalId, resourceId, appRoleId) of the request; the path's service principal must be
/// the side it is on.
fn requested(r: &Req, on: &On) -> Result<(String, String, String), GErr> {
    let field = |k: &str, dflt: &str| {
        r.body
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or(dflt)
            .to_string()
    };
    let assigned_to = on.side == Side::AssignedTo;
    let principal_id = field("principalId", "");
    let resource_id = field("resourceId", if assigned_to { &on.sp_id } else { "" });
    let role_id = field("appRoleId", "");
    if assigned_to && resource_id != on.sp_id {
        return Err(bad(
            "The resourceId in the request body must match the service principal in the request URL.",
        ));
    }
    if !assigned_to && principal_id != on.sp_id {
        return Err(bad(
            "The principalId in the request body must match the service principal in the request URL.",
        ));
    }
    Ok((principal_id, resource_id, role_id))
}

/// (principalType, displayName): a service principal, or (on appRoleAssignedTo) a user or a group.
fn principal(r: &Req, t: &Tenant, id: &str, side: Side) -> Result<(&'static str, String), GErr> {
    let found = match t
        .sp_idx(id)
        .filter(|j| r.visible(t.sps[*j].visible_from_ms))
    {
        Some(pi) => Some(("ServicePrincipal", s(&t.sps[pi].body, "displayName"))),
        None if side == Side::AssignedTo => crate::state::directory::principal(t, id),
        None => None,
    };
    found.ok_or_else(|| not_found(id))
}

/// The role is the default role (all zeros) or an app role of the resource open to `member`.
fn role_allowed(resource: &Value, role_id: &str, member: &str) -> bool {
    role_id == "00000000-0000-0000-0000-000000000000"
        || resource
            .app_roles()
            .any(|r| r.id == role_id && r.allowed_member_types.contains(&member))
}

/// Whether the assignment is `aid` and the path's service principal is on either side of it.
fn is(a: &Assignment, aid: &str, sp_id: &str) -> bool {
    a.id == aid && (a.resource_id == sp_id || a.principal_id == sp_id)
}

fn get(r: &Req, t: &Tenant, on: On, aid: &str) -> R {
    let a = t
        .assignments
        .iter()
        .find(|a| is(a, aid, &on.sp_id))
        .ok_or_else(|| not_found(aid))?;
    Ok(entity(r, &format!("{}/$entity", on.frag), &to_json(a)))
}

fn delete(r: &Req, t: &mut Tenant, on: On, aid: &str) -> R {
    if !may_write(r) {
        return Err(denied());
    }
    let before = t.assignments.len();
    t.assignments.retain(|a| !is(a, aid, &on.sp_id));
    if t.assignments.len() == before {
        return Err(not_found(aid));
    }
    Ok(no_content())
}
