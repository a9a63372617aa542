//! The Graph objects the directory creates, in Graph's shape: a new application registration, a
//! service principal for an application, the first-party service principals every tenant holds
//! (Microsoft Graph with its app roles, Azure Resource Manager, Azure Healthcare APIs), and
//! keeping an SP's copy of its application's fields in step.
use super::basics::fmt_secs;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub const HEALTHCARE_APP_ID: &str = "4f6778d8-5aef-43dc-a1ff-b073724b9495";

/// The tenant that owns Microsoft's first-party applications.
pub const MICROSOFT_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// Graph application permissions the emulator knows: (value, app role id).
pub const GRAPH_ROLES: &[(&str, &str)] = &[
    (
        "Application.ReadWrite.OwnedBy",
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
    ),
    (
        "Application.ReadWrite.All",
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    ),
    (
        "Application.Read.All",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    ),
    (
        "AppRoleAssignment.ReadWrite.All",
        "06b708a9-e830-4db3-a914-8e69da51d44f",
    ),
    (
        "DelegatedPermissionGrant.ReadWrite.All",
        "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
    ),
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
    // Reads app management policies (Learn tenantappmanagementpolicy-get); the id is Graph's
    // appRole id, as public scripts grant it (e.g. ScubaGear's permission map).
    ("Policy.Read.All", "246dd0d5-5bd0-4def-940b-0421030a5b68"),
    // Writes claims-mapping policies (Learn `claimsmappingpolicy-post-claimsmappingpolicies`); the
    // id is Graph's appRole id as the Graph permissions reference lists it ("Application
    // Permission | Id | be74164b-…", microsoft-graph-docs-contrib `permissions-reference.md`).
    (
        "Policy.ReadWrite.ApplicationConfiguration",
        "be74164b-cff1-491c-8741-e671cb536e13",
    ),
    (
        "Directory.ReadWrite.All",
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    ),
];

pub const HEALTHCARE_SCOPE_ID: &str = "7bea26bb-8a0a-4e4b-8c77-e2e7e7dc4b3e";

/// A new application registration of a tenant whose publisher domain is `publisher_domain`.
/// `nativeAuthenticationApisEnabled` is a v1.0 property newer than the recordings (Learn `application`:
/// "none" or "all"); an application that never set it reads null (an application read in 2026,
/// the portal manifest quoted in a public repository: `"nativeAuthenticationApisEnabled": null`).
pub fn new_application(publisher_domain: &str, now: DateTime<Utc>) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "deletedDateTime": null,
        "appId": uuid::Uuid::new_v4().to_string(),
        "applicationTemplateId": null,
        "disabledByMicrosoftStatus": null,
        "createdDateTime": fmt_secs(now),
        "displayName": null,
        "description": null,
        "groupMembershipClaims": null,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": null,
        "isFallbackPublicClient": null,
        "nativeAuthenticationApisEnabled": null,
        "notes": null,
        "publisherDomain": publisher_domain,
        "serviceManagementReference": null,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": null,
        "uniqueName": null,
        "samlMetadataUrl": null,
        "defaultRedirectUri": null,
        "certification": null,
        "optionalClaims": null,
        "servicePrincipalLockConfiguration": null,
        "requestSignatureVerification": null,
        "addIns": [],
        "api": {
            "acceptMappedClaims": null,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": null,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": []
        },
        "appRoles": [],
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null},
        "keyCredentials": [],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null, "addedDateTime": null},
        "web": {
            "homePageUrl": null, "logoutUrl": null, "redirectUris": [],
            "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false},
            "redirectUriSettings": []
        },
        "spa": {"redirectUris": []}
    })
}

/// The writable top-level properties of an application.
pub const APP_WRITABLE: &[&str] = &[
    "displayName",
    "description",
    "groupMembershipClaims",
    "identifierUris",
    "isDeviceOnlyAuthSupported",
    "isFallbackPublicClient",
    "nativeAuthenticationApisEnabled",
    "notes",
    "serviceManagementReference",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "uniqueName",
    "samlMetadataUrl",
    "defaultRedirectUri",
    "certification",
    "optionalClaims",
    "servicePrincipalLockConfiguration",
    "requestSignatureVerification",
    "addIns",
    "api",
    "appRoles",
    "info",
    "keyCredentials",
    "parentalControlSettings",
    "passwordCredentials",
    "publicClient",
    "requiredResourceAccess",
    "verifiedPublisher",
    "web",
    "spa",
    "applicationTemplateId",
    "disabledByMicrosoftStatus",
];

pub fn new_service_principal(app: &Value, owner_tenant: &str, now: DateTime<Utc>) -> Value {
    let mut names = vec![app["appId"].clone()];
    if let Some(u) = app["identifierUris"].as_array() {
        names.extend(u.iter().cloned());
    }
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "deletedDateTime": null,
        "accountEnabled": true,
        "alternativeNames": [],
        "appDisplayName": app["displayName"],
        "appDescription": app["description"],
        "appId": app["appId"],
        "applicationTemplateId": null,
        "appOwnerOrganizationId": owner_tenant,
        "appRoleAssignmentRequired": false,
        "createdDateTime": fmt_secs(now),
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": app["displayName"],
        "homepage": app["web"]["homePageUrl"],
        "loginUrl": null,
        "logoutUrl": app["web"]["logoutUrl"],
        "notes": null,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": null,
        "preferredTokenSigningKeyThumbprint": null,
        "replyUrls": app["web"]["redirectUris"],
        "servicePrincipalNames": names,
        "servicePrincipalType": "Application",
        "signInAudience": app["signInAudience"],
        "tags": app["tags"],
        "tokenEncryptionKeyId": null,
        "samlSingleSignOnSettings": null,
        "addIns": [],
        "appRoles": app["appRoles"],
        "info": app["info"],
        "keyCredentials": [],
        "oauth2PermissionScopes": app["api"]["oauth2PermissionScopes"],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null, "addedDateTime": null}
    })
}

/// Keeps an SP in step with its application (names, roles, scopes, tags), as Entra does.
pub fn sync_sp_from_app(sp: &mut Value, app: &Value) {
    let mut names = vec![app["appId"].clone()];
    if let Some(u) = app["identifierUris"].as_array() {
        names.extend(u.iter().cloned());
    }
    sp["servicePrincipalNames"] = Value::Array(names);
    sp["appRoles"] = app["appRoles"].clone();
    sp["oauth2PermissionScopes"] = app["api"]["oauth2PermissionScopes"].clone();
    sp["appDisplayName"] = app["displayName"].clone();
    sp["signInAudience"] = app["signInAudience"].clone();
    sp["replyUrls"] = app["web"]["redirectUris"].clone();
}

fn first_party_app(app_id: &str, name: &str, tenant: &str) -> Value {
    let now = DateTime::parse_from_rfc3339("2019-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut app = json!({"appId": app_id, "displayName": name, "description": null, "identifierUris": [],
        "web": {"homePageUrl": null, "logoutUrl": null, "redirectUris": []}, "signInAudience": "AzureADMultipleOrgs",
        "tags": [], "appRoles": [], "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null},
        "api": {"oauth2PermissionScopes": []}});
    let _ = tenant;
    let mut sp = new_service_principal(&app.take(), MICROSOFT_TENANT, now);
    sp["id"] = Value::String(uuid::Uuid::new_v4().to_string());
    sp
}

pub fn graph_sp(tenant: &str) -> Value {
    let mut sp = first_party_app(GRAPH_APP_ID, "Microsoft Graph", tenant);
    sp["servicePrincipalNames"] = json!([
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "https://dod-graph.microsoft.us",
        "https://graph.microsoft.us",
        "https://canary.graph.microsoft.com",
        GRAPH_APP_ID
    ]);
    let roles: Vec<Value> = GRAPH_ROLES
        .iter()
        .map(|(v, id)| {
            json!({"allowedMemberTypes": ["Application"], "description": format!("Allows the app to use {v} without a signed-in user."),
                   "displayName": v.to_string(), "id": id, "isEnabled": true, "origin": "Application", "value": v})
        })
        .collect();
    sp["appRoles"] = Value::Array(roles);
    sp["oauth2PermissionScopes"] = json!([{
        "adminConsentDescription": "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users.",
        "adminConsentDisplayName": "Sign in and read user profile", "id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        "isEnabled": true, "type": "User", "userConsentDescription": "Allows you to sign in to the app with your organizational account and let the app read your profile.",
        "userConsentDisplayName": "Sign you in and read your profile", "value": "User.Read"}]);
    sp
}

/// Azure Resource Manager's first-party application ("Windows Azure Service Management API"), in
/// every tenant.
pub fn arm_sp(tenant: &str) -> Value {
    let mut sp = first_party_app(
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
        tenant,
    );
    sp["servicePrincipalNames"] = json!([
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "https://management.azure.com/",
        "https://management.core.windows.net/"
    ]);
    sp
}

pub fn healthcare_sp(tenant: &str) -> Value {
    let mut sp = first_party_app(HEALTHCARE_APP_ID, "Azure Healthcare APIs", tenant);
    sp["servicePrincipalNames"] = json!([
        HEALTHCARE_APP_ID,
        "https://azurehealthcareapis.com",
        "https://azurehealthcareapis.com/",
        "https://*.azurehealthcareapis.com"
    ]);
    sp["oauth2PermissionScopes"] = json!([{
        "adminConsentDescription": "Allow the application to access Azure Healthcare APIs on behalf of the signed-in user.",
        "adminConsentDisplayName": "Access Azure Healthcare APIs", "id": HEALTHCARE_SCOPE_ID,
        "isEnabled": true, "type": "User", "userConsentDescription": "Allow the application to access Azure Healthcare APIs on your behalf.",
        "userConsentDisplayName": "Access Azure Healthcare APIs", "value": "user_impersonation"}]);
    sp
}
