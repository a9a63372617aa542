//! The directory state: tenants, applications, service principals, grants, assignments.
use super::views::GraphObject;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use super::basics::{fmt_7, fmt_secs, now_ms, parse_time};
pub use super::objects::{
    APP_WRITABLE, GRAPH_APP_ID, HEALTHCARE_APP_ID, arm_sp, graph_sp, healthcare_sp,
    new_application, new_service_principal, sync_sp_from_app,
};

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct Secret {
    pub key_id: String,
    pub text: String,
    /// When the secret becomes usable at the token endpoint (replication lag), unix ms.
    pub usable_from_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct AppRec {
    /// The entity as Graph shows it (no `@odata.context`; `secretText` never stored here).
    pub body: Value,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// keyId -> base64 DER of the certificate (Graph hides `key` on reads).
    #[serde(default)]
    pub cert_keys: BTreeMap<String, String>,
    #[serde(default)]
    pub fics: Vec<Value>,
    #[serde(default)]
    pub visible_from_ms: i64,
    /// Directory extension definitions owned by the application ([`super::extensions`]); they
    /// follow it into the deleted items and back.
    #[serde(default)]
    pub extension_properties: Vec<Value>,
}

impl AppRec {
    /// Registers a secret: its credential as Graph keeps it (no `secretText`) first in
    /// `passwordCredentials`, its text usable at the token endpoint from `usable_from_ms`.
    pub fn add_secret(&mut self, stored: Value, key_id: String, text: String, usable_from_ms: i64) {
        self.body["passwordCredentials"]
            .as_array_mut()
            .unwrap()
            .insert(0, stored);
        self.secrets.push(Secret {
            key_id,
            text,
            usable_from_ms,
        });
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct SpRec {
    pub body: Value,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub visible_from_ms: i64,
    /// Texts of the passwords added with `servicePrincipals/{id}/addPassword` (never in `body`).
    #[serde(default)]
    pub secrets: Vec<Secret>,
}

/// A soft-deleted service principal with the app role assignments and delegated grants it was a
/// side of, set aside until it is restored (then they come back with it) or purged.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct DeletedSp {
    pub rec: SpRec,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// An app role assignment, in Graph's shape (Graph answers with it as it is serialised).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub deleted_date_time: Option<String>,
    pub app_role_id: String,
    pub created_date_time: String,
    pub principal_display_name: String,
    pub principal_id: String,
    /// `ServicePrincipal`, `User` or `Group`.
    pub principal_type: String,
    pub resource_display_name: Option<String>,
    pub resource_id: String,
}

impl Assignment {
    /// A new assignment of `role_id` of `resource` (a service principal's body) to a principal.
    pub fn new(
        principal_id: &str,
        principal_type: &str,
        principal_name: &str,
        role_id: &str,
        resource: &Value,
        now: DateTime<Utc>,
    ) -> Self {
        let mut raw = guid_bytes_le(principal_id).to_vec();
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Assignment {
            id: crate::crypto::b64url(&raw),
            deleted_date_time: None,
            app_role_id: role_id.into(),
            created_date_time: fmt_7(now),
            principal_display_name: principal_name.into(),
            principal_id: principal_id.into(),
            principal_type: principal_type.into(),
            resource_display_name: resource["displayName"].as_str().map(str::to_string),
            resource_id: s(resource, "id"),
        }
    }
}

/// A delegated permission grant (oauth2PermissionGrant), in Graph's shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub client_id: String,
    /// `AllPrincipals` (admin consent) or `Principal` (one user's, `principal_id`).
    pub consent_type: String,
    pub id: String,
    pub principal_id: Option<String>,
    pub resource_id: String,
    /// Space-separated scope values.
    pub scope: String,
}

impl Grant {
    /// A new grant, its id made from client, resource and principal.
    pub fn new(client: &str, resource: &str, principal: Option<&str>, scope: String) -> Self {
        Grant {
            client_id: client.into(),
            consent_type: if principal.is_some() {
                "Principal"
            } else {
                "AllPrincipals"
            }
            .into(),
            id: grant_id(client, resource, principal),
            principal_id: principal.map(str::to_string),
            resource_id: resource.into(),
            scope,
        }
    }
}

/// A record as Graph shows it.
pub fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).expect("records serialise")
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct Tenant {
    pub id: String,
    pub domains: Vec<String>,
    #[serde(default)]
    pub apps: Vec<AppRec>,
    #[serde(default)]
    pub deleted_apps: Vec<AppRec>,
    #[serde(default)]
    pub sps: Vec<SpRec>,
    /// Soft-deleted service principals ([`super::recycle`]).
    #[serde(default)]
    pub deleted_sps: Vec<DeletedSp>,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub users: Vec<UserRec>,
    #[serde(default)]
    pub groups: Vec<GroupRec>,
    /// App management policies ([`super::app_policies`]).
    #[serde(default)]
    pub app_policies: super::app_policies::AppPolicies,
    /// Claims-mapping policies and their service principals.
    #[serde(default)]
    pub claims_policies: super::claims_policies::ClaimsPolicies,
    /// The configured object quotas (enforced by the quota module).
    #[serde(default)]
    pub quota: Quota,
    /// Object id → the caller that created it (the per-creator quota's count).
    #[serde(default)]
    pub creators: BTreeMap<String, String>,
    /// Changes to applications and service principals, for delta queries ([`super::changes`]).
    #[serde(default)]
    pub changes: super::changes::ChangeLog,
}

/// A stored user: its Graph entity and a salted password hash (the password itself is not kept).
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct UserRec {
    pub body: Value,
    pub salt: String,
    pub password_sha256: String,
    #[serde(default)]
    pub admin: bool,
    /// Directory extension values, by the name as last written ([`super::extensions`]).
    #[serde(default)]
    pub extensions: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct GroupRec {
    pub body: Value,
    /// Object ids of the member users.
    pub members: Vec<String>,
}

/// The records whose `body` is a Graph object, read through [`GraphObject`].
macro_rules! graph_objects {
    ($($record:ty),*) => {$(
        impl GraphObject for $record {
            fn body(&self) -> &Value {
                &self.body
            }
        }
    )*};
}
graph_objects!(AppRec, SpRec, UserRec, GroupRec);

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct Store {
    pub tenants: BTreeMap<String, Tenant>,
    /// issuer -> JWKS document
    #[serde(default)]
    pub trusted_issuers: BTreeMap<String, Value>,
}

pub fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Tenant {
    pub fn new(id: &str, domains: Vec<String>, with_healthcare_sp: bool) -> Self {
        let mut t = Tenant {
            id: id.to_string(),
            domains,
            ..Default::default()
        };
        t.sps.push(SpRec {
            body: graph_sp(id),
            owners: vec![],
            visible_from_ms: 0,
            secrets: vec![],
        });
        t.sps.push(SpRec {
            body: arm_sp(id),
            owners: vec![],
            visible_from_ms: 0,
            secrets: vec![],
        });
        if with_healthcare_sp {
            t.sps.push(SpRec {
                body: healthcare_sp(id),
                owners: vec![],
                visible_from_ms: 0,
                secrets: vec![],
            });
        }
        t
    }
    pub fn publisher_domain(&self) -> String {
        self.domains
            .iter()
            .find(|d| d.ends_with(".onmicrosoft.com"))
            .or(self.domains.first())
            .cloned()
            .unwrap_or_else(|| "contoso.onmicrosoft.com".into())
    }
    pub fn app_idx(&self, id: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.id() == id)
    }
    pub fn app_idx_by_app_id(&self, app_id: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.app_id() == app_id)
    }
    pub fn app_idx_by_unique_name(&self, n: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.unique_name() == Some(n))
    }
    pub fn sp_idx(&self, id: &str) -> Option<usize> {
        self.sps.iter().position(|a| a.id() == id)
    }
    pub fn sp_idx_by_app_id(&self, app_id: &str) -> Option<usize> {
        self.sps.iter().position(|a| a.app_id() == app_id)
    }
    /// The SP whose servicePrincipalNames contain `name` (case-insensitive).
    pub fn sp_idx_by_name(&self, name: &str) -> Option<usize> {
        let n = name.trim_end_matches('/').to_ascii_lowercase();
        self.sps.iter().position(|sp| {
            sp.app_id().eq_ignore_ascii_case(&n)
                || sp.service_principal_names().any(|x| {
                    let x = x.trim_end_matches('/').to_ascii_lowercase();
                    x == n || wildcard_host(&x, &n)
                })
        })
    }
}

/// `https://*.example.com` matches `https://anything.example.com` (first-party resources such as
/// the managed FHIR services, whose hosts are per instance).
fn wildcard_host(pattern: &str, name: &str) -> bool {
    pattern
        .strip_prefix("https://*.")
        .and_then(|domain| Some((domain, name.strip_prefix("https://")?)))
        .is_some_and(|(domain, host)| {
            host.strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1 && !sub.contains('/'))
        })
}

/// Removes `key` from certificate credentials and never shows secret text: what Graph returns on reads.
pub fn app_public_view(app: &AppRec) -> Value {
    let mut b = app.body.clone();
    if let Some(keys) = b.get_mut("keyCredentials").and_then(Value::as_array_mut) {
        for k in keys {
            k["key"] = Value::Null;
        }
    }
    if let Some(p) = b
        .get_mut("passwordCredentials")
        .and_then(Value::as_array_mut)
    {
        for k in p {
            k["secretText"] = Value::Null;
        }
    }
    b
}

/// Applies `$select` (case-insensitive) to an entity.
pub fn select(v: &Value, sel: &[String]) -> Value {
    if sel.is_empty() {
        return v.clone();
    }
    let mut out = Map::new();
    if let Some(o) = v.as_object() {
        for want in sel {
            if let Some((k, val)) = o.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)) {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    Value::Object(out)
}

/// The id of a delegated permission grant: the bytes_le of the client's, the resource's and (for
/// one user's consent) the user's object ids, base64url.
pub fn grant_id(client: &str, resource: &str, principal: Option<&str>) -> String {
    let mut raw = guid_bytes_le(client).to_vec();
    raw.extend_from_slice(&guid_bytes_le(resource));
    if let Some(p) = principal {
        raw.extend_from_slice(&guid_bytes_le(p));
    }
    crate::crypto::b64url(&raw)
}

/// bytes_le of a GUID (the .NET order Entra uses in ids of grants and assignments).
pub fn guid_bytes_le(id: &str) -> [u8; 16] {
    let u = uuid::Uuid::parse_str(id).unwrap_or_default();
    u.to_bytes_le()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn records_serialise_in_graphs_shape() {
        let sp = json!({"id": "8f2e6bd4-2d36-4bd8-9a2b-0c9b1a6f7e10", "displayName": "API"});
        let a = Assignment::new(
            "0d8f7f4e-5a5c-4a4f-9d54-1f4a52d6a1b2",
            "User",
            "Ada",
            "00000000-0000-0000-0000-000000000000",
            &sp,
            Utc::now(),
        );
        let v = to_json(&a);
        assert_eq!(
            keys(&v),
            [
                "id",
                "deletedDateTime",
                "appRoleId",
                "createdDateTime",
                "principalDisplayName",
                "principalId",
                "principalType",
                "resourceDisplayName",
                "resourceId"
            ]
        );
        assert_eq!(v["deletedDateTime"], Value::Null);
        assert_eq!(v["resourceDisplayName"], "API");
        let g = Grant::new("c", "r", None, "User.Read".into());
        let v = to_json(&g);
        assert_eq!(
            keys(&v),
            [
                "clientId",
                "consentType",
                "id",
                "principalId",
                "resourceId",
                "scope"
            ]
        );
        assert_eq!(
            (v["consentType"].as_str(), &v["principalId"]),
            (Some("AllPrincipals"), &Value::Null)
        );
        let back: Grant = serde_json::from_value(v).unwrap();
        assert_eq!(back, g);
    }
}

/// A tenant's configured object quotas (`TenantConfig`); None is the documented default
/// (the quota module enforces them).
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct Quota {
    #[serde(default)]
    pub directory: Option<u64>,
    #[serde(default)]
    pub creator: Option<u64>,
    #[serde(default)]
    pub creator_applies_to_apps: bool,
}
