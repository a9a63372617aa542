//! The tenant's app management policies as stored: the default policy (`tenantAppManagementPolicy`),
//! the custom ones (`appManagementPolicy`) and which object each is assigned to, and the
//! restrictions that apply to one application or service principal
//! (docs/entra-facts/lifecycle-and-policies.md §3 has every source).
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The default policy's id: "00000000-0000-0000-0000-000000000000" (Learn
/// `resources/tenantappmanagementpolicy`).
pub const DEFAULT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppPolicies {
    /// The default policy as Graph shows it (without `@odata.context`).
    #[serde(default = "fresh_default_policy")]
    pub default: Value,
    /// Custom policies as Graph shows them.
    #[serde(default)]
    pub custom: Vec<Value>,
    /// Object id of an application or service principal → the custom policy assigned to it. "Only
    /// one policy object can be assigned to an application or service principal" (Learn
    /// `appmanagementpolicy-post-appliesto`).
    #[serde(default)]
    pub assigned: BTreeMap<String, String>,
}

impl Default for AppPolicies {
    fn default() -> Self {
        AppPolicies {
            default: fresh_default_policy(),
            custom: vec![],
            assigned: BTreeMap::new(),
        }
    }
}

/// What a fresh tenant's default policy holds. The resource's own defaults are `isEnabled: false`
/// and no restriction (Learn `resources/tenantappmanagementpolicy`; the response example in
/// microsoft/entra-apps-identifier-uri-protection `enable-protection-using-graph.md`). But
/// "Microsoft is enabling it [`uriAdditionWithoutUniqueTenantIdentifier`] in customer tenants
/// during the months of June and July 2025" (Learn `identifier-uri-restrictions`), with the
/// exemptions for v2-token and SAML applications "by default", and public code written since
/// meets it in new tenants ("new Entra tenants reject bare api://name URIs —
/// InvalidUniqueTenantIdentifierAsPerAppPolicy", several public Terraform/Bicep files, 2026). The
/// restriction is enforced only when the policy is enabled ("Make sure you also enable the default
/// policy in your tenant, by setting isEnabled to true", the same repository's enable guide), so
/// the emulator's tenant starts as Microsoft left it: enabled, that one restriction on, set by
/// Microsoft. [INF] that Microsoft's rollout sets `isEnabled` too: not documented, but the
/// rejections above could not happen otherwise. The emulator must not be kinder than such a
/// tenant; a test wanting the old behaviour PATCHes it off as an administrator would.
pub fn fresh_default_policy() -> Value {
    json!({
        "id": DEFAULT_POLICY_ID,
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.",
        "isEnabled": true,
        "applicationRestrictions": {
            "passwordCredentials": [],
            "keyCredentials": [],
            "identifierUris": {
                "nonDefaultUriAddition": null,
                "uriAdditionWithoutUniqueTenantIdentifier": {
                    "state": "enabled",
                    "restrictForAppsCreatedAfterDateTime": null,
                    "excludeAppsReceivingV2Tokens": true,
                    "excludeSaml": true,
                    "isStateSetByMicrosoft": true
                }
            }
        },
        "servicePrincipalRestrictions": {
            "passwordCredentials": [],
            "keyCredentials": []
        }
    })
}

/// The restrictions that apply to one object: from the policy assigned to it, else the tenant
/// default ("doesn't inherit from default policy", Learn `applicationauthenticationmethodpolicy`).
#[derive(Clone, Debug, PartialEq)]
pub struct Applying {
    pub policy_id: String,
    pub password_credentials: Vec<Value>,
    pub key_credentials: Vec<Value>,
    /// `identifierUriConfiguration` (applications only), or null.
    pub identifier_uris: Value,
}

/// Whether an object is an application or a service principal (the default policy keeps their
/// restrictions apart: `applicationRestrictions`, `servicePrincipalRestrictions`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Application,
    ServicePrincipal,
}

impl AppPolicies {
    pub fn custom_idx(&self, id: &str) -> Option<usize> {
        self.custom
            .iter()
            .position(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
    }

    /// What applies to the object `object_id`; None when that policy is disabled ("isEnabled …
    /// If false, the policy isn't evaluated", Learn `resources/appmanagementpolicy`).
    pub fn applying(&self, object_id: &str, kind: Kind) -> Option<Applying> {
        let custom = self
            .assigned
            .get(object_id)
            .and_then(|pid| self.custom_idx(pid))
            .map(|i| &self.custom[i]);
        let (policy, restrictions) = match custom {
            Some(p) => (p, &p["restrictions"]),
            None => {
                let part = match kind {
                    Kind::Application => "applicationRestrictions",
                    Kind::ServicePrincipal => "servicePrincipalRestrictions",
                };
                (&self.default, &self.default[part])
            }
        };
        if policy["isEnabled"] != Value::Bool(true) {
            return None;
        }
        let list = |k: &str| restrictions[k].as_array().cloned().unwrap_or_default();
        let identifier_uris = match (kind, custom.is_some()) {
            (Kind::ServicePrincipal, _) => Value::Null,
            (Kind::Application, true) => {
                restrictions["applicationRestrictions"]["identifierUris"].clone()
            }
            (Kind::Application, false) => restrictions["identifierUris"].clone(),
        };
        Some(Applying {
            policy_id: policy["id"]
                .as_str()
                .unwrap_or(DEFAULT_POLICY_ID)
                .to_string(),
            password_credentials: list("passwordCredentials"),
            key_credentials: list("keyCredentials"),
            identifier_uris,
        })
    }

    /// Drops the assignment of a deleted object: "Policies can't be recovered currently. When you
    /// restore a service principal, you have to configure the policies again" (Learn
    /// `delete-recover-faq`); [INF] the same for an application object (facts §1.3).
    pub fn forget(&mut self, object_id: &str) {
        self.assigned.remove(object_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_policy_replaces_the_default_and_disabled_is_not_evaluated() {
        let mut p = AppPolicies::default();
        let a = p.applying("app", Kind::Application).unwrap();
        assert_eq!(a.policy_id, DEFAULT_POLICY_ID);
        assert_eq!(
            a.identifier_uris["uriAdditionWithoutUniqueTenantIdentifier"]["state"],
            "enabled"
        );
        assert!(
            p.applying("sp", Kind::ServicePrincipal)
                .unwrap()
                .identifier_uris
                .is_null()
        );
        p.custom
            .push(json!({"id": "c1", "isEnabled": true, "restrictions": {
            "passwordCredentials": [{"restrictionType": "passwordAddition"}]}}));
        p.assigned.insert("app".into(), "c1".into());
        let a = p.applying("app", Kind::Application).unwrap();
        assert_eq!(
            (a.policy_id.as_str(), a.password_credentials.len()),
            ("c1", 1)
        );
        assert!(
            a.identifier_uris.is_null(),
            "nothing inherited from the default"
        );
        p.custom[0]["isEnabled"] = json!(false);
        assert_eq!(p.applying("app", Kind::Application), None);
        p.forget("app");
        assert_eq!(
            p.applying("app", Kind::Application).unwrap().policy_id,
            DEFAULT_POLICY_ID
        );
    }
}
