//! Typed views of the Graph fields the emulator reasons about — ids and names, the sign-in
//! audience, identifier URIs and service principal names, credentials' ids and dates, app roles and
//! delegated scopes, token version, assignment requirement. The JSON body stays the record: Graph
//! answers with it as stored (every property a client sent, in its order), so a view only reads it,
//! never copies or rewrites it. A missing or mistyped field reads as Graph's default (empty, false,
//! none), as `store::s` did.
use super::basics::parse_time;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// `signInAudience` of an application only its home tenant may use.
pub const SINGLE_TENANT: &str = "AzureADMyOrg";

/// An app role (`appRoles[]`) or a delegated scope (`oauth2PermissionScopes[]`).
#[derive(Clone, Debug)]
pub struct Permission<'a> {
    pub id: &'a str,
    pub value: &'a str,
    /// A scope's `type` (`User` or `Admin`); empty for an app role.
    pub kind: &'a str,
    /// `isEnabled`: only an explicit `false` disables.
    pub enabled: bool,
    /// An app role's `allowedMemberTypes` (`Application`, `User`); empty for a scope.
    pub allowed_member_types: Vec<&'a str>,
}

/// A password or key credential's id and validity.
#[derive(Clone, Copy, Debug)]
pub struct Credential<'a> {
    pub key_id: &'a str,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// The fields of an application or service principal body.
pub trait GraphObject {
    fn body(&self) -> &Value;

    fn text(&self, field: &str) -> &str {
        self.body()
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn id(&self) -> &str {
        self.text("id")
    }
    fn app_id(&self) -> &str {
        self.text("appId")
    }
    fn display_name(&self) -> &str {
        self.text("displayName")
    }
    /// `uniqueName` (applications; absent until set).
    fn unique_name(&self) -> Option<&str> {
        self.body().get("uniqueName").and_then(Value::as_str)
    }
    fn sign_in_audience(&self) -> &str {
        self.text("signInAudience")
    }
    /// Whether other tenants may use the application (any audience but `AzureADMyOrg`).
    fn is_multi_tenant(&self) -> bool {
        self.sign_in_audience() != SINGLE_TENANT
    }
    /// `appRoleAssignmentRequired` (service principals).
    fn assignment_required(&self) -> bool {
        self.body()["appRoleAssignmentRequired"] == Value::Bool(true)
    }
    /// `api.requestedAccessTokenVersion` (applications; Graph's default, none, means v1).
    fn requested_token_version(&self) -> Option<i64> {
        self.body()["api"]["requestedAccessTokenVersion"].as_i64()
    }
    /// `identifierUris` (applications).
    fn identifier_uris(&self) -> impl Iterator<Item = &str> {
        strings(&self.body()["identifierUris"])
    }
    /// `servicePrincipalNames` (service principals).
    fn service_principal_names(&self) -> impl Iterator<Item = &str> {
        strings(&self.body()["servicePrincipalNames"])
    }
    /// `appRoles`.
    fn app_roles(&self) -> impl Iterator<Item = Permission<'_>> {
        permissions(&self.body()["appRoles"])
    }
    /// `oauth2PermissionScopes` (service principals; an application has them under `api`).
    fn scopes(&self) -> impl Iterator<Item = Permission<'_>> {
        permissions(&self.body()["oauth2PermissionScopes"])
    }
    /// `passwordCredentials` (applications).
    fn password_credentials(&self) -> impl Iterator<Item = Credential<'_>> {
        credentials(&self.body()["passwordCredentials"])
    }
    /// `keyCredentials` (applications).
    fn key_credentials(&self) -> impl Iterator<Item = Credential<'_>> {
        credentials(&self.body()["keyCredentials"])
    }
}

impl GraphObject for Value {
    fn body(&self) -> &Value {
        self
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn permissions(v: &Value) -> impl Iterator<Item = Permission<'_>> {
    v.as_array().into_iter().flatten().map(|p| Permission {
        id: text(p, "id"),
        value: text(p, "value"),
        kind: text(p, "type"),
        enabled: p["isEnabled"] != Value::Bool(false),
        allowed_member_types: strings(&p["allowedMemberTypes"]).collect(),
    })
}

fn credentials(v: &Value) -> impl Iterator<Item = Credential<'_>> {
    v.as_array().into_iter().flatten().map(|c| Credential {
        key_id: text(c, "keyId"),
        start: parse_time(text(c, "startDateTime")),
        end: parse_time(text(c, "endDateTime")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_read_graphs_fields_and_defaults() {
        let sp = json!({"id": "o1", "appId": "a1", "appRoleAssignmentRequired": true,
            "servicePrincipalNames": ["api://x", 7, "a1"],
            "appRoles": [{"id": "r1", "value": "Read", "isEnabled": false}, {"id": "r2", "value": "Write", "allowedMemberTypes": ["Application"]}],
            "oauth2PermissionScopes": [{"id": "s1", "value": "user_impersonation", "type": "User"}]});
        assert_eq!((sp.id(), sp.app_id(), sp.display_name()), ("o1", "a1", ""));
        assert!(sp.assignment_required() && sp.is_multi_tenant());
        assert_eq!(
            sp.service_principal_names().collect::<Vec<_>>(),
            ["api://x", "a1"]
        );
        let roles: Vec<_> = sp.app_roles().map(|r| (r.value, r.enabled)).collect();
        assert_eq!(roles, [("Read", false), ("Write", true)]);
        let members: Vec<_> = sp.app_roles().map(|r| r.allowed_member_types).collect();
        assert_eq!(members, [vec![], vec!["Application"]]);
        assert_eq!(sp.scopes().next().map(|s| s.kind), Some("User"));
        let app = json!({"signInAudience": "AzureADMyOrg", "api": {"requestedAccessTokenVersion": 2},
            "passwordCredentials": [{"keyId": "k", "endDateTime": "2030-01-01T00:00:00Z"}]});
        assert!(!app.is_multi_tenant());
        let uris = json!({"identifierUris": ["api://a", null, "https://b"]});
        assert_eq!(
            uris.identifier_uris().collect::<Vec<_>>(),
            ["api://a", "https://b"]
        );
        assert_eq!(app.requested_token_version(), Some(2));
        assert_eq!(app.unique_name(), None);
        let c = app.password_credentials().next().unwrap();
        assert_eq!((c.key_id, c.start.is_none()), ("k", true));
        assert_eq!(c.end.map(|e| e.timestamp()), Some(1_893_456_000));
        assert!(!json!({}).assignment_required());
    }
}
