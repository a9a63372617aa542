//! Desired vs actual Graph application → minimal PATCH bodies.
//!
//! Only properties in the desired body are compared; for objects only the desired keys count (Graph adds
//! its own, e.g. `origin` on app roles); arrays compare as sets (objects keyed by `id` or
//! `resourceAppId`); `null`, missing, `false` and `[]` are all "empty".

use serde_json::{Map, Value, json};

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Bool(false)) => true,
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn key_of(v: &Value) -> Option<String> {
    let key = ["id", "resourceAppId"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))?;
    // A resourceAccess entry is identified by id and type: a scope and an app role may share an id.
    Some(match v.get("type").and_then(Value::as_str) {
        Some(t) => format!("{key}/{t}"),
        None => key.to_string(),
    })
}

/// Whether `actual` already has everything `desired` asks for.
pub fn covers(desired: &Value, actual: Option<&Value>) -> bool {
    if is_empty(Some(desired)) {
        return is_empty(actual);
    }
    let Some(actual) = actual else { return false };
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => d.iter().all(|(k, v)| covers(v, a.get(k))),
        (Value::Array(d), Value::Array(a)) => {
            if d.len() != a.len() {
                return false;
            }
            if d.iter().all(|x| key_of(x).is_some()) {
                d.iter().all(|x| {
                    let k = key_of(x);
                    a.iter()
                        .find(|y| key_of(y) == k)
                        .is_some_and(|y| covers(x, Some(y)))
                })
            } else {
                d.iter().all(|x| a.iter().any(|y| covers(x, Some(y))))
                    && a.iter().all(|y| d.iter().any(|x| covers(x, Some(y))))
            }
        }
        (d, a) => d == a,
    }
}

/// The PATCH body that makes `actual` match `desired`, or `None` when nothing differs.
/// Top-level properties are sent whole (Graph replaces collections whole anyway).
pub fn patch_body(desired: &Value, actual: &Value) -> Option<Value> {
    let d = desired.as_object()?;
    let mut out = Map::new();
    for (k, v) in d {
        if !covers(v, actual.get(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Graph refuses to change or remove an enabled app role or scope ("cannot be deleted or updated unless
/// disabled first"). Returns the first-phase PATCH that disables, in place, every currently enabled entry
/// that the desired state changes or removes; `None` when no such entry exists.
pub fn disable_phase(desired: &Value, actual: &Value) -> Option<Value> {
    let mut body = Map::new();
    if let Some(roles) = disabled(desired.get("appRoles"), actual.get("appRoles")) {
        body.insert("appRoles".into(), roles);
    }
    let d_scopes = desired.pointer("/api/oauth2PermissionScopes");
    if let Some(scopes) = disabled(d_scopes, actual.pointer("/api/oauth2PermissionScopes")) {
        body.insert("api".into(), json!({ "oauth2PermissionScopes": scopes }));
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

fn disabled(desired: Option<&Value>, actual: Option<&Value>) -> Option<Value> {
    let desired = desired?.as_array()?;
    let actual = actual?.as_array()?;
    let mut changed = false;
    let out: Vec<Value> = actual
        .iter()
        .map(|a| {
            let enabled = a.get("isEnabled").and_then(Value::as_bool).unwrap_or(false);
            let k = key_of(a);
            let kept_as_is = desired.iter().any(|d| key_of(d) == k && covers(d, Some(a)));
            if enabled && !kept_as_is {
                changed = true;
                let mut a = a.clone();
                a["isEnabled"] = json!(false);
                a
            } else {
                a.clone()
            }
        })
        .collect();
    changed.then_some(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_and_an_app_role_with_the_same_id_are_different_entries() {
        // Found by the spec_builders fuzz target: with the entry's id as its only key, the Role entry
        // was compared with the Scope entry, so the desired body did not cover itself and every
        // resync would have PATCHed it.
        let rra = |second: &str| {
            json!({"requiredResourceAccess": [{"resourceAppId": "r", "resourceAccess": [
                {"id": "x", "type": "Scope"}, {"id": "x", "type": second}]}]})
        };
        assert!(covers(&rra("Role"), Some(&rra("Role"))));
        assert_eq!(patch_body(&rra("Role"), &rra("Role")), None);
        assert!(!covers(&rra("Role"), Some(&rra("Scope"))));
    }

    fn role(id: &str, value: &str, enabled: bool) -> Value {
        json!({"id": id, "value": value, "isEnabled": enabled, "allowedMemberTypes": ["User","Application"], "displayName": value, "description": value})
    }

    #[test]
    fn nothing_to_patch_when_actual_matches_with_extra_graph_fields() {
        let desired = json!({"displayName":"a","tags":["x","y"],"web":{"redirectUris":["https://a"]},"isFallbackPublicClient":false,
            "appRoles":[role("1","r",true)], "spa":{"redirectUris":[]}});
        let mut r = role("1", "r", true);
        r["origin"] = json!("Application");
        r["allowedMemberTypes"] = json!(["Application", "User"]);
        let actual = json!({"id":"obj","displayName":"a","tags":["y","x"],"web":{"redirectUris":["https://a"],"homePageUrl":null,
            "implicitGrantSettings":{"enableIdTokenIssuance":false}},"isFallbackPublicClient":null,"appRoles":[r],"spa":{"redirectUris":[]}});
        assert_eq!(patch_body(&desired, &actual), None);
    }

    #[test]
    fn patch_contains_only_what_differs() {
        let desired = json!({"displayName":"a","web":{"redirectUris":["https://a","https://b"]},"tags":["x"]});
        let actual = json!({"displayName":"a","web":{"redirectUris":["https://a"]},"tags":["x"]});
        assert_eq!(
            patch_body(&desired, &actual),
            Some(json!({"web":{"redirectUris":["https://a","https://b"]}}))
        );
        let renamed = json!({"displayName":"b","web":{"redirectUris":["https://a","https://b"]},"tags":["x"]});
        assert_eq!(
            patch_body(&desired, &renamed),
            Some(json!({"displayName":"a"}))
        );
    }

    #[test]
    fn removed_or_changed_enabled_roles_are_disabled_first() {
        let actual = json!({"appRoles":[role("1","keep",true), role("2","gone",true), role("3","old-desc",true)]});
        let mut changed = role("3", "old-desc", true);
        changed["description"] = json!("new");
        let desired = json!({"appRoles":[role("1","keep",true), changed]});
        let phase1 = disable_phase(&desired, &actual).unwrap();
        let roles = phase1["appRoles"].as_array().unwrap();
        assert_eq!(roles.len(), 3, "phase 1 keeps every role, only disables");
        assert_eq!(roles[0]["isEnabled"], true);
        assert_eq!(roles[1]["isEnabled"], false);
        assert_eq!(roles[2]["isEnabled"], false);
        // after phase 1 (roles disabled) nothing more needs disabling
        let after = json!({"appRoles": roles});
        assert_eq!(disable_phase(&desired, &after), None);
        assert!(patch_body(&desired, &after).is_some());
    }

    #[test]
    fn adding_a_role_needs_no_disable_phase() {
        let actual = json!({"appRoles":[role("1","a",true)], "api":{"oauth2PermissionScopes":[]}});
        let desired = json!({"appRoles":[role("1","a",true), role("2","b",true)]});
        assert_eq!(disable_phase(&desired, &actual), None);
    }

    #[test]
    fn removed_scopes_are_disabled_first() {
        let s = |id: &str, en: bool| json!({"id":id,"value":id,"type":"User","isEnabled":en});
        let actual = json!({"api":{"oauth2PermissionScopes":[s("a",true), s("b",true)]}});
        let desired = json!({"api":{"oauth2PermissionScopes":[s("a",true)]}});
        let p = disable_phase(&desired, &actual).unwrap();
        assert_eq!(p["api"]["oauth2PermissionScopes"][1]["isEnabled"], false);
    }
}
