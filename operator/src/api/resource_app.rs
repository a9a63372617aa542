//! `FhirResourceApp`: the FHIR server's API registration (the resource application).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::OBJECT_NAME_PATTERN;

use super::access_policy::{AccessPolicySpec, PrincipalAssignment};
use super::common::{AppStatus, DeletionPolicy, SignInAudience, TenantSpec};

/// Literal value of `identifierUri` that selects the `api://{appId}` form.
pub const APP_ID_URI: &str = "api://{appId}";

/// Registers a FHIR server's API (resource application) in Microsoft Entra ID: identifier URI
/// (= token audience), app roles, delegated scopes (optionally SMART on FHIR scopes), service principal,
/// and a ConfigMap with the settings the FHIR server needs to validate tokens.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fhirapps.io",
    version = "v1alpha1",
    kind = "FhirResourceApp",
    namespaced,
    status = "AppStatus",
    shortname = "fra",
    category = "fhir",
    doc = "A FHIR server's API registered in Microsoft Entra ID (resource application).",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Audience","type":"string","jsonPath":".status.audience"}"#,
    printcolumn = r#"{"name":"Client ID","type":"string","jsonPath":".status.clientId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("isURL(self.fhirUrl) && url(self.fhirUrl).getHostname() != '' && (url(self.fhirUrl).getScheme() == 'https' || (url(self.fhirUrl).getScheme() == 'http' && url(self.fhirUrl).getHostname() in ['localhost', '127.0.0.1']))").message("fhirUrl must be an https:// URL (or http://localhost for development)"),
    validation = Rule::new("!has(self.identifierUri) || self.identifierUri == 'api://{appId}' || self.identifierUri.startsWith('https://') || self.identifierUri.startsWith('api://')").message("identifierUri must be an https:// or api:// URI, or the literal 'api://{appId}'"),
    validation = Rule::new("!has(self.signInAudience) || self.signInAudience != 'AzureADandPersonalMicrosoftAccount' || (has(self.requestedAccessTokenVersion) && self.requestedAccessTokenVersion == 2)").message("signInAudience AzureADandPersonalMicrosoftAccount needs requestedAccessTokenVersion: 2"),
    validation = Rule::new("!has(self.appRoles) || !has(self.scopes) || self.appRoles.all(r, !self.scopes.exists(s, s.value == r.value))").message("a value cannot be both an app role and a scope: Entra refuses one value under two ids"),
    validation = Rule::new("!has(self.smart) || !has(self.smart.scopes) || self.smart.scopes.all(s, !(s.matches('^(patient|user|system)[/.$]') && s.contains('?')))").message("a query-qualified (granular) SMART scope such as patient/Observation.rs?category=... cannot be used: an Entra scope value cannot carry the query (Entra has no place for its parameters, and '|' is not an allowed scope character), so use the unqualified scope, e.g. patient/Observation.rs"),
    validation = Rule::new("!has(self.smart) || !has(self.smart.scopes) || self.smart.scopes.all(s, !s.matches('^(patient|user|system)/') || s.contains('?') || (s.matches('^(patient|user|system)/([*]|[A-Za-z]+)[.](read|write|[*]|c?r?u?d?s?)$') && !s.endsWith('.')))").message("a SMART scope must be <patient|user|system>/<Type or *>.<level>: v1 levels read, write or *, or SMART v2 permissions from c, r, u, d, s, each at most once and in that order (e.g. patient/Patient.rs, user/*.cruds)"),
    validation = Rule::new("!has(self.smart) || !has(self.smart.fhirUserClaim) || !self.smart.fhirUserClaim || self.smart.enabled").message("smart.fhirUserClaim needs smart.enabled: true: the fhirUser claim is for SMART on FHIR clients"),
    validation = Rule::new("!has(self.tenant) || !has(self.tenant.credentialsSecretRef) || has(self.tenant.tenantId)").message("tenant.credentialsSecretRef needs tenant.tenantId"))]
pub struct FhirResourceAppSpec {
    /// URL of the FHIR server, e.g. `https://fhir.contoso.example`. Used as the default identifier URI
    /// (lower-cased) and display name.
    #[schemars(length(min = 1, max = 2048))]
    pub fhir_url: String,
    /// Application ID URI (token audience for v1 tokens). Default: `fhirUrl` lower-cased, which needs the
    /// host to be on a verified domain of the tenant. The literal `api://{appId}` selects the app-ID form for
    /// tenants without that verified domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub identifier_uri: Option<String>,
    /// Display name in Entra ID. Default: `fhirUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// App roles (application permissions and user roles). Default: the open-source FHIR server's
    /// roles.json names globalReader, globalWriter, globalExporter, globalImporter, globalConverter,
    /// globalAdmin and smartUser, each allowed for users and applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["value"]))]
    pub app_roles: Option<Vec<AppRoleSpec>>,
    /// Delegated scopes. Default: `user_impersonation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["value"]))]
    pub scopes: Option<Vec<ScopeSpec>>,
    /// SMART on FHIR scopes, published as delegated scopes with names Entra accepts
    /// (`patient/*.read` → `patient.all.read`, `launch/patient` → `launch.patient`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart: Option<SmartSpec>,
    /// Who may sign in. Default: AzureADMyOrg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_audience: Option<SignInAudience>,
    /// Access-token version the FHIR server receives (1 or 2). Default 1: the audience is then the
    /// identifier URI; with 2 it is the application ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2))]
    pub requested_access_token_version: Option<i32>,
    /// Where the FHIR server's token-validation settings are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ResourceOutputSpec>,
    /// Tenant to register in. Default: the operator's own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantSpec>,
    /// Delete (default: soft delete, restorable for 30 days), Purge (delete for good) or Orphan the
    /// Entra objects when this resource is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an application with the same uniqueName that this operator did not create. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
    /// Which namespaces' FhirClientApps may use this server and with what (docs/access-policy.md).
    /// Default: clients in this namespace get any non-privileged role and any scope; other namespaces
    /// get nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<AccessPolicySpec>,
    /// App roles assigned to Entra users and groups, by object ID. When set, the operator owns the
    /// user and group assignments of this API's service principal: others are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["principalId", "appRole"]))]
    pub app_role_assignments: Option<Vec<PrincipalAssignment>>,
    /// Only assigned clients, users and groups get tokens for this API (the service principal's
    /// `appRoleAssignmentRequired`). Default true; false lets any application and user of the tenant
    /// get a token (without roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_assignment_required: Option<bool>,
}

/// Which principals an app role can be assigned to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MemberType {
    User,
    Application,
}

/// One app role.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleSpec {
    /// Value in the token's `roles` claim, e.g. `globalReader` (no spaces).
    #[schemars(length(min = 1, max = 120), regex(pattern = r"^[^\s]+$"))]
    pub value: String,
    /// Display name. Default: the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Description. Default: the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// Who may be assigned the role. Default: User and Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2), extend("x-kubernetes-list-type" = "set"))]
    pub allowed_member_types: Option<Vec<MemberType>>,
}

/// Who may consent to a delegated scope.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ScopeConsentType {
    User,
    Admin,
}

/// One delegated scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpec {
    /// Scope value (letters, digits, `.`, `_`, `-`), e.g. `user_impersonation`.
    #[schemars(length(min = 1, max = 120), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub value: String,
    /// User (default) or Admin consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<ScopeConsentType>,
    /// Consent display name. Default derived from the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Consent description. Default derived from the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
}

/// Opt-in SMART on FHIR scopes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmartSpec {
    /// Publish SMART scopes.
    pub enabled: bool,
    /// SMART scopes in SMART notation (`patient/*.read`, `launch/patient`, `fhirUser`, …). Default:
    /// launch, launch/patient, fhirUser, patient/*.read, patient/*.write, user/*.read, user/*.write, user/*.*.
    /// `openid` and `offline_access` are Entra's own scopes and are not published on the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub scopes: Option<Vec<String>>,
    /// Issue the `fhirUser` claim (the signed-in user's FHIR resource, e.g. `Practitioner/123`) in
    /// this API's access tokens and in the ID tokens of the SMART clients (Confidential and Public
    /// FhirClientApps) that target it. The operator creates the directory extension `fhirUser` on
    /// this application (`status.fhirUser.extensionAttribute` names it: set each user's value there),
    /// a claims-mapping policy, its assignments and `api.acceptMappedClaims`; it needs the Graph
    /// permission `Policy.ReadWrite.ApplicationConfiguration` (docs/permissions.md). The
    /// `FhirUserClaim` condition says whether the claim is in place. Default false; needs `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user_claim: Option<bool>,
}

/// Output objects of a resource app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOutputSpec {
    /// ConfigMap name. Default: `<name>-fhir-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = OBJECT_NAME_PATTERN)
    )]
    pub config_map_name: Option<String>,
    /// Also write the same keys to a Secret of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = OBJECT_NAME_PATTERN)
    )]
    pub secret_name: Option<String>,
}
