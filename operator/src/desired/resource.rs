//! FhirResourceApp spec → desired Graph application and output ConfigMap data.

use std::collections::BTreeMap;

use super::application::{Api, AppRole, Application, PermissionScope};
use super::naming::ResourceIdentity;
use super::smart;
use crate::api::{APP_ID_URI, FhirResourceAppSpec, MemberType, ScopeConsentType};

/// The open-source FHIR server's roles.json role names.
pub const DEFAULT_ROLES: [&str; 7] = [
    "globalReader",
    "globalWriter",
    "globalExporter",
    "globalImporter",
    "globalConverter",
    "globalAdmin",
    "smartUser",
];
/// Default delegated scope.
pub const DEFAULT_SCOPE: &str = "user_impersonation";

/// A published app role or scope, with its stable ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entitlement {
    pub id: String,
    pub value: String,
}

/// Effective identifier URI. `None` while the app-ID form is selected and the app ID is not known yet.
pub fn identifier_uri(spec: &FhirResourceAppSpec, app_id: Option<&str>) -> Option<String> {
    match spec.identifier_uri.as_deref() {
        Some(APP_ID_URI) => app_id.map(|id| format!("api://{id}")),
        Some(uri) => Some(uri.to_string()),
        None => Some(crate::url::without_slash(&spec.fhir_url).to_lowercase()),
    }
}

/// Which identifier-URI restriction of a tenant's app-management policy refused a URI (facts §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriRestriction {
    /// `uriAdditionWithoutUniqueTenantIdentifier`: a verified domain, the tenant ID or the app ID.
    WithoutUniqueTenantIdentifier,
    /// `nonDefaultUriAddition`: only `api://{appId}` and `api://{tenantId}/{appId}`.
    NonDefault,
}

/// What to do about an identifier URI the tenant's policy refuses: the forms the restriction allows,
/// and v2 tokens, which a tenant may exempt (`excludeAppsReceivingV2Tokens`) — unless the API
/// already receives them, in which case that exemption is evidently off.
pub fn identifier_uri_policy_advice(
    uri: &str,
    restriction: UriRestriction,
    token_version: i32,
) -> String {
    let forms = match restriction {
        UriRestriction::WithoutUniqueTenantIdentifier => {
            "a new one must contain a verified domain, the tenant ID or the app ID. Use an https URL on a verified domain, api://<tenant ID>/<name> or \"api://{appId}\""
        }
        UriRestriction::NonDefault => {
            "it allows only the default forms api://<app ID> and api://<tenant ID>/<app ID>. Set identifierUri: \"api://{appId}\""
        }
    };
    let v2 = if token_version == 2 {
        "this API already receives v2 tokens, so the policy does not exempt them (excludeAppsReceivingV2Tokens is off)"
    } else {
        "or set requestedAccessTokenVersion: 2 if the policy exempts v2 apps (the audience is then the app ID, which the ConfigMap carries)"
    };
    format!("the tenant's app-management policy refuses the identifier URI {uri}: {forms}; {v2}")
}

/// Access-token version the FHIR server receives (default 1).
pub fn token_version(spec: &FhirResourceAppSpec) -> i32 {
    spec.requested_access_token_version.unwrap_or(1)
}

/// value, display name, description, allowed member types
type RoleInput = (String, Option<String>, Option<String>, Vec<MemberType>);

/// The app roles the resource publishes, with stable IDs.
pub fn app_roles(spec: &FhirResourceAppSpec, id: &ResourceIdentity<'_>) -> Vec<AppRole> {
    let roles: Vec<RoleInput> = match &spec.app_roles {
        Some(r) => r
            .iter()
            .map(|r| {
                (
                    r.value.clone(),
                    r.display_name.clone(),
                    r.description.clone(),
                    r.allowed_member_types
                        .clone()
                        .unwrap_or(vec![MemberType::User, MemberType::Application]),
                )
            })
            .collect(),
        None => DEFAULT_ROLES
            .iter()
            .map(|v| {
                (
                    v.to_string(),
                    None,
                    None,
                    vec![MemberType::User, MemberType::Application],
                )
            })
            .collect(),
    };
    roles
        .into_iter()
        .map(|(value, display, desc, members)| {
            let mut members: Vec<&str> = members
                .iter()
                .map(|m| match m {
                    MemberType::User => "User",
                    MemberType::Application => "Application",
                })
                .collect();
            members.sort();
            members.dedup();
            AppRole {
                id: id.entitlement_id("role", &value).to_string(),
                display_name: display.unwrap_or_else(|| value.clone()),
                description: desc.unwrap_or_else(|| value.clone()),
                value,
                allowed_member_types: members,
                is_enabled: true,
            }
        })
        .collect()
}

/// The delegated scopes the resource publishes (plain scopes + mapped SMART scopes), with stable IDs.
pub fn scopes(spec: &FhirResourceAppSpec, id: &ResourceIdentity<'_>) -> Vec<PermissionScope> {
    let mut out: Vec<(String, ScopeConsentType, Option<String>, Option<String>)> =
        match &spec.scopes {
            Some(s) => s
                .iter()
                .map(|s| {
                    (
                        s.value.clone(),
                        s.r#type.unwrap_or(ScopeConsentType::User),
                        s.display_name.clone(),
                        s.description.clone(),
                    )
                })
                .collect(),
            None => vec![(
                DEFAULT_SCOPE.to_string(),
                ScopeConsentType::User,
                None,
                None,
            )],
        };
    if let Some(sm) = spec.smart.as_ref().filter(|s| s.enabled) {
        let list: Vec<String> = match &sm.scopes {
            Some(l) => l.clone(),
            None => smart::DEFAULT_SMART_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        for s in list {
            if let Some(v) = smart::to_entra(&s)
                && !out.iter().any(|(o, ..)| *o == v)
            {
                out.push((
                    v,
                    ScopeConsentType::User,
                    Some(format!("SMART on FHIR scope {s}")),
                    None,
                ));
            }
        }
    }
    out.into_iter()
        .map(|(value, ty, display, desc)| {
            let display = display.unwrap_or_else(|| format!("Access the FHIR server ({value})"));
            let desc = desc.unwrap_or_else(|| format!("Allows the application to access the FHIR server on behalf of the signed-in user ({value})."));
            PermissionScope {
                id: id.entitlement_id("scope", &value).to_string(),
                value,
                r#type: match ty {
                    ScopeConsentType::User => "User",
                    ScopeConsentType::Admin => "Admin",
                },
                is_enabled: true,
                admin_consent_display_name: display.clone(),
                admin_consent_description: desc.clone(),
                user_consent_display_name: display,
                user_consent_description: desc,
            }
        })
        .collect()
}

/// What a resource app publishes: its scopes and its app roles, value → stable ID.
pub fn published(
    spec: &FhirResourceAppSpec,
    id: &ResourceIdentity<'_>,
) -> (Vec<Entitlement>, Vec<Entitlement>) {
    (
        scopes(spec, id)
            .iter()
            .map(PermissionScope::entitlement)
            .collect(),
        app_roles(spec, id)
            .iter()
            .map(AppRole::entitlement)
            .collect(),
    )
}

/// Values published both as an app role and as a scope. Entra refuses one value under two ids
/// ("It contains duplicate value", MicrosoftDocs/azure-docs#81899) and the operator gives roles and
/// scopes ids of their own, so such a spec can never register: the reconcile reports it instead.
pub fn values_in_both(spec: &FhirResourceAppSpec, id: &ResourceIdentity<'_>) -> Vec<String> {
    let (scopes, roles) = published(spec, id);
    let mut both: Vec<String> = roles
        .into_iter()
        .filter(|r| scopes.iter().any(|s| s.value == r.value))
        .map(|r| r.value)
        .collect();
    both.sort();
    both
}

/// Desired Graph application body for a resource app (only the properties the operator manages).
pub fn desired_application(
    spec: &FhirResourceAppSpec,
    id: &ResourceIdentity<'_>,
    app_id: Option<&str>,
) -> Application {
    Application {
        display_name: spec
            .display_name
            .clone()
            .unwrap_or_else(|| spec.fhir_url.clone()),
        sign_in_audience: spec.sign_in_audience.unwrap_or_default().as_str(),
        tags: id.tags(),
        api: Some(Api {
            requested_access_token_version: token_version(spec),
            oauth2_permission_scopes: scopes(spec, id),
        }),
        app_roles: Some(app_roles(spec, id)),
        identifier_uris: identifier_uri(spec, app_id).map(|uri| vec![uri]),
        ..Default::default()
    }
}

/// Token-validation settings of the FHIR server for a registered resource app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    pub audience: String,
    pub authority: String,
    pub issuer: String,
    pub jwks_uri: String,
}

/// Audience/authority/issuer/JWKS per requested access-token version (v1: audience = identifier URI,
/// issuer `https://sts.windows.net/{tid}/` on the public cloud; v2: audience = app ID, issuer = authority).
/// `authority_host` ends with `/`.
pub fn token_settings(
    version: i32,
    authority_host: &str,
    tenant_id: &str,
    identifier_uri: &str,
    app_id: &str,
) -> TokenSettings {
    let host = crate::url::with_slash(authority_host);
    if version == 2 {
        let authority = format!("{host}{tenant_id}/v2.0");
        TokenSettings {
            audience: app_id.to_string(),
            issuer: authority.clone(),
            authority,
            jwks_uri: format!("{host}{tenant_id}/discovery/v2.0/keys"),
        }
    } else {
        let issuer = if host.contains("login.microsoftonline.com") {
            format!("https://sts.windows.net/{tenant_id}/")
        } else {
            format!("{host}{tenant_id}/")
        };
        TokenSettings {
            audience: identifier_uri.to_string(),
            authority: format!("{host}{tenant_id}"),
            issuer,
            jwks_uri: format!("{host}{tenant_id}/discovery/keys"),
        }
    }
}

/// Output ConfigMap data: generic keys plus the open-source FHIR server's environment variables.
pub fn config_map_data(
    ts: &TokenSettings,
    tenant_id: &str,
    app_id: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AUDIENCE".into(), ts.audience.clone()),
        ("AUTHORITY".into(), ts.authority.clone()),
        ("ISSUER".into(), ts.issuer.clone()),
        ("JWKS_URI".into(), ts.jwks_uri.clone()),
        ("TENANT_ID".into(), tenant_id.to_string()),
        ("CLIENT_ID".into(), app_id.to_string()),
        ("FhirServer__Security__Enabled".into(), "true".into()),
        (
            "FhirServer__Security__Authentication__Audience".into(),
            ts.audience.clone(),
        ),
        (
            "FhirServer__Security__Authentication__Authority".into(),
            ts.authority.clone(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AppRoleSpec, SmartSpec};
    use crate::desired::naming::AppKind;
    use serde_json::{Value, json};

    pub(crate) fn spec(url: &str) -> FhirResourceAppSpec {
        serde_json::from_value(json!({ "fhirUrl": url })).unwrap()
    }
    const ID: ResourceIdentity<'static> = ResourceIdentity {
        cluster: "c",
        kind: AppKind::Resource,
        namespace: "ns",
        name: "fhir",
    };

    #[test]
    fn a_value_published_as_a_role_and_a_scope_is_named() {
        // The defaults never collide.
        assert!(values_in_both(&spec("https://fhir.contoso.example"), &ID).is_empty());
        // A role named like the default scope does; so does one named like a mapped SMART scope.
        let s: FhirResourceAppSpec = serde_json::from_value(json!({
            "fhirUrl": "https://fhir.contoso.example",
            "appRoles": [{"value": "user_impersonation"}, {"value": "patient.all.read"}, {"value": "reader"}],
            "smart": {"enabled": true, "scopes": ["patient/*.read"]}
        }))
        .unwrap();
        assert_eq!(
            values_in_both(&s, &ID),
            vec![
                "patient.all.read".to_string(),
                "user_impersonation".to_string()
            ]
        );
    }

    #[test]
    fn defaults_follow_the_oss_fhir_server() {
        let app = desired_application(&spec("https://FHIR.Contoso.example/"), &ID, None).body();
        assert_eq!(
            app["identifierUris"],
            json!(["https://fhir.contoso.example"])
        );
        assert_eq!(app["displayName"], "https://FHIR.Contoso.example/");
        assert_eq!(app["signInAudience"], "AzureADMyOrg");
        let values: Vec<&str> = app["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap())
            .collect();
        assert_eq!(values, DEFAULT_ROLES);
        for r in app["appRoles"].as_array().unwrap() {
            assert_eq!(r["allowedMemberTypes"], json!(["Application", "User"]));
            assert_eq!(r["isEnabled"], true);
        }
        let scopes = app["api"]["oauth2PermissionScopes"].as_array().unwrap();
        assert_eq!(scopes.len(), 1);
        assert_eq!(scopes[0]["value"], "user_impersonation");
        assert_eq!(app["api"]["requestedAccessTokenVersion"], 1);
    }

    #[test]
    fn ids_are_stable_across_rebuilds_and_order() {
        let mut s = spec("https://fhir.contoso.example");
        let a = desired_application(&s, &ID, None).body();
        s.app_roles = Some(vec![
            AppRoleSpec {
                value: "globalWriter".into(),
                display_name: None,
                description: None,
                allowed_member_types: None,
            },
            AppRoleSpec {
                value: "globalReader".into(),
                display_name: None,
                description: None,
                allowed_member_types: None,
            },
        ]);
        let b = desired_application(&s, &ID, None).body();
        let id_of = |app: &Value, v: &str| {
            app["appRoles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["value"] == v)
                .unwrap()["id"]
                .clone()
        };
        assert_eq!(id_of(&a, "globalReader"), id_of(&b, "globalReader"));
        assert_eq!(id_of(&a, "globalWriter"), id_of(&b, "globalWriter"));
    }

    #[test]
    fn app_id_uri_needs_the_app_id() {
        let mut s = spec("https://fhir.unverified.example");
        s.identifier_uri = Some(APP_ID_URI.into());
        assert!(desired_application(&s, &ID, None).identifier_uris.is_none());
        assert_eq!(
            desired_application(&s, &ID, Some("abc")).body()["identifierUris"],
            json!(["api://abc"])
        );
    }

    #[test]
    fn a_refused_uri_is_named_with_the_forms_the_policy_allows() {
        let advice = |r, v| identifier_uri_policy_advice("api://fhir", r, v);
        let v1 = advice(UriRestriction::WithoutUniqueTenantIdentifier, 1);
        for want in [
            "api://fhir:",
            "verified domain",
            "\"api://{appId}\"",
            "requestedAccessTokenVersion: 2",
        ] {
            assert!(v1.contains(want), "{want} in {v1}");
        }
        let v2 = advice(UriRestriction::WithoutUniqueTenantIdentifier, 2);
        assert!(!v2.contains("set requestedAccessTokenVersion"), "{v2}");
        assert!(v2.contains("excludeAppsReceivingV2Tokens is off"), "{v2}");
        let only_default = advice(UriRestriction::NonDefault, 1);
        assert!(!only_default.contains("verified domain"), "{only_default}");
        assert!(only_default.contains("\"api://{appId}\""), "{only_default}");
        for m in [v1, v2, only_default] {
            assert!(
                m.len() < crate::controller::MESSAGE_MAX - 150,
                "{}",
                m.len()
            );
        }
    }

    #[test]
    fn smart_scopes_are_opt_in_and_mapped() {
        let mut s = spec("https://fhir.contoso.example");
        assert!(
            !scopes(&s, &ID)
                .iter()
                .any(|v| v.value == "patient.all.read")
        );
        s.smart = Some(SmartSpec {
            enabled: true,
            scopes: None,
            fhir_user_claim: None,
        });
        let vals: Vec<String> = scopes(&s, &ID).iter().map(|v| v.value.clone()).collect();
        for want in [
            "user_impersonation",
            "launch",
            "launch.patient",
            "fhirUser",
            "patient.all.read",
            "user.all.all",
        ] {
            assert!(vals.contains(&want.to_string()), "{want} in {vals:?}");
        }
        assert!(vals.iter().all(|v| smart::is_valid_entra_value(v)));
    }

    #[test]
    fn token_settings_per_version() {
        let v1 = token_settings(
            1,
            "https://login.microsoftonline.com/",
            "t1",
            "https://fhir.contoso.example",
            "app",
        );
        assert_eq!(v1.audience, "https://fhir.contoso.example");
        assert_eq!(v1.authority, "https://login.microsoftonline.com/t1");
        assert_eq!(v1.issuer, "https://sts.windows.net/t1/");
        let v2 = token_settings(
            2,
            "https://login.microsoftonline.com",
            "t1",
            "https://fhir.contoso.example",
            "app",
        );
        assert_eq!(v2.audience, "app");
        assert_eq!(v2.authority, "https://login.microsoftonline.com/t1/v2.0");
        assert_eq!(v2.issuer, v2.authority);
        assert_eq!(
            v2.jwks_uri,
            "https://login.microsoftonline.com/t1/discovery/v2.0/keys"
        );
        let cm = config_map_data(&v1, "t1", "app");
        assert_eq!(
            cm["FhirServer__Security__Authentication__Audience"],
            "https://fhir.contoso.example"
        );
        assert_eq!(
            cm["FhirServer__Security__Authentication__Authority"],
            "https://login.microsoftonline.com/t1"
        );
        assert_eq!(cm["FhirServer__Security__Enabled"], "true");
    }
}
