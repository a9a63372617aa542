//! The operator's own Graph types: only the fields it reads. Unknown fields are ignored, absent ones
//! default, so both full create bodies and `$select` bodies parse.

use serde::Deserialize;
use serde_json::Value;

use super::GraphError;

/// Parses an application body; Graph always returns `id` and `appId`, and the operator must not go on
/// (PATCH `/applications/`, write an empty client ID) with a body that lacks them.
pub fn parse_application(op: &str, v: &Value) -> Result<Application, GraphError> {
    let app: Application = serde_json::from_value(v.clone())
        .map_err(|e| GraphError::Decode(format!("{op}: application: {e}")))?;
    if app.id.is_empty() || app.app_id.is_empty() {
        return Err(GraphError::Decode(format!(
            "{op}: application in the response has no id or appId"
        )));
    }
    Ok(app)
}

/// Parses a service principal body; `id` and `appId` must be present.
pub fn parse_service_principal(op: &str, v: Value) -> Result<ServicePrincipal, GraphError> {
    let sp: ServicePrincipal = serde_json::from_value(v)
        .map_err(|e| GraphError::Decode(format!("{op}: service principal: {e}")))?;
    if sp.id.is_empty() || sp.app_id.is_empty() {
        return Err(GraphError::Decode(format!(
            "{op}: service principal in the response has no id or appId"
        )));
    }
    Ok(sp)
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Application {
    pub id: String,
    pub app_id: String,
    pub display_name: Option<String>,
    pub unique_name: Option<String>,
    pub identifier_uris: Vec<String>,
    pub tags: Vec<String>,
    pub password_credentials: Vec<PasswordCredential>,
    pub key_credentials: Vec<KeyCredential>,
    pub sign_in_audience: Option<String>,
}

/// A certificate registered on an application (Graph never returns its `key` here).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyCredential {
    pub key_id: String,
    pub display_name: Option<String>,
    pub end_date_time: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordCredential {
    pub key_id: String,
    pub display_name: Option<String>,
    pub hint: Option<String>,
    pub start_date_time: Option<String>,
    pub end_date_time: Option<String>,
    /// Only in the addPassword response. Never log or print it.
    pub secret_text: Option<String>,
}

impl PasswordCredential {
    pub fn end(&self) -> Option<jiff::Timestamp> {
        self.end_date_time.as_deref()?.parse().ok()
    }
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: Option<String>,
    /// Only assigned principals get tokens for it.
    pub app_role_assignment_required: bool,
    pub app_roles: Vec<AppRole>,
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppRole {
    pub id: String,
    pub value: Option<String>,
    pub is_enabled: bool,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PermissionScope {
    pub id: String,
    pub value: Option<String>,
    pub is_enabled: bool,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: String,
    pub principal_id: String,
    pub resource_id: String,
    /// User, Group or ServicePrincipal.
    pub principal_type: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PermissionGrant {
    pub id: String,
    pub client_id: String,
    pub resource_id: String,
    pub consent_type: Option<String>,
    pub scope: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedIdentityCredential {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// A `{"value":[…]}` list page.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// Token endpoint success body.
#[derive(Deserialize, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}
