//! The reconcile error: one enum for both controllers. `category()` is the condition reason and the
//! metric label, `is_permanent()` decides Stalled versus Reconciling, `requeue_after()` when to retry.

use std::time::Duration;

use crate::desired::client::UnknownEntitlements;
use crate::graph::GraphError;

use super::outputs;

/// Reconcile errors. `category()` is stable (logs, metrics, events, condition reasons).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "Microsoft Graph refused to {action}: {message} Grant the operator's application the Microsoft Graph application permission {permission} (with admin consent), or turn the option off."
    )]
    PermissionDenied {
        action: &'static str,
        permission: &'static str,
        message: String,
    },
    #[error("Kubernetes API: {}", kube_message(.0))]
    Kube(#[from] kube::Error),
    #[error("adding or removing the finalizer: {}", kube_message(.0))]
    FinalizerPatch(#[source] kube::Error),
    #[error(transparent)]
    OutputNotOwned(#[from] outputs::NotOwned),
    #[error("the API server refused to write {what}: {}", kube_message(.source))]
    OutputRejected {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the identifier URI {uri} is already used by another application in this tenant{holder}; give this FhirResourceApp another identifierUri (or fhirUrl), delete the other application, or set spec.adopt: true if that application is this server's own",
        holder = holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    IdentifierUriTaken { uri: String, holder: Option<String> },
    /// The tenant's app-management policy refuses the identifier URI (facts §3.3): what it allows
    /// depends on the token version the API receives.
    #[error("{}", crate::desired::resource::identifier_uri_policy_advice(.uri, *.restriction, *.token_version))]
    IdentifierUriNotAllowedByPolicy {
        uri: String,
        restriction: crate::desired::resource::UriRestriction,
        token_version: i32,
    },
    /// Entra refused a create with `Directory_QuotaExceeded` (facts §2); `graph_url` makes the
    /// commands in the message complete.
    #[error(
        "Entra ID's directory object quota{} is used up, so no application or service principal can be created. Deleted applications and service principals count against it for 30 days until purged: list them with az rest --url {graph_url}/directory/deletedItems/microsoft.graph.application, purge those not needed with az rest --method DELETE --url {graph_url}/directory/deletedItems/<id>, and use deletionPolicy: Purge where a deleted resource need not be restorable; or ask an administrator to raise the quota. Retried every few minutes",
        quota_scope(.message)
    )]
    DirectoryQuotaExceeded { message: String, graph_url: String },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("tenant credentials: {0}")]
    TenantCredentials(String),
    #[error(
        "application with uniqueName {unique_name} exists but was not created by this operator for this resource; set spec.adopt: true to take it over"
    )]
    NotOwned { unique_name: String },
    /// A deleted application that is not this resource's holds its uniqueName (Entra keeps it 30
    /// days; controller/restore.rs).
    #[error(
        "the uniqueName {unique_name} is held by a deleted application (object ID {object_id}, appId {app_id}) that this operator did not create for this resource; Entra ID keeps a deleted application's uniqueName for 30 days. Free the name by purging it: az rest --method DELETE --url {url}; or set spec.adopt: true to restore it and take it over"
    )]
    UniqueNameHeldByDeletedApp {
        unique_name: String,
        object_id: String,
        app_id: String,
        url: String,
    },
    #[error(transparent)]
    UnknownEntitlement(#[from] UnknownEntitlements),
    #[error("operator configuration: {0}")]
    MissingConfig(String),
    #[error("client certificate: {0}")]
    Certificate(String),
    #[error("tenant mismatch: {0}")]
    TenantMismatch(String),
    #[error(
        "the managed FHIR service's first-party application \"Azure Healthcare APIs\" (appId {app_id}) has no service principal in tenant {tenant}, so Entra ID cannot issue tokens for it there; create it once with `az ad sp create --id {app_id}` (a Cloud Application Administrator can), and this client is registered at the next retry",
        app_id = crate::desired::client::MANAGED_FHIR_APP_ID
    )]
    ManagedServicePrincipalMissing { tenant: String },
    /// The target's access policy refuses (part of) the request (docs/access-policy.md).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    #[error(transparent)]
    Arm(crate::arm::ArmError),
    #[error(
        "the operator may not manage role assignments on {scope}: it needs Microsoft.Authorization/roleAssignments/write (and /delete) there, e.g. Role Based Access Control Administrator on the FHIR service, constrained to the FHIR data roles (docs/permissions.md): az role assignment create --assignee {operator} --role \"Role Based Access Control Administrator\" --scope {scope}. Azure Resource Manager said: {message}"
    )]
    RoleAssignmentPermissionMissing {
        scope: String,
        operator: String,
        message: String,
    },
    /// The tenant's app management policy does not allow the credential type the spec asks for
    /// (read before anything is added, or Entra's `CredentialTypeNotAllowedAsPerAppPolicy`).
    #[error(
        "the tenant's app management policy {policy} does not allow a new {kind} credential{restriction}; {allowed}. Set spec.credential.type to an allowed type, or ask an Entra admin to assign this application a policy that allows it",
        restriction = restriction.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
        allowed = if allowed.is_empty() { "what it allows is in the policy, which the operator could not read".to_string() } else { format!("it allows {}", allowed.join(", ")) }
    )]
    CredentialTypeNotAllowedByPolicy {
        kind: &'static str,
        /// `'name' (id)`, or what Entra's refusal named.
        policy: String,
        restriction: Option<String>,
        allowed: Vec<&'static str>,
    },
    /// Entra refused the credential's lifetime (`CredentialInvalidLifetimeAsPerAppPolicy`): the
    /// policy's cap was not known (unreadable) or changed since it was read.
    #[error(
        "Entra ID refused the {kind} credential's lifetime under app management policy {policy}: {message} Set spec.credential.rotation.validity below the policy's maximum lifetime, or grant the operator Policy.Read.ApplicationConfiguration so that it caps the lifetime itself"
    )]
    CredentialLifetimeNotAllowedByPolicy {
        kind: &'static str,
        policy: String,
        message: String,
    },
    /// Deletion cannot remove the application (its tenant's credentials are gone and the operator's
    /// own may not): the finalizer stays rather than leave a live application silently.
    #[error("cleanup blocked: {0}")]
    CleanupBlocked(String),
}

/// Every condition reason the operator sets: Ready, waiting, and each error category (its own and
/// the Graph client's). Listed as data so the documentation can be checked against it; `category()`
/// asserts (in debug builds) that it returns one of these.
pub const CONDITION_REASONS: &[&str] = &[
    "Ready",
    "WaitingForResourceApp",
    "PermissionDenied",
    "KubeApi",
    "SecretNotOwned",
    "ConfigMapNotOwned",
    "OutputRejected",
    "IdentifierUriTaken",
    "IdentifierUriNotAllowedByPolicy",
    "DirectoryQuotaExceeded",
    "InvalidSpec",
    "TenantCredentials",
    "NotOwned",
    "UniqueNameHeldByDeletedApp",
    "UnknownEntitlement",
    "MissingConfig",
    "TenantMismatch",
    "Certificate",
    "ManagedServicePrincipalMissing",
    "NotPermitted",
    "RoleAssignmentPermissionMissing",
    "CleanupBlocked",
    "CredentialTypeNotAllowedByPolicy",
    "CredentialLifetimeNotAllowedByPolicy",
    "PolicyRead",
    "PolicyUnreadable",
    "FhirUserClaimInPlace",
    "PolicyWriteNotPermitted",
    "AudienceNotVerified",
    "MultiTenantApp",
    "ClaimsMappingPolicyTaken",
    "WaitingForFhirUserClaim",
    "PrincipalNotFound",
    "NotFound",
    "Throttled",
    "HostNameNotOnVerifiedDomain",
    "ReplicationLag",
    "Conflict",
    "Transient",
    "BadRequest",
    "AuthFailed",
    "Transport",
    "Unreachable",
    "Decode",
];

/// Every Event reason besides the condition reasons of Stalled errors (which are Events too).
pub const EVENT_REASONS: &[&str] = &[
    "Created",
    "Updated",
    "Recreated",
    "Restored",
    "CredentialCreated",
    "CredentialRotated",
    "SecretRestored",
    "FederatedCredentialSet",
    "Orphaned",
    "AccessRevoked",
];

impl Error {
    pub fn category(&self) -> &'static str {
        let c = self.category_unchecked();
        debug_assert!(
            CONDITION_REASONS.contains(&c),
            "category {c} is not in CONDITION_REASONS"
        );
        c
    }

    fn category_unchecked(&self) -> &'static str {
        match self {
            Self::Graph(e) => e.category(),
            Self::PermissionDenied { .. } => "PermissionDenied",
            Self::Kube(_) => "KubeApi",
            Self::FinalizerPatch(_) => "KubeApi",
            Self::OutputNotOwned(e) => e.reason(),
            Self::OutputRejected { .. } => "OutputRejected",
            Self::IdentifierUriTaken { .. } => "IdentifierUriTaken",
            Self::IdentifierUriNotAllowedByPolicy { .. } => "IdentifierUriNotAllowedByPolicy",
            Self::DirectoryQuotaExceeded { .. } => "DirectoryQuotaExceeded",
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::TenantCredentials(_) => "TenantCredentials",
            Self::NotOwned { .. } => "NotOwned",
            Self::UniqueNameHeldByDeletedApp { .. } => "UniqueNameHeldByDeletedApp",
            Self::UnknownEntitlement(_) => "UnknownEntitlement",
            Self::MissingConfig(_) => "MissingConfig",
            Self::TenantMismatch(_) => "TenantMismatch",
            Self::Certificate(_) => "Certificate",
            Self::ManagedServicePrincipalMissing { .. } => "ManagedServicePrincipalMissing",
            Self::NotPermitted(_) => "NotPermitted",
            Self::Arm(e) => e.category(),
            Self::RoleAssignmentPermissionMissing { .. } => "RoleAssignmentPermissionMissing",
            Self::CleanupBlocked(_) => "CleanupBlocked",
            Self::CredentialTypeNotAllowedByPolicy { .. } => "CredentialTypeNotAllowedByPolicy",
            Self::CredentialLifetimeNotAllowedByPolicy { .. } => {
                "CredentialLifetimeNotAllowedByPolicy"
            }
        }
    }

    /// Needs a human: reported as Stalled, retried slowly.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Graph(e) => e.is_permanent(),
            Self::PermissionDenied { .. }
            | Self::InvalidSpec(_)
            | Self::TenantCredentials(_)
            | Self::NotOwned { .. }
            | Self::UniqueNameHeldByDeletedApp { .. }
            | Self::UnknownEntitlement(_)
            | Self::MissingConfig(_)
            | Self::TenantMismatch(_)
            | Self::ManagedServicePrincipalMissing { .. }
            | Self::NotPermitted(_)
            | Self::RoleAssignmentPermissionMissing { .. }
            | Self::CleanupBlocked(_)
            | Self::CredentialTypeNotAllowedByPolicy { .. }
            | Self::CredentialLifetimeNotAllowedByPolicy { .. }
            | Self::OutputNotOwned(_)
            | Self::IdentifierUriTaken { .. }
            | Self::IdentifierUriNotAllowedByPolicy { .. }
            // Someone must purge deleted objects or raise the quota: the slow Stalled retry, which
            // then finds the room by itself.
            | Self::DirectoryQuotaExceeded { .. } => true,
            // A write the API server refuses as invalid or forbidden fails the same way until
            // someone changes the spec, an admission policy or RBAC: no hot loop.
            Self::OutputRejected { source, .. } => matches!(
                source,
                kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 422)
            ),
            Self::Arm(e) => e.is_permanent(),
            Self::Kube(_) | Self::Certificate(_) | Self::FinalizerPatch(_) => false,
        }
    }

    /// How soon to retry, when the error says so.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Graph(e) => e.retry_after(),
            Self::Arm(e) => e.retry_after(),
            // The finalizer patch's `test` failed (422 without causes; an admission policy's
            // refusal names one): our cached copy predates a change, most often our own
            // finalizer write, that the watch delivers within moments.
            Self::FinalizerPatch(kube::Error::Api(s))
                if s.code == 422 && s.details.as_ref().is_none_or(|d| d.causes.is_empty()) =>
            {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }

    /// When to try again after this error: a permanent one (it needs a person) after
    /// `stalled_retry`, else when Graph's `Retry-After` says, else 10 s; never sooner than 1 s. The one
    /// place the controllers' retry timing is decided (the Graph client retries within a call, by
    /// its own policy per call class).
    pub fn requeue_after(&self, stalled_retry: Duration) -> Duration {
        let wait = if self.is_permanent() {
            stalled_retry
        } else {
            self.retry_after().unwrap_or(Duration::from_secs(10))
        };
        wait.max(Duration::from_secs(1))
    }

    /// The error with what only the controller knows filled in: a Graph quota refusal becomes
    /// [`Error::DirectoryQuotaExceeded`], whose commands name this cloud's Graph endpoint.
    pub fn in_cloud(self, graph_url: &str) -> Self {
        match self {
            Self::Graph(GraphError::DirectoryQuotaExceeded { message }) => {
                Self::DirectoryQuotaExceeded {
                    message,
                    graph_url: graph_url.to_string(),
                }
            }
            e => e,
        }
    }

    /// The condition message: a short sentence for a person (the full error goes to the log).
    pub fn summary(&self) -> String {
        shorten(&self.to_string(), MESSAGE_MAX)
    }
}

/// Whose quota Graph's `Directory_QuotaExceeded` message names: "… quota limit for the Tenant …"
/// or "… for the Principal …" (the creator's 250 objects; facts §2).
fn quota_scope(message: &str) -> &'static str {
    if message.contains("for the Principal") {
        " for objects the operator's identity creates"
    } else if message.contains("for the Tenant") {
        " of the tenant"
    } else {
        ""
    }
}

/// Longest condition message the operator writes; details beyond it are in the log and Events.
pub const MESSAGE_MAX: usize = 600;

/// `s` cut at a character boundary to at most `max` bytes, marked with an ellipsis when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What the API server said, without the Debug dump of its Status: its message for an API error.
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => other.to_string(),
    }
}

/// Maps a 403 from one step to an error naming the permission that step needs.
pub fn needs(action: &'static str, permission: &'static str) -> impl FnOnce(GraphError) -> Error {
    move |e| match e {
        GraphError::PermissionDenied { message, .. } => Error::PermissionDenied {
            action,
            permission,
            message,
        },
        e => Error::Graph(e),
    }
}
