//! `Microsoft.Authorization/roleAssignments` and `/roleDefinitions` at any scope: PUT, GET, DELETE
//! and list (`$filter=atScope()`, `principalId eq '…'`, both), with ARM's checks in ARM's order —
//! api-version, token, request shape, the caller's permission at the scope (or a parent), the
//! principal in the directory replica, then name and duplicate rules.
use super::{Assignment, Call, arm_error, json_response, roles};
use crate::request::Caller;
use crate::state::Shared;
use crate::state::views::GraphObject;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

const WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
const DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
const READ: &str = "Microsoft.Authorization/roleAssignments/read";

/// An assignment in ARM's JSON shape (as recorded by Azure Service Operator).
pub fn to_json(a: &Assignment) -> Value {
    json!({"properties": {"roleDefinitionId": a.role_definition_id, "principalId": a.principal_id,
        "principalType": a.principal_type, "scope": a.scope, "condition": a.condition,
        "conditionVersion": a.condition.as_ref().map(|_| "2.0"), "createdOn": a.created_on, "updatedOn": a.created_on,
        "createdBy": a.created_by, "updatedBy": a.updated_by, "delegatedManagedIdentityResourceId": null,
        "description": a.description},
        "id": format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", a.scope, a.name),
        "type": "Microsoft.Authorization/roleAssignments", "name": a.name})
}

/// Whether `caller` holds `action` at `scope` through an assignment at the scope or a parent; for
/// writes and deletes, an ABAC condition on that assignment ("constrain roles": the GUIDs it lists)
/// must admit `role_guid`.
fn allowed(
    sh: &Shared,
    caller: &Caller,
    scope: &str,
    action: &str,
    role_guid: Option<&str>,
) -> bool {
    let arm = sh.arm.lock().unwrap();
    arm.live().any(|a| {
        a.principal_id.eq_ignore_ascii_case(&caller.oid)
            && super::covers(&a.scope, scope)
            && roles::by_definition_id(&a.role_definition_id).is_some_and(|r| r.allows(action))
            && match (&a.condition, role_guid) {
                (Some(c), Some(g)) if action != READ => condition_admits(c, g),
                _ => true,
            }
    })
}

/// The "constrain roles" condition admits the GUIDs it lists (other condition forms are not
/// evaluated: a condition naming no GUID admits nothing).
fn condition_admits(condition: &str, guid: &str) -> bool {
    condition
        .to_ascii_lowercase()
        .contains(&guid.to_ascii_lowercase())
}

fn denied(caller: &Caller, action: &str, scope: &str) -> Response {
    arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!(
            "The client '{}' with object id '{}' does not have authorization or an ABAC condition not fulfilled to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            caller.app_id, caller.oid
        ),
    )
}

pub fn put(sh: &Shared, c: &Call) -> Response {
    let (caller, scope, name, body) = (c.caller, c.scope.as_str(), c.item(), c.body);
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    let p = &v["properties"];
    let (Some(role_def), Some(principal)) =
        (p["roleDefinitionId"].as_str(), p["principalId"].as_str())
    else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content must contain properties.roleDefinitionId and properties.principalId.",
        );
    };
    if uuid::Uuid::parse_str(name).is_err() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRoleAssignmentId",
            &format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        );
    }
    let Some(role) = roles::by_definition_id(role_def) else {
        let guid = role_def.rsplit('/').next().unwrap_or(role_def);
        return arm_error(
            StatusCode::BAD_REQUEST,
            "RoleDefinitionDoesNotExist",
            &format!("The specified role definition with ID '{guid}' does not exist."),
        );
    };
    let full = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    if !allowed(sh, caller, scope, WRITE, Some(role.guid)) {
        return denied(caller, WRITE, &full);
    }
    if let Some(refusal) = principal_unknown(sh, caller, principal) {
        return refusal;
    }
    let principal_type = p["principalType"]
        .as_str()
        .unwrap_or("ServicePrincipal")
        .to_string();
    let mut arm = sh.arm.lock().unwrap();
    let key = name.to_ascii_lowercase();
    if let Some(answer) = existing(&arm, &key, scope, principal, role.guid) {
        return answer;
    }
    let a = Assignment {
        name: name.to_string(),
        scope: scope.to_string(),
        role_definition_id: role_def.to_string(),
        principal_id: principal.to_string(),
        principal_type,
        description: p["description"].as_str().map(str::to_string),
        condition: p["condition"].as_str().map(str::to_string),
        created_on: crate::state::store::fmt_7(chrono::Utc::now()),
        // ARM fills createdBy only on later reads (recorded: null in the 201, the caller after).
        created_by: None,
        updated_by: Some(caller.oid.clone()),
        created_ms: super::now(),
        deleted_ms: None,
    };
    let out = to_json(&a);
    let mut stored = a;
    stored.created_by = Some(caller.oid.clone());
    arm.assignments.insert(key, stored);
    json_response(StatusCode::CREATED, &out)
}

/// The answer when the name or the grant exists already: the same PUT again is 200; the name for
/// another grant is 400 (names are never reused); the grant under another name is 409.
fn existing(
    arm: &crate::state::arm::ArmState,
    key: &str,
    scope: &str,
    principal: &str,
    guid: &str,
) -> Option<Response> {
    let grants = |a: &Assignment| {
        a.scope.eq_ignore_ascii_case(scope)
            && a.principal_id.eq_ignore_ascii_case(principal)
            && roles::by_definition_id(&a.role_definition_id).map(|r| r.guid) == Some(guid)
    };
    if let Some(a) = arm.assignments.get(key).filter(|a| a.deleted_ms.is_none()) {
        if !grants(a) {
            return Some(arm_error(
                StatusCode::BAD_REQUEST,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ));
        }
        return Some(json_response(StatusCode::OK, &to_json(a)));
    }
    let other = arm.live().find(|a| grants(a))?;
    let id = other.name.replace('-', "");
    Some(arm_error(
        StatusCode::CONFLICT,
        "RoleAssignmentExists",
        &format!(
            "The role assignment already exists. The ID of the existing role assignment is {id}."
        ),
    ))
}

/// The principal must be in the caller's directory and visible to ARM's replica, which sees a new
/// service principal `principal_lag_ms` after Graph does; otherwise the 400 to answer.
fn principal_unknown(sh: &Shared, caller: &Caller, principal: &str) -> Option<Response> {
    let lag = sh.arm.lock().unwrap().config.principal_lag_ms as i64;
    let st = sh.store.lock().unwrap();
    let visible = st.tenants.get(&caller.tenant).is_some_and(|t| {
        let sp = t
            .sp_idx(principal)
            .is_some_and(|i| t.sps[i].visible_from_ms + lag <= super::now());
        sp || t
            .users
            .iter()
            .any(|u| u.body.id().eq_ignore_ascii_case(principal))
            || t.groups
                .iter()
                .any(|g| g.body.id().eq_ignore_ascii_case(principal))
    });
    if visible {
        return None;
    }
    Some(arm_error(
        StatusCode::BAD_REQUEST,
        "PrincipalNotFound",
        &format!(
            "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
            principal.replace('-', ""),
            caller.tenant
        ),
    ))
}

fn not_found(name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        &format!("The role assignment '{name}' is not found."),
    )
}

pub fn get(sh: &Shared, c: &Call) -> Response {
    let (caller, scope, name) = (c.caller, c.scope.as_str(), c.item());
    if !allowed(sh, caller, scope, READ, None) {
        return denied(caller, READ, scope);
    }
    let arm = sh.arm.lock().unwrap();
    match arm
        .assignments
        .get(&name.to_ascii_lowercase())
        .filter(|a| a.deleted_ms.is_none() && a.scope.eq_ignore_ascii_case(scope))
    {
        Some(a) => json_response(StatusCode::OK, &to_json(a)),
        None => not_found(name),
    }
}

pub fn delete(sh: &Shared, c: &Call) -> Response {
    let (caller, scope, name) = (c.caller, c.scope.as_str(), c.item());
    let role_guid = {
        let arm = sh.arm.lock().unwrap();
        arm.assignments
            .get(&name.to_ascii_lowercase())
            .filter(|a| a.deleted_ms.is_none())
            .and_then(|a| roles::by_definition_id(&a.role_definition_id))
            .map(|r| r.guid)
    };
    let full = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    if !allowed(sh, caller, scope, DELETE, role_guid) {
        return denied(caller, DELETE, &full);
    }
    let mut arm = sh.arm.lock().unwrap();
    match arm
        .assignments
        .get_mut(&name.to_ascii_lowercase())
        .filter(|a| a.deleted_ms.is_none() && a.scope.eq_ignore_ascii_case(scope))
    {
        Some(a) => {
            a.deleted_ms = Some(super::now());
            json_response(StatusCode::OK, &to_json(a))
        }
        // "already deleted or does not exist"
        None => {
            let mut r = axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT);
            super::arm_headers(r.headers_mut());
            r
        }
    }
}

/// A parsed `$filter`: `atScope()`, `principalId eq '{id}'`, `assignedTo('{id}')`, joined by `and`.
struct Filter {
    at_scope: bool,
    principal: Option<String>,
}

fn parse_filter(f: Option<&str>) -> Result<Filter, String> {
    let mut out = Filter {
        at_scope: false,
        principal: None,
    };
    let Some(f) = f.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(out);
    };
    for part in f.split(" and ") {
        let p = part.trim();
        let quoted = |s: &str| s.trim().trim_matches('\'').to_string();
        if p.eq_ignore_ascii_case("atScope()") {
            out.at_scope = true;
        } else if let Some(v) = p.strip_prefix("principalId eq ") {
            out.principal = Some(quoted(v));
        } else if let Some(v) = p
            .strip_prefix("assignedTo(")
            .and_then(|v| v.strip_suffix(')'))
        {
            out.principal = Some(quoted(v));
        } else {
            return Err(format!(
                "The filter '{f}' is not supported. Supported filters are atScope(), principalId eq '{{id}}' and assignedTo('{{id}}')."
            ));
        }
    }
    Ok(out)
}

pub fn list(sh: &Shared, c: &Call) -> Response {
    let (caller, scope, filter) = (c.caller, c.scope.as_str(), c.filter.as_deref());
    let f = match parse_filter(filter) {
        Ok(f) => f,
        Err(m) => return arm_error(StatusCode::BAD_REQUEST, "InvalidFilterParameter", &m),
    };
    if !allowed(sh, caller, scope, READ, None) {
        return denied(caller, READ, scope);
    }
    let arm = sh.arm.lock().unwrap();
    let v: Vec<Value> = arm
        .live()
        .filter(|a| {
            let above = super::covers(&a.scope, scope);
            let below = super::covers(scope, &a.scope);
            // atScope(): at or above; otherwise at, above and below.
            (above || (!f.at_scope && below))
                && f.principal
                    .as_ref()
                    .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
        })
        .map(to_json)
        .collect();
    json_response(StatusCode::OK, &json!({"value": v}))
}

pub fn definition(_sh: &Shared, c: &Call) -> Response {
    let (scope, guid) = (c.scope.as_str(), c.item());
    match roles::by_definition_id(guid) {
        Some(r) => json_response(StatusCode::OK, &r.to_json(super::subscription_of(scope))),
        None => arm_error(
            StatusCode::NOT_FOUND,
            "RoleDefinitionDoesNotExist",
            &format!("The specified role definition with ID '{guid}' does not exist."),
        ),
    }
}

pub fn definitions(_sh: &Shared, c: &Call) -> Response {
    let (scope, filter) = (c.scope.as_str(), c.filter.as_deref());
    let name = filter
        .and_then(|f| f.trim().strip_prefix("roleName eq "))
        .map(|v| v.trim().trim_matches('\'').to_string());
    let v: Vec<Value> = roles::ROLES
        .iter()
        .filter(|r| name.as_ref().is_none_or(|n| r.name.eq_ignore_ascii_case(n)))
        .map(|r| r.to_json(super::subscription_of(scope)))
        .collect();
    json_response(StatusCode::OK, &json!({"value": v}))
}
