//! `/oauth2PermissionGrants`: delegated permission grants (admin consent for all principals, or a
//! user's own). Not to be confused with `crate::grants`, the token endpoint's grant types.
use super::errors::{GErr, R, denied, err, invalid_value, not_found};
use super::odata::{check_writable, created, entity, list_response, no_content};
use super::pattern::Params;
use super::req::Req;
use crate::state::store::{Grant, Tenant, s, to_json};
use axum::http::StatusCode;
use serde_json::Value;

/// The request's `scope` (a string of space-separated values), or `current` when it has none.
fn scope(r: &Req, current: &str) -> Result<String, GErr> {
    match r.body.get("scope") {
        None => Ok(current.to_string()),
        Some(Value::String(sc)) => Ok(sc.clone()),
        Some(_) => Err(invalid_value("scope", "OAuth2PermissionGrant")),
    }
}

/// Index of the grant of the route.
fn find(t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let id = p.id("grant").value();
    t.grants
        .iter()
        .position(|g| g.id == id)
        .ok_or_else(|| not_found(id))
}

fn may_write(r: &Req) -> bool {
    r.has_any(&[
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.ReadWrite.All",
    ])
}
fn check_read(r: &Req) -> Result<(), GErr> {
    if may_write(r) || r.can_read() {
        Ok(())
    } else {
        Err(denied())
    }
}
fn check_write(r: &Req) -> Result<(), GErr> {
    if may_write(r) { Ok(()) } else { Err(denied()) }
}

pub fn list(r: &Req, t: &mut Tenant, _: &Params) -> R {
    check_read(r)?;
    list_response(
        r,
        "oauth2PermissionGrants",
        t.grants.iter().map(to_json).collect(),
        &["clientId", "resourceId", "consentType", "principalId", "id"],
    )
}

pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    check_write(r)?;
    check_writable(
        &r.body,
        &[
            "clientId",
            "consentType",
            "principalId",
            "resourceId",
            "scope",
            "startTime",
            "expiryTime",
        ],
        "OAuth2PermissionGrant",
    )?;
    let client = s(&r.body, "clientId");
    let resource = s(&r.body, "resourceId");
    let consent = s(&r.body, "consentType");
    let principal = r
        .body
        .get("principalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if t.sp_idx(&client).is_none() {
        return Err(not_found(&client));
    }
    if t.sp_idx(&resource).is_none() {
        return Err(not_found(&resource));
    }
    match (consent.as_str(), &principal) {
        ("AllPrincipals", None) | ("Principal", Some(_)) => {}
        _ => return Err(invalid_value("consentType", "OAuth2PermissionGrant")),
    }
    let g = Grant::new(&client, &resource, principal.as_deref(), scope(r, "")?);
    if t.grants.iter().any(|x| x.id == g.id) {
        return Err(err(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "Permission entry already exists.",
        ));
    }
    let shown = to_json(&g);
    t.grants.push(g);
    Ok(created(r, "oauth2PermissionGrants/$entity", &shown))
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    check_read(r)?;
    let g = &t.grants[find(t, p)?];
    Ok(entity(r, "oauth2PermissionGrants/$entity", &to_json(g)))
}

/// PATCH: only the scope changes (startTime and expiryTime are accepted and ignored).
pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    check_write(r)?;
    check_writable(
        &r.body,
        &["scope", "startTime", "expiryTime"],
        "OAuth2PermissionGrant",
    )?;
    let i = find(t, p)?;
    t.grants[i].scope = scope(r, &t.grants[i].scope)?;
    Ok(no_content())
}

pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    check_write(r)?;
    let id = p.id("grant").value();
    let before = t.grants.len();
    t.grants.retain(|g| g.id != id);
    if before == t.grants.len() {
        return Err(not_found(id));
    }
    Ok(no_content())
}
