//! `FhirClientApp`: one client application of a FHIR server.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, OBJECT_NAME_PATTERN};

use super::access_policy::ResourceAppReference;
use super::common::{AppStatus, DeletionPolicy, SignInAudience, TenantSpec};

/// Registers one client application of a FHIR server in Microsoft Entra ID and writes its
/// credentials to a Secret usable with `envFrom` by the Azure SDKs' environment credential.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fhirapps.io",
    version = "v1alpha1",
    kind = "FhirClientApp",
    namespaced,
    status = "AppStatus",
    shortname = "fca",
    category = "fhir",
    doc = "A client application of a FHIR server registered in Microsoft Entra ID.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Client ID","type":"string","jsonPath":".status.clientId"}"#,
    printcolumn = r#"{"name":"Granted","type":"integer","jsonPath":".status.access.grantedCount"}"#,
    printcolumn = r#"{"name":"Refused","type":"integer","jsonPath":".status.access.refusedCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'Public' || !has(self.credential)").message("a Public client has no credential: remove spec.credential (use Confidential for a client that holds a secret)"),
    validation = Rule::new("self.type != 'Service' || !has(self.redirectUris) || size(self.redirectUris) == 0").message("a Service client signs in without a user: remove spec.redirectUris"),
    validation = Rule::new("self.type != 'Service' || !has(self.scopes) || size(self.scopes) == 0").message("a Service client gets app roles (spec.roles), not delegated scopes: remove spec.scopes"),
    validation = Rule::new("self.type == 'Service' || !has(self.roles) || size(self.roles) == 0").message("app roles (spec.roles) are for Service clients; Confidential and Public clients request delegated spec.scopes"),
    validation = Rule::new("!has(self.redirectUris) || self.redirectUris.all(u, u.startsWith('https://') || (u.startsWith('http://') && isURL(u) && url(u).getHostname() in ['localhost', '127.0.0.1']) || (self.type == 'Public' && has(self.publicPlatform) && self.publicPlatform == 'MobileDesktop' && u.contains('://') && !u.startsWith('http://')))").message("redirectUris must be https:// (or http://localhost for development; custom schemes only for Public MobileDesktop clients)"),
    validation = Rule::new("!has(self.redirectUris) || self.redirectUris.all(u, !u.contains('#'))").message("redirectUris must not contain a fragment (#)"),
    validation = Rule::new("!has(self.publicPlatform) || self.type == 'Public'").message("publicPlatform applies only to type Public"),
    validation = Rule::new("!has(self.smartProxyCallback) || !self.smartProxyCallback || (has(self.redirectUris) && size(self.redirectUris) > 0)").message("smartProxyCallback needs at least one redirect URI to wrap"),
    validation = Rule::new("!has(self.assignAppRoles) || !self.assignAppRoles || self.type == 'Service'").message("assignAppRoles applies only to Service clients"),
    validation = Rule::new("!has(self.scopes) || self.scopes.all(s, !(s.matches('^(patient|user|system)[/.$]') && s.contains('?')))").message("a query-qualified (granular) SMART scope such as patient/Observation.rs?category=... cannot be used: an Entra scope value cannot carry the query (Entra has no place for its parameters, and '|' is not an allowed scope character), so use the unqualified scope, e.g. patient/Observation.rs"),
    validation = Rule::new("!has(self.scopes) || self.scopes.all(s, !s.matches('^(patient|user|system)/') || s.contains('?') || (s.matches('^(patient|user|system)/([*]|[A-Za-z]+)[.](read|write|[*]|c?r?u?d?s?)$') && !s.endsWith('.')))").message("a SMART scope must be <patient|user|system>/<Type or *>.<level>: v1 levels read, write or *, or SMART v2 permissions from c, r, u, d, s, each at most once and in that order (e.g. patient/Patient.rs, user/*.cruds)"),
    validation = Rule::new("!has(self.tenant) || !has(self.tenant.credentialsSecretRef) || has(self.tenant.tenantId)").message("tenant.credentialsSecretRef needs tenant.tenantId")
)]
pub struct FhirClientAppSpec {
    /// Confidential (web app with a user; secret), Public (SPA or mobile/desktop; no secret) or
    /// Service (daemon; app roles via client credentials).
    pub r#type: ClientType,
    /// The FHIR server the client calls: exactly one of `resourceAppRef` or `managed`.
    pub target: TargetSpec,
    /// Redirect (reply) URIs. Web platform for Confidential, SPA (default) or mobile/desktop for Public,
    /// none for Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 2048)), extend("x-kubernetes-list-type" = "set"))]
    pub redirect_uris: Option<Vec<String>>,
    /// Platform for a Public client's redirect URIs: Spa (default) or MobileDesktop
    /// (`publicClient` redirect URIs with `isFallbackPublicClient`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_platform: Option<PublicPlatform>,
    /// Also register the FHIR server's SMART proxy callback
    /// `{fhirUrl}/AadSmartOnFhirProxy/callback/{base64url(redirectUri)}` for each redirect URI. The proxy
    /// redeems the code there itself, so the callbacks go under web for a Confidential client (the proxy
    /// passes its secret on) and under mobile/desktop for a Public one, whatever its platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_proxy_callback: Option<bool>,
    /// Delegated scopes requested on the target (values as published, e.g. `user_impersonation`,
    /// `patient.all.read`; SMART notation like `patient/*.read` is mapped). Default for Confidential and
    /// Public: `user_impersonation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub scopes: Option<Vec<String>>,
    /// App roles requested on the target (Service clients), e.g. `globalReader`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub roles: Option<Vec<String>>,
    /// Grant tenant-wide admin consent for the delegated scopes (oauth2PermissionGrant). Needs the
    /// operator to hold DelegatedPermissionGrant.ReadWrite.All. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_admin_consent: Option<bool>,
    /// Assign the requested app roles to the client's service principal (admin consent for application
    /// permissions). Needs AppRoleAssignment.ReadWrite.All. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_app_roles: Option<bool>,
    /// How the client authenticates. Default: a client secret for Confidential and Service; none for Public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSpec>,
    /// Name of the output Secret. Default: `<name>-fhir-client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = OBJECT_NAME_PATTERN)
    )]
    pub secret_name: Option<String>,
    /// Display name in Entra ID. Default: `<namespace>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Who may sign in. Default: AzureADMyOrg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_audience: Option<SignInAudience>,
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
}

/// Kind of client.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ClientType {
    Confidential,
    Public,
    Service,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "Confidential",
            Self::Public => "Public",
            Self::Service => "Service",
        }
    }
}

/// Redirect platform of a Public client.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum PublicPlatform {
    #[default]
    Spa,
    MobileDesktop,
}

/// The FHIR server a client calls.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.resourceAppRef) != has(self.managed)").message("set exactly one of target.resourceAppRef or target.managed"))]
pub struct TargetSpec {
    /// A FhirResourceApp (open-source FHIR server), in this namespace or, when its access policy
    /// admits this namespace, in another (`namespace`). The Secret is written in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_app_ref: Option<ResourceAppReference>,
    /// The managed FHIR service (Azure Health Data Services / Azure API for FHIR), whose resource
    /// application is Microsoft's first-party "Azure Healthcare APIs" app. Data-plane access there is
    /// granted by Azure RBAC role assignments, not by this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedTarget>,
}

/// The managed FHIR service as a target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.fhirUrl) || has(self.resourceId)").message("target.managed needs resourceId (the FHIR service's ARM resource id) or fhirUrl"),
    validation = Rule::new("!has(self.fhirUrl) || (self.fhirUrl.startsWith('https://') && isURL(self.fhirUrl))").message("target.managed.fhirUrl must be an https:// URL"),
    validation = Rule::new("!has(self.audience) || (self.audience.startsWith('https://') && isURL(self.audience))").message("target.managed.audience must be an https:// URL"),
    validation = Rule::new("!has(self.resourceId) || self.resourceId.matches('^(?i)/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft[.]HealthcareApis/(workspaces/[^/]+/fhirservices|services)/[^/]+/?$')").message("target.managed.resourceId must be a FHIR service's ARM resource id: /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HealthcareApis/workspaces/{workspace}/fhirservices/{name} (or the retired Azure API for FHIR form .../Microsoft.HealthcareApis/services/{name})"),
    validation = Rule::new("!has(self.dataRoles) || size(self.dataRoles) == 0 || has(self.resourceId)").message("target.managed.dataRoles are assigned on the FHIR service named by target.managed.resourceId: set it"),
    validation = Rule::new("!has(self.audience) || !has(self.audienceResourceAppRef)").message("set target.managed.audience or target.managed.audienceResourceAppRef, not both: the FhirResourceApp's identifier URI is the audience")
)]
pub struct ManagedTarget {
    /// ARM resource id of the FHIR service: Azure Health Data Services
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HealthcareApis/workspaces/{ws}/fhirservices/{name}`
    /// (the URL and audience `https://{ws}-{name}.fhir.azurehealthcareapis.com` follow from it), or the
    /// Azure API for FHIR form `.../Microsoft.HealthcareApis/services/{name}` (retired 30 September 2026).
    /// Needed for `dataRoles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub resource_id: Option<String>,
    /// Azure RBAC data roles the operator assigns to the client's service principal on the FHIR
    /// service (through Azure Resource Manager; the operator needs
    /// `Microsoft.Authorization/roleAssignments/write` there). Assignments of FHIR roles no longer
    /// listed are removed. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8), extend("x-kubernetes-list-type" = "set"))]
    pub data_roles: Option<Vec<DataRole>>,
    /// URL of the FHIR service, e.g. `https://ws-fhir.fhir.azurehealthcareapis.com`. Default: derived
    /// from `resourceId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub fhir_url: Option<String>,
    /// Token audience. Default: an AHDS FHIR service's URL when `resourceId` names one, else
    /// `https://azurehealthcareapis.com`; may be the service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub audience: Option<String>,
    /// A FhirResourceApp in this namespace that stands for the service's audience (the custom
    /// resource application Azure Health Data Services needs for SMART's `fhirUser`: Microsoft
    /// allows no claim mapping on its first-party application). The client then requests that
    /// application's scopes and audience, gets its `fhirUser` mapping (`smart.fhirUserClaim`) and
    /// the `dataRoles` on the service as before. The service's `authenticationConfiguration.audience`
    /// must be set to that application's identifier URI, which the operator does not do; the status
    /// says how (docs/smart-fhir-user.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_resource_app_ref: Option<super::common::LocalObjectReference>,
}

/// A built-in Azure RBAC data role of the FHIR service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DataRole {
    #[serde(rename = "FHIR Data Reader")]
    FhirDataReader,
    #[serde(rename = "FHIR Data Writer")]
    FhirDataWriter,
    #[serde(rename = "FHIR Data Contributor")]
    FhirDataContributor,
    #[serde(rename = "FHIR Data Exporter")]
    FhirDataExporter,
    #[serde(rename = "FHIR Data Importer")]
    FhirDataImporter,
    #[serde(rename = "FHIR Data Converter")]
    FhirDataConverter,
    #[serde(rename = "FHIR SMART User")]
    FhirSmartUser,
    #[serde(rename = "FHIR Data Bulk Operator")]
    FhirDataBulkOperator,
}

impl DataRole {
    /// The built-in role's name, as the CRD and Azure spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::FhirDataReader => "FHIR Data Reader",
            Self::FhirDataWriter => "FHIR Data Writer",
            Self::FhirDataContributor => "FHIR Data Contributor",
            Self::FhirDataExporter => "FHIR Data Exporter",
            Self::FhirDataImporter => "FHIR Data Importer",
            Self::FhirDataConverter => "FHIR Data Converter",
            Self::FhirSmartUser => "FHIR SMART User",
            Self::FhirDataBulkOperator => "FHIR Data Bulk Operator",
        }
    }
}

/// Kind of credential.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CredentialType {
    /// A client secret (password credential), written to `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// A self-signed certificate the operator issues and registers; its private key exists only in
    /// the output Secret (`client-certificate.pem`, `tls.crt`, `tls.key`). Mount the Secret at
    /// `/var/run/secrets/fhirapps.io/client`, where `AZURE_CLIENT_CERTIFICATE_PATH` points.
    Certificate,
    /// A federated identity credential for Kubernetes workload identity: no secret at all.
    WorkloadIdentity,
}

/// The client's credential.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'WorkloadIdentity' || has(self.serviceAccountName)").message("credential.type WorkloadIdentity needs credential.serviceAccountName"),
    validation = Rule::new("self.type == 'WorkloadIdentity' || !has(self.serviceAccountName)").message("credential.serviceAccountName applies only to type WorkloadIdentity"),
    validation = Rule::new("self.type != 'WorkloadIdentity' || !has(self.rotation)").message("credential.rotation applies to ClientSecret and Certificate; a WorkloadIdentity credential has nothing to rotate")
)]
pub struct CredentialSpec {
    /// ClientSecret, Certificate or WorkloadIdentity.
    pub r#type: CredentialType,
    /// Service account (same namespace) whose projected token is federated (WorkloadIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = OBJECT_NAME_PATTERN)
    )]
    pub service_account_name: Option<String>,
    /// Rotation policy (ClientSecret and Certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSpec>,
}

/// When credentials are renewed. Durations use Go syntax with units h, m, s, ms (`720h`, `1h30m`).
///
/// The tenant's app management policy wins: when it caps the lifetime of client secrets
/// (`passwordLifetime`) or certificates (`asymmetricKeyLifetime`) below `validity`, new credentials
/// are valid for the cap less a margin (a tenth of it, at most 1h); when `renewBefore` no longer fits
/// inside that, renewal comes at two thirds of the life (`renewBefore` = a third of the validity), and
/// a credential issued before the cap that outlives it is replaced. The previous credential still
/// overlaps the new one (at most until it expires). `status.credentialPolicy` shows the cap and the
/// validity and renewBefore in use.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    // Compared with the defaults when a field is left out (issue 23: `renewBefore: 9000h` alone
    // passed admission and stalled the client), as the operator's rotation does.
    validation = Rule::new("duration(has(self.renewBefore) ? self.renewBefore : '720h') < duration(has(self.validity) ? self.validity : '8760h')").message("rotation.renewBefore (default 720h) must be shorter than rotation.validity (default 8760h)"),
    validation = Rule::new("!has(self.validity) || duration(self.validity) >= duration('1h')").message("rotation.validity must be at least 1h")
)]
pub struct RotationSpec {
    /// Lifetime of each credential. Default `8760h` (1 year); at most the tenant policy's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        regex(pattern = DURATION_PATTERN)
    )]
    pub validity: Option<String>,
    /// Renew this long before expiry. Default `720h` (30 days); a third of the validity when the
    /// tenant policy's cap leaves no room for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        regex(pattern = DURATION_PATTERN)
    )]
    pub renew_before: Option<String>,
    /// Keep the previous credential valid this long after the new one is written. Default `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        regex(pattern = DURATION_PATTERN)
    )]
    pub overlap: Option<String>,
}
