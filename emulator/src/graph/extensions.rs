//! Directory extensions: `/applications/{id}/extensionProperties` (create, list, get, delete) and
//! their values on users (`PATCH /users/{id}`, reads with `$select`). The rules and their sources
//! are in `state::extensions`; the error texts' sources are cited where each is built.
use super::errors::{GErr, R, bad, denied, invalid_value, not_found};
use super::lookup::find_app;
use super::odata::{check_writable, created, entity, list_response, no_content};
use super::pattern::Params;
use super::req::Req;
use crate::state::extensions::{self as ext, DATA_TYPES, TARGET_OBJECTS};
use crate::state::random_guid;
use crate::state::store::{Tenant, UserRec, s};
use crate::state::views::GraphObject;
use serde_json::{Value, json};

fn app_index(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    find_app(r, t, p.id("app"), false)
}

/// A definition as Graph shows it, `appDisplayName` the owner's current name.
fn shown(t: &Tenant, i: usize, def: &Value) -> Value {
    let mut v = def.clone();
    v["appDisplayName"] = json!(t.apps[i].display_name());
    v
}

fn context(t: &Tenant, i: usize) -> String {
    format!("applications('{}')/extensionProperties", t.apps[i].id())
}

/// POST: 201 with the definition (Learn `application-post-extensionproperty`: Application.ReadWrite
/// .OwnedBy on an owned application, or Application.ReadWrite.All / Directory.ReadWrite.All). A
/// name the application already defines: 400 `Request_MultipleObjectsWithSameKeyValue` "An
/// extension property exists with the name {full name}." (CLI for Microsoft 365's
/// `directoryextension-add` tests, find_string id 26285124547; the status is [INF] Graph's for
/// that code). A `dataType` or `targetObjects` value Graph does not list: Graph's invalid-value
/// 400 [INF text]. Name rules beyond "not nullable" are not documented: any non-empty name is
/// taken.
pub fn create(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = app_index(r, t, p)?;
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    check_writable(
        &r.body,
        &["name", "dataType", "targetObjects", "isMultiValued"],
        "ExtensionProperty",
    )?;
    let b = &r.body;
    let name = b["name"].as_str().unwrap_or("").trim();
    if name.is_empty() {
        return Err(invalid_value("name", "ExtensionProperty"));
    }
    let data_type = b["dataType"].as_str().unwrap_or("");
    if !DATA_TYPES.contains(&data_type) {
        return Err(invalid_value("dataType", "ExtensionProperty"));
    }
    let targets = b["targetObjects"].as_array().cloned().unwrap_or_default();
    let known = |x: &Value| x.as_str().is_some_and(|x| TARGET_OBJECTS.contains(&x));
    if targets.is_empty() || !targets.iter().all(known) {
        return Err(invalid_value("targetObjects", "ExtensionProperty"));
    }
    let multi = match &b["isMultiValued"] {
        Value::Null => false,
        Value::Bool(m) => *m,
        _ => return Err(invalid_value("isMultiValued", "ExtensionProperty")),
    };
    let full = ext::full_name(t.apps[i].app_id(), name);
    let taken = t.apps[i].extension_properties.iter().any(|d| {
        d["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&full))
    });
    if taken {
        return Err(bad(format!(
            "An extension property exists with the name {full}."
        ))
        .with_code("Request_MultipleObjectsWithSameKeyValue"));
    }
    let def = json!({"id": random_guid(), "deletedDateTime": null, "appDisplayName": "",
        "dataType": data_type, "isMultiValued": multi, "isSyncedFromOnPremises": false,
        "name": full, "targetObjects": targets});
    t.apps[i].extension_properties.push(def.clone());
    let frag = format!("{}/$entity", context(t, i));
    Ok(created(r, &frag, &shown(t, i, &def)))
}

/// GET: the application's definitions (Application.Read.All or more, Learn
/// `application-list-extensionproperty`).
pub fn list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = app_index(r, t, p)?;
    if !r.can_read() {
        return Err(denied());
    }
    let items = t.apps[i]
        .extension_properties
        .iter()
        .map(|d| shown(t, i, d))
        .collect();
    list_response(r, &context(t, i), items, &["name", "id"])
}

fn def_index(t: &Tenant, i: usize, p: &Params) -> Result<usize, GErr> {
    let id = p.id("ext").value();
    t.apps[i]
        .extension_properties
        .iter()
        .position(|d| d["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| not_found(id))
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = app_index(r, t, p)?;
    if !r.can_read() {
        return Err(denied());
    }
    let j = def_index(t, i, p)?;
    let frag = format!("{}/$entity", context(t, i));
    Ok(entity(
        r,
        &frag,
        &shown(t, i, &t.apps[i].extension_properties[j]),
    ))
}

/// DELETE: 204 (Learn `extensionproperty-delete`). Users keep their values, undiscoverable until a
/// definition of the same name comes back (`state::extensions`).
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = app_index(r, t, p)?;
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    let j = def_index(t, i, p)?;
    t.apps[i].extension_properties.remove(j);
    Ok(no_content())
}

/// The user profile properties a PATCH may set: those the emulator's users hold (Graph's default
/// user properties). Others are refused with a message saying the emulator does not model them.
const USER_WRITABLE: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
];

/// PATCH `/users/{id}`: 204 (Graph `extensibility-overview`). Permission: User.ReadWrite.All or
/// Directory.ReadWrite.All (Microsoft Q&A 1688073). An extension attribute with no discoverable
/// definition for users: 400 "The following extension properties are not available: {names}."
/// (microsoftgraph/msgraph-sdk-dotnet#2680; code and status [INF]); a value of the wrong type:
/// Graph's invalid-value 400 [INF]; `null` removes the value.
pub fn user_update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !r.has_any(&["User.ReadWrite.All", "Directory.ReadWrite.All"]) {
        return Err(denied());
    }
    let id = p.id("user").value().to_string();
    let ui = t
        .users
        .iter()
        .position(|u| {
            u.body.id() == id || s(&u.body, "userPrincipalName").eq_ignore_ascii_case(&id)
        })
        .ok_or_else(|| not_found(&id))?;
    let Some(body) = r.body.as_object() else {
        return Err(bad("Empty Payload. JSON content expected."));
    };
    let mut unavailable = vec![];
    for (k, v) in body {
        if k.starts_with('@') {
            continue;
        }
        if k.to_ascii_lowercase().starts_with("extension_") {
            match ext::definition(t, k).filter(|d| ext::targets_users(d)) {
                None => unavailable.push(k.clone()),
                Some(d) if !ext::value_fits(d, v) => return Err(invalid_value(k, "User")),
                Some(_) => {}
            }
        } else if !USER_WRITABLE.contains(&k.as_str()) {
            return Err(bad(format!(
                "Property '{k}' of resource 'User' is not modelled by the emulator (it keeps {} and directory extensions).",
                USER_WRITABLE.join(", ")
            )));
        }
    }
    if !unavailable.is_empty() {
        return Err(bad(format!(
            "The following extension properties are not available: {}.",
            unavailable.join(",")
        )));
    }
    let u = &mut t.users[ui];
    for (k, v) in body.iter().filter(|(k, _)| !k.starts_with('@')) {
        if k.to_ascii_lowercase().starts_with("extension_") {
            ext::set_value(u, k, v.clone());
        } else {
            u.body[k] = v.clone();
        }
    }
    Ok(no_content())
}

/// A user as a read shows it: extension values are "returned by default through the `beta`
/// endpoint, but only on `$select` through the `v1.0` endpoint" (Graph `extensibility-overview`);
/// a user without a value has no such property ([INF]: Graph omits unset extensions).
pub fn user_shown(r: &Req, t: &Tenant, u: &UserRec) -> Value {
    let mut v = u.body.clone();
    if r.g.ends_with("/beta") || !r.q.select.is_empty() {
        for (name, value) in ext::user_values(t, u) {
            v[name] = value;
        }
    }
    v
}

/// GET `/users/{id}` with `$select` applied (`users(id,extension_…)/$entity`).
pub fn user_entity(r: &Req, t: &Tenant, u: &UserRec) -> R {
    let v = user_shown(r, t, u);
    if r.q.select.is_empty() {
        return Ok(entity(r, "users/$entity", &v));
    }
    let sel = crate::state::store::select(&v, &r.q.select);
    let cols: Vec<String> = sel
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    Ok(entity(
        r,
        &format!("users({})/$entity", cols.join(",")),
        &sel,
    ))
}
