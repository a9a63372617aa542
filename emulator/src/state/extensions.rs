//! Directory extensions (`extensionProperty`): the definitions an application owns and the values
//! users hold. Sources (docs/entra-facts/claims-and-delta.md §A1): Learn
//! `application-post-extensionproperty`, `resources/extensionproperty`, Graph `extensibility-overview`
//! ("Considerations for using directory extensions") and Entra `schema-extensions`.
//!
//! - A definition is named `extension_{owner appId without hyphens}_{name}`.
//! - Values stay on the user when their definition goes: deleting a definition makes them
//!   "undiscoverable", a new definition "with the same name … on the same owner app" recovers them.
//! - A definition is discoverable while its owner application is live **and** has a service
//!   principal in the tenant: "restoring an app doesn't automatically restore the associated service
//!   principal … To make the directory extension properties and their data discoverable, either
//!   create a new service principal or restore the deleted service principal"; the extensions
//!   "become immediately accessible" once the application is consented to, i.e. has one ([INF] for a
//!   new application that never had a service principal).
//! - Names are case-insensitive when set, but the token service reads them case-sensitively
//!   ("If an extension attribute is set on a user object with the name "LegacyId" and on another
//!   user object with the name "legacyid", … the claim [is] included in the token for the first user
//!   but not the second", Entra `schema-extensions`): a value keeps the name as it was written.
use super::store::{Tenant, UserRec};
use super::views::GraphObject;
use serde_json::Value;

/// The `dataType`s Graph takes (Learn `application-post-extensionproperty`).
pub const DATA_TYPES: &[&str] = &[
    "Binary",
    "Boolean",
    "DateTime",
    "Integer",
    "LargeInteger",
    "String",
];
/// The `targetObjects` Graph takes, "All values must be in PascalCase" (same page).
pub const TARGET_OBJECTS: &[&str] = &[
    "User",
    "Group",
    "AdministrativeUnit",
    "Application",
    "Device",
    "Organization",
];

/// The full name of a definition `name` owned by the application `app_id`.
pub fn full_name(app_id: &str, name: &str) -> String {
    format!("extension_{}_{name}", app_id.replace('-', ""))
}

/// The definitions usable in the tenant now (see the module's rules).
pub fn discoverable(t: &Tenant) -> impl Iterator<Item = &Value> {
    t.apps
        .iter()
        .filter(|a| t.sp_idx_by_app_id(a.app_id()).is_some())
        .flat_map(|a| a.extension_properties.iter())
}

/// The discoverable definition of this name (case-insensitive).
pub fn definition<'a>(t: &'a Tenant, name: &str) -> Option<&'a Value> {
    discoverable(t).find(|d| {
        d["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Whether a definition can be set on users.
pub fn targets_users(def: &Value) -> bool {
    def["targetObjects"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == "User"))
}

/// A user's discoverable values as Graph shows them: under the definition's name.
pub fn user_values(t: &Tenant, u: &UserRec) -> Vec<(String, Value)> {
    u.extensions
        .iter()
        .filter_map(|(k, v)| {
            let def = definition(t, k)?;
            Some((def["name"].as_str()?.to_string(), v.clone()))
        })
        .collect()
}

/// The value a claims-mapping `ExtensionID` reads: the name must be discoverable and match the
/// name the value was written with exactly.
pub fn claim_value<'a>(t: &Tenant, u: &'a UserRec, extension_id: &str) -> Option<&'a Value> {
    definition(t, extension_id)?;
    u.extensions.get(extension_id)
}

/// Sets (or, with null, removes) a value; a value written under another casing is replaced.
pub fn set_value(u: &mut UserRec, name: &str, value: Value) {
    u.extensions.retain(|k, _| !k.eq_ignore_ascii_case(name));
    if !value.is_null() {
        u.extensions.insert(name.to_string(), value);
    }
}

/// Whether `v` is a value of the definition's type: `String` at most 256 characters, `Binary`
/// base64 of at most 256 bytes, `Integer` 32-bit, `LargeInteger` 64-bit, `DateTime` ISO 8601;
/// multi-valued definitions take an array, the limits per value (Learn
/// `application-post-extensionproperty`).
pub fn value_fits(def: &Value, v: &Value) -> bool {
    let ty = def["dataType"].as_str().unwrap_or("String");
    let one = |x: &Value| match ty {
        "Boolean" => x.is_boolean(),
        "Integer" => x.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "LargeInteger" => x.as_i64().is_some(),
        "DateTime" => x
            .as_str()
            .is_some_and(|s| super::basics::parse_time(s).is_some()),
        "Binary" => x
            .as_str()
            .and_then(crate::crypto::b64_any)
            .is_some_and(|b| b.len() <= 256),
        _ => x.as_str().is_some_and(|s| s.chars().count() <= 256),
    };
    match (def["isMultiValued"] == Value::Bool(true), v) {
        (_, Value::Null) => true,
        (true, Value::Array(items)) => items.iter().all(one),
        (true, _) => false,
        (false, x) => one(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_types_and_casing() {
        assert_eq!(
            full_name("b7d8e648-520f-41d3-b9c0-fdeb91768a0a", "fhirUser"),
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_fhirUser"
        );
        let s = json!({"dataType": "String"});
        assert!(value_fits(&s, &json!("Practitioner/1")));
        assert!(!value_fits(&s, &json!("x".repeat(257))));
        assert!(!value_fits(&s, &json!(5)));
        let i = json!({"dataType": "Integer", "isMultiValued": true});
        assert!(value_fits(&i, &json!([1, 2])));
        assert!(!value_fits(&i, &json!([1, 4_294_967_296_i64])));
        assert!(!value_fits(&i, &json!(1)));
        let mut u = UserRec::default();
        set_value(&mut u, "extension_a_LegacyId", json!("1"));
        set_value(&mut u, "extension_a_legacyid", json!("2"));
        assert_eq!(u.extensions.len(), 1);
        assert_eq!(u.extensions["extension_a_legacyid"], "2");
        set_value(&mut u, "EXTENSION_A_LEGACYID", Value::Null);
        assert!(u.extensions.is_empty());
    }
}
