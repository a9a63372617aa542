//! SMART on FHIR scopes ↔ names Entra ID accepts as scope values.
//!
//! Entra scope values allow letters, digits, `.`, `_` and `-`; SMART scopes use `/` and `*`.
//! Mapping (both ways):
//!
//! | SMART | Entra |
//! |---|---|
//! | `patient/*.read` | `patient.all.read` |
//! | `user/*.*` | `user.all.all` |
//! | `system/Observation.rs` | `system.Observation.rs` |
//! | `patient/Patient.rs` (v2) | `patient.Patient.rs` |
//! | `user/*.cruds` (v2) | `user.all.cruds` |
//! | `launch/patient` | `launch.patient` |
//! | `launch`, `fhirUser`, `online_access` | unchanged |
//!
//! i.e. `/` → `.` and `*` → `all`; the reverse maps the first `.` after `patient|user|system|launch`
//! back to `/` and a resource type of `all` (or an `all` action) back to `*`. `openid`, `profile`,
//! `offline_access` are Entra's own OIDC scopes and never published on the FHIR API.
//!
//! SMART v2 (`<patient|user|system>/<Type|*>.<c?r?u?d?s?>`) maps like v1, as Microsoft documents it for
//! Azure Health Data Services: "`patient/Patient.rs` is registered as `patient.Patient.rs`" (AHDS
//! SMART client-registration page); `*` becomes `all` as in the AHDS samples' `patient.all.read`, which
//! microsoft/fhir-server's SmartClinicalScopesMiddleware reads as `*`. v1 and v2 scopes sit side by side.
//! Query-qualified granular scopes (`patient/Observation.rs?category=…`) have no Entra form (a scope
//! value cannot carry the query) and malformed v2 letters are refused at admission by the CRDs' CEL rules.

/// OIDC scopes Entra provides itself.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

/// Default SMART scopes published when `spec.smart.enabled` and no list is given.
pub const DEFAULT_SMART_SCOPES: [&str; 8] = [
    "launch",
    "launch/patient",
    "fhirUser",
    "patient/*.read",
    "patient/*.write",
    "user/*.read",
    "user/*.write",
    "user/*.*",
];

/// SMART scope → Entra scope value. `None` for OIDC scopes (not published on the API).
pub fn to_entra(smart: &str) -> Option<String> {
    if OIDC_SCOPES.contains(&smart) {
        return None;
    }
    Some(smart.replace('/', ".").replace('*', "all"))
}

/// Entra scope value → SMART scope.
pub fn to_smart(entra: &str) -> String {
    let mut parts = entra.splitn(2, '.');
    let head = parts.next().unwrap_or_default();
    match (head, parts.next()) {
        ("patient" | "user" | "system", Some(rest)) => {
            let (ty, action) = rest.split_once('.').unwrap_or((rest, ""));
            let star = |s: &str| {
                if s == "all" {
                    "*".to_string()
                } else {
                    s.to_string()
                }
            };
            if action.is_empty() {
                format!("{head}/{}", star(ty))
            } else {
                format!("{head}/{}.{}", star(ty), star(action))
            }
        }
        ("launch", Some(rest)) => format!("launch/{rest}"),
        _ => entra.to_string(),
    }
}

/// Whether a string is a valid Entra scope value.
pub fn is_valid_entra_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_smart_to_entra_and_back() {
        for (smart, entra) in [
            ("patient/*.read", "patient.all.read"),
            ("user/*.*", "user.all.all"),
            ("user/*.write", "user.all.write"),
            ("system/Observation.rs", "system.Observation.rs"),
            ("patient/Patient.read", "patient.Patient.read"),
            ("patient/Patient.rs", "patient.Patient.rs"),
            ("patient/Patient.r", "patient.Patient.r"),
            ("user/Observation.cruds", "user.Observation.cruds"),
            ("user/*.cruds", "user.all.cruds"),
            ("patient/*.rs", "patient.all.rs"),
            ("system/Encounter.cud", "system.Encounter.cud"),
            ("launch/patient", "launch.patient"),
            ("launch", "launch"),
            ("fhirUser", "fhirUser"),
        ] {
            assert_eq!(to_entra(smart).as_deref(), Some(entra), "{smart}");
            assert!(is_valid_entra_value(entra));
            assert_eq!(to_smart(entra), smart, "{entra}");
        }
    }

    #[test]
    fn oidc_scopes_are_not_published() {
        assert_eq!(to_entra("openid"), None);
        assert_eq!(to_entra("offline_access"), None);
        assert!(!is_valid_entra_value("patient/*.read"));
    }
}
