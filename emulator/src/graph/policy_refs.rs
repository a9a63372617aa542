//! Assigning a policy to a directory object by reference, as app management and claims-mapping
//! policies both are: `POST …/{collection}/$ref` with `{"@odata.id": "…/policies/{collection}/{id}"}`
//! and `DELETE …/{collection}/{id}/$ref`, one policy per object; and what both resources check
//! first: the caller's permission and the body's writable properties.
use super::errors::{GErr, R, bad, denied, err, invalid_value, not_found};
use super::odata::no_content;
use super::req::Req;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The policy id the body's `@odata.id` names in `collection`.
pub fn referenced_id<'a>(r: &'a Req, collection: &str, resource: &str) -> Result<&'a str, GErr> {
    r.body["@odata.id"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .rsplit_once(&format!("/{collection}/"))
        .map(|(_, id)| id)
        .ok_or_else(|| invalid_value("@odata.id", resource))
}

/// Records `pid` as the object's policy: 204, or a second policy refused as Graph refuses a second
/// token lifetime policy through the same `$ref` (microsoftgraph/microsoft-graph-docs-contrib#1114:
/// `Request_MultipleObjectsWithSameKeyValue`, this text; its status is not shown there, [INF] 400).
pub fn assign_one(assigned: &mut BTreeMap<String, String>, object: String, pid: String) -> R {
    if assigned.contains_key(&object) {
        return Err(bad("Request contains property changes that would result in property-uniqueness violation(s). Please retry your request with corrected values.")
            .with_code("Request_MultipleObjectsWithSameKeyValue"));
    }
    assigned.insert(object, pid);
    Ok(no_content())
}

/// Removes the object's policy: 204, or 404 when `pid` is not the one assigned.
pub fn unassign_one(assigned: &mut BTreeMap<String, String>, object: &str, pid: &str) -> R {
    match assigned.get(object) {
        Some(x) if x.eq_ignore_ascii_case(pid) => {
            assigned.remove(object);
            Ok(no_content())
        }
        _ => Err(not_found(pid)),
    }
}

/// 403 `Authorization_RequestDenied` unless the caller holds one of `roles`.
pub fn require(r: &Req, roles: &[&str]) -> Result<(), GErr> {
    if r.has_any(roles) {
        Ok(())
    } else {
        Err(denied())
    }
}

/// The body's properties, every one writable (400 otherwise, as Graph's other resources answer),
/// annotations dropped.
pub fn writable(
    body: &Value,
    allowed: &[&str],
    resource: &str,
) -> Result<Map<String, Value>, GErr> {
    let Some(o) = body.as_object() else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        ));
    };
    let mut out = Map::new();
    for (k, v) in o {
        if k.starts_with('@') {
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "Property '{k}' is read-only or does not exist on resource '{resource}'."
            )));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}
