//! Types shared by both custom resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Go-style duration as the operator parses it (`0`, `720h`, `1h30m`; units h, m, s, ms).
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$";

/// A Kubernetes object name (DNS subdomain).
pub const OBJECT_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";

/// What happens to the Entra objects when the Kubernetes resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum DeletionPolicy {
    /// Delete the application, its service principal, grants and assignments (default). Entra ID
    /// keeps them in its deleted items for 30 days, holding the application's uniqueName: creating
    /// this resource again within that time restores them (same client ID and audience), and they can
    /// be restored by hand (docs/upgrade-uninstall.md).
    #[default]
    Delete,
    /// Delete as `Delete` does, then purge the application and its service principal from Entra's
    /// deleted items: the name and the directory quota are freed at once, and nothing can be restored.
    Purge,
    /// Leave everything in Entra ID as it is.
    Orphan,
}

/// Which accounts may sign in to the application (Graph `signInAudience`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum SignInAudience {
    /// Accounts in this organisational directory only (default).
    #[default]
    AzureADMyOrg,
    /// Accounts in any organisational directory.
    AzureADMultipleOrgs,
    /// Any organisational directory and personal Microsoft accounts (needs access-token version 2).
    AzureADandPersonalMicrosoftAccount,
}

impl SignInAudience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AzureADMyOrg => "AzureADMyOrg",
            Self::AzureADMultipleOrgs => "AzureADMultipleOrgs",
            Self::AzureADandPersonalMicrosoftAccount => "AzureADandPersonalMicrosoftAccount",
        }
    }
}

/// A reference to an object in the resource's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the object in the same namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = OBJECT_NAME_PATTERN)
    )]
    pub name: String,
}

/// The Entra tenant the application is registered in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Tenant ID (GUID). Default: the operator's own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub tenant_id: Option<String>,
    /// A Secret in this namespace holding credentials for that tenant: keys `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET`. Needs `tenantId`. Default: the operator's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectReference>,
}

/// Observed state shared by both resources.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready / Reconciling / Stalled (kstatus semantics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Application (client) ID of the registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Tenant the application lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Object ID of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_object_id: Option<String>,
    /// Object ID of the service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_object_id: Option<String>,
    /// The deterministic Graph `uniqueName` of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// Token audience clients ask for (resource apps: what the FHIR server validates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Name of the Secret or ConfigMap the operator writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_name: Option<String>,
    /// Current credential (never its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialStatus>,
    /// The tenant's app management policy as it applies to this client's credential, when the
    /// operator could read it (client apps with a ClientSecret or Certificate only; the
    /// `AppManagementPolicy` condition says when it could not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_policy: Option<CredentialPolicyStatus>,
    /// Extra information the user must know (e.g. how data-plane access is granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// What a FhirResourceApp publishes, as its clients request it (resource apps only): the one
    /// source clients read, so a client never recomputes its target's scopes and roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    /// What a client was granted on its target and what its target's access policy refused
    /// (client apps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<super::access_policy::AccessStatus>,
    /// Azure RBAC role assignments the operator holds on the managed FHIR service for this client
    /// (clients with `target.managed.dataRoles` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub role_assignments: Vec<RoleAssignmentStatus>,
    /// The FhirResourceApps on whose API this client's service principal may hold app role
    /// assignments or delegated grants (client apps only). When the client stops targeting one, or
    /// is orphaned from another namespace, the operator removes what it holds there first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub granted_on: Vec<GrantHolder>,
    /// The `fhirUser` claim mapping in place (resource apps with `smart.fhirUserClaim`; client apps
    /// whose target has it, on their own service principal). Absent when the claim is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<FhirUserStatus>,
    /// The Secret (in this namespace) whose credentials reach the application's tenant, when not the
    /// operator's own: a client following its FhirResourceApp's tenant keeps it here, so that its
    /// deletion can still use it after that FhirResourceApp is gone (client apps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_credentials_secret: Option<String>,
}

/// Where the `fhirUser` claim comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct FhirUserStatus {
    /// The directory extension's full name, `extension_<appId without dashes>_fhirUser`: set each
    /// user's FHIR resource there (`PATCH /users/{id}` with `{"<name>": "Practitioner/123"}`).
    pub extension_attribute: String,
    /// Object ID of the claims-mapping policy that emits it as `fhirUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_mapping_policy_id: Option<String>,
}

/// A FhirResourceApp whose API a client's service principal may hold grants on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct GrantHolder {
    /// `namespace/name` of the FhirResourceApp.
    pub resource_app: String,
    /// Object ID of its service principal (the API the assignments and grants are on).
    pub service_principal_object_id: String,
}

/// One Azure RBAC role assignment on the managed FHIR service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentStatus {
    /// The built-in role's name, e.g. `FHIR Data Reader`.
    pub role: String,
    /// The assignment's name (a GUID; the operator's own deterministic one, or an adopted one's).
    pub name: String,
    /// The scope: the FHIR service's resource id.
    pub scope: String,
}

/// The delegated scopes and app roles a resource application publishes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// Delegated scopes (`scp`), as clients request them.
    #[serde(default)]
    pub scopes: Vec<PublishedEntitlement>,
    /// App roles (`roles`).
    #[serde(default)]
    pub app_roles: Vec<PublishedEntitlement>,
}

/// A published scope or app role: its value and its stable ID.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PublishedEntitlement {
    pub value: String,
    pub id: String,
}

/// What the app management policy that applies to a client's application allows its credential,
/// and the rotation the operator uses under it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialPolicyStatus {
    /// Object ID of the policy in force: the tenant default
    /// (`00000000-0000-0000-0000-000000000000`) or the policy assigned to the application. Absent
    /// when no enabled policy applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Its display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The longest lifetime the policy allows this credential type (ISO 8601, e.g. `P90D`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<String>,
    /// Credential types (`spec.credential.type`) the policy allows this client.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// The validity new credentials get: `spec.credential.rotation.validity`, capped below
    /// `maxLifetime` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<String>,
    /// How long before expiry a credential is renewed: `rotation.renewBefore`, or a third of the
    /// validity when the cap leaves it no room (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
}

/// A credential's identity and lifetime; the value is only in the output Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialStatus {
    /// ClientSecret or WorkloadIdentity.
    pub r#type: String,
    /// Graph keyId of the password or key credential (federated: the credential's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// RFC 3339 expiry time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}
