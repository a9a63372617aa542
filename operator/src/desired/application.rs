//! The Graph `application` body the operator wants, as types: the builders in [`super::resource`]
//! and [`super::client`] fill it, and it is serialised once, where it is sent or compared with what
//! Graph holds ([`Application::body`]). Only the properties the operator manages are here; `None`
//! leaves a property out of the body, so Graph keeps whatever it holds for it.

use serde::Serialize;
use serde_json::Value;

use super::resource::Entitlement;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub display_name: String,
    pub sign_in_audience: &'static str,
    pub tags: Vec<String>,
    /// Set only on create: the key of the upsert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_roles: Option<Vec<AppRole>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<RedirectUris>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spa: Option<RedirectUris>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_client: Option<RedirectUris>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_fallback_public_client: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_resource_access: Option<Vec<RequiredResourceAccess>>,
}

impl Application {
    /// The JSON body Graph receives (and the diff compares with what Graph returns).
    pub fn body(&self) -> Value {
        serde_json::to_value(self).expect("the application body has only string-keyed fields")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    pub requested_access_token_version: i32,
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    pub value: String,
    pub display_name: String,
    pub description: String,
    /// `User` and/or `Application`, sorted.
    pub allowed_member_types: Vec<&'static str>,
    pub is_enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    pub value: String,
    /// `User` or `Admin` consent.
    pub r#type: &'static str,
    pub is_enabled: bool,
    pub admin_consent_display_name: String,
    pub admin_consent_description: String,
    pub user_consent_display_name: String,
    pub user_consent_description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUris {
    pub redirect_uris: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceAccess {
    pub id: String,
    /// `Scope` (delegated) or `Role` (application).
    pub r#type: &'static str,
}

impl AppRole {
    pub fn entitlement(&self) -> Entitlement {
        Entitlement {
            id: self.id.clone(),
            value: self.value.clone(),
        }
    }
}

impl PermissionScope {
    pub fn entitlement(&self) -> Entitlement {
        Entitlement {
            id: self.id.clone(),
            value: self.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unset_properties_are_left_out_of_the_body_and_names_are_graphs() {
        let app = Application {
            display_name: "a".into(),
            sign_in_audience: "AzureADMyOrg",
            tags: vec!["t".into()],
            web: Some(RedirectUris {
                redirect_uris: vec!["https://a/cb".into()],
            }),
            required_resource_access: Some(vec![RequiredResourceAccess {
                resource_app_id: "r".into(),
                resource_access: vec![ResourceAccess {
                    id: "s".into(),
                    r#type: "Scope",
                }],
            }]),
            ..Default::default()
        };
        assert_eq!(
            app.body(),
            json!({"displayName": "a", "signInAudience": "AzureADMyOrg", "tags": ["t"],
                   "web": {"redirectUris": ["https://a/cb"]},
                   "requiredResourceAccess": [{"resourceAppId": "r",
                       "resourceAccess": [{"id": "s", "type": "Scope"}]}]})
        );
    }
}
