//! Who may use a FhirResourceApp, and with what (issue 18): the access policy its owner writes on
//! the FhirResourceApp, the users and groups it assigns app roles to, and what a client's status
//! reports as granted and refused.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::OBJECT_NAME_PATTERN;

/// The role every access policy treats as privileged, whatever `privilegedRoles` says.
pub const ALWAYS_PRIVILEGED: &str = "globalAdmin";

/// Which namespaces' FhirClientApps may use this FHIR server, and with which app roles, scopes and
/// redirect-URI hosts. Rules only add: a request is allowed when the same-namespace default or any
/// rule naming the client's namespace allows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicySpec {
    /// App roles that clients get only from a rule naming them explicitly (never from `*` or the
    /// same-namespace default). `globalAdmin` is always privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 120)), extend("x-kubernetes-list-type" = "set"))]
    pub privileged_roles: Option<Vec<String>>,
    /// Rules, each admitting clients of the listed namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub rules: Option<Vec<AccessRule>>,
}

/// One rule: clients in `namespaces` may be given these app roles and scopes and register redirect
/// URIs on these hosts. An omitted list allows nothing of that kind.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.redirectHosts) || self.redirectHosts.all(h, h != '*')").message("accessPolicy.rules[].redirectHosts: '*' would admit any host; list the hosts (a leading '*.' admits subdomains)")
)]
pub struct AccessRule {
    /// Namespaces (by name) whose FhirClientApps this rule admits. Names only: a label selector
    /// would let whoever may label a namespace admit it.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")), extend("x-kubernetes-list-type" = "set"))]
    pub namespaces: Vec<String>,
    /// App role values that may be requested and assigned automatically (`assignAppRoles`). `*`
    /// allows every role except privileged ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 120)), extend("x-kubernetes-list-type" = "set"))]
    pub app_roles: Option<Vec<String>>,
    /// Delegated scope values (as published, e.g. `user_impersonation`, `patient.all.read`) that may
    /// be requested and receive admin consent (`grantAdminConsent`). `*` allows every scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub scopes: Option<Vec<String>>,
    /// Hosts the admitted clients may register redirect URIs on, e.g. `portal.contoso.example` or
    /// `*.portal.contoso.example` (subdomains only). A host admits `https` redirect URIs (and `http`
    /// on `localhost`, `127.0.0.1` or `[::1]` only). A custom scheme decides which app on a device
    /// receives the code, so it needs an entry naming it: `com.contoso.app://portal.contoso.example`.
    /// Admin consent for a web app whose redirect URI points at an arbitrary host hands that host
    /// users' FHIR tokens without a consent prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 253), regex(pattern = r"^([A-Za-z][-A-Za-z0-9+.]*://)?(\*\.)?[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")), extend("x-kubernetes-list-type" = "set"))]
    pub redirect_hosts: Option<Vec<String>>,
}

/// Kind of a directory principal an app role is assigned to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PrincipalType {
    User,
    Group,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
}

/// An app role of this FHIR server assigned to an Entra user or group (direct members of a group
/// get the role in their tokens).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalAssignment {
    /// User or Group.
    pub principal_type: PrincipalType,
    /// Object ID (GUID) of the user or group.
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub principal_id: String,
    /// App role value, e.g. `globalReader`.
    #[schemars(length(min = 1, max = 120))]
    pub app_role: String,
}

/// What a client was given on its target and what it was refused, with reasons.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccessStatus {
    /// Number of entries in `granted`.
    pub granted_count: i32,
    /// Number of entries in `refused`.
    pub refused_count: i32,
    /// App roles, scopes and redirect URIs in the registration (assigned or consented when the spec
    /// asks for it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<AccessEntry>,
    /// What the request asked for and did not get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<AccessEntry>,
}

/// One app role, scope or redirect URI of a client's request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// AppRole, Scope or RedirectUri.
    pub kind: String,
    pub value: String,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A reference to a FhirResourceApp, in the client's namespace unless `namespace` is given.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ResourceAppReference {
    /// Name of the FhirResourceApp.
    #[schemars(length(min = 1, max = 253), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Its namespace. Default: the client's. Another namespace needs a rule in that FhirResourceApp's
    /// `spec.accessPolicy` admitting the client's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

impl ResourceAppReference {
    /// The referenced FhirResourceApp's namespace, for a client in `own`.
    pub fn namespace_or<'a>(&'a self, own: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(own)
    }
}
