//! The operator's own Graph types: only the fields it reads. Unknown fields are ignored, absent ones
//! default, so both full create bodies and `$select` bodies parse.

use serde::Deserialize;
use serde_json::Value;

use super::GraphError;

/// The token endpoint's success body is the credential's (`crate::http::credential`).
pub use crate::http::credential::TokenResponse;

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
    pub created_date_time: Option<String>,
    pub api: Option<AppApi>,
}

/// The part of an application's `api` the operator reads besides what it converges.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppApi {
    /// Graph answers `null` until it is set.
    pub accept_mapped_claims: Option<bool>,
}

impl Application {
    /// `api.acceptMappedClaims` is true.
    pub fn accepts_mapped_claims(&self) -> bool {
        self.api.as_ref().and_then(|a| a.accept_mapped_claims) == Some(true)
    }

    /// When the application was created (app management policies restrict by it).
    pub fn created(&self) -> Option<jiff::Timestamp> {
        self.created_date_time.as_deref()?.parse().ok()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE_201: &str = include_str!("testdata/create_201.json");
    const ADD_PASSWORD_200: &str = include_str!("testdata/add_password_200.json");
    const GET_200: &str = include_str!("testdata/get_200.json");
    const LIST_200: &str = include_str!("testdata/list_by_display_name_200.json");
    const SP_CREATE_201: &str = include_str!("testdata/sp_create_201.json");

    #[test]
    fn parses_recorded_application_bodies() {
        let created: Application = serde_json::from_str(CREATE_201).unwrap();
        assert_eq!(created.id, "f0794693-cfca-422b-8c0a-9a91666afc9a");
        assert!(!created.app_id.is_empty());
        assert_eq!(
            created.sign_in_audience.as_deref(),
            Some("AzureADMultipleOrgs")
        );
        let got: Application = serde_json::from_str(GET_200).unwrap();
        assert_eq!(got.password_credentials.len(), 2);
        assert!(
            got.password_credentials
                .iter()
                .all(|p| p.secret_text.is_none())
        );
        assert_eq!(got.password_credentials[1].hint.as_deref(), Some("yln"));
        assert!(
            got.password_credentials[0].end().is_some(),
            "7-digit fractional timestamps parse"
        );
        let page: Page<Application> = serde_json::from_str(LIST_200).unwrap();
        assert_eq!(page.value.len(), 1);
        assert_eq!(page.value[0].id, created.id);
    }

    #[test]
    fn parses_recorded_add_password() {
        let p: PasswordCredential = serde_json::from_str(ADD_PASSWORD_200).unwrap();
        assert_eq!(p.key_id, "3a299473-3d5a-4ab5-b9ea-1e173023719f");
        assert_eq!(p.hint.as_deref(), Some("yln"));
        assert!(p.secret_text.as_deref().unwrap().starts_with("yln"));
        assert!(p.end().is_some());
    }

    #[test]
    fn parses_recorded_service_principal() {
        let sp: ServicePrincipal = serde_json::from_str(SP_CREATE_201).unwrap();
        assert!(!sp.id.is_empty() && !sp.app_id.is_empty());
    }
}
