//! The app-management-policy step of a client (issue 24 §7): the tenant's policy read for the
//! client's application (the tenant default, cached per tenant, and the policy assigned to the
//! application, which replaces it), turned into rules by `desired::app_policy`, recorded in
//! `status.credentialPolicy` and the `AppManagementPolicy` condition; and Entra's own refusals
//! mapped to the same Stalled reasons when the policy could not be read or changed meanwhile.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{AppStatus, CredentialPolicyStatus, CredentialType, FhirClientApp};
use crate::controller::{Context, Error, PolicyRead, needs};
use crate::desired::app_policy::{self as policy, CredentialRules, NotAllowed};
use crate::desired::conditions;
use crate::desired::credentials::Rotation;
use crate::desired::duration;
use crate::graph::types::Application;
use crate::graph::{GraphClient, GraphError};

/// The condition that says which policy applies, or that it could not be read.
pub const CONDITION: &str = "AppManagementPolicy";

/// The least permission that reads both the default and an assigned policy (Learn
/// `tenantappmanagementpolicy-get` also accepts `Policy.Read.All`).
const READ_POLICY: &str = "Policy.Read.ApplicationConfiguration";

/// The policy step's result: the rules (`None` when the operator may not read the policy) and the
/// rotation under their cap.
pub struct Applied {
    pub rules: Option<CredentialRules>,
    pub rotation: Rotation,
}

/// Reads the policy that applies to the client's application — `app` once registered (its assigned
/// policy and creation time count), `None` before it is created (the tenant default, created now)
/// — and records it in the status. A client without a secret or certificate has nothing the policy
/// governs: no read, no condition.
pub async fn apply(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    app: Option<&Application>,
    kind: Option<CredentialType>,
    rotation: Rotation,
    status: &mut AppStatus,
) -> Result<Applied, Error> {
    let Some(kind) = kind.filter(|k| governed(*k)) else {
        status.credential_policy = None;
        status.conditions.retain(|c| c.type_ != CONDITION);
        return Ok(Applied {
            rules: None,
            rotation,
        });
    };
    let now = Timestamp::now();
    let read = read(ctx, graph, app, now).await?;
    let rules = read.as_ref().ok().cloned();
    let rotation =
        policy::cap_rotation(rotation, rules.as_ref().and_then(|r| r.max_lifetime(kind)));
    status.credential_policy = rules.as_ref().map(|r| summary(r, kind, &rotation));
    let (state, reason, message) = match &read {
        Ok(r) => ("True", "PolicyRead", described(r, kind, &rotation)),
        Err(why) => ("Unknown", "PolicyUnreadable", unreadable(why)),
    };
    let generation = obj.metadata.generation;
    conditions::set(
        &mut status.conditions,
        CONDITION,
        (state, reason, &message),
        generation,
        Time(now),
    );
    Ok(Applied { rules, rotation })
}

fn governed(kind: CredentialType) -> bool {
    matches!(
        kind,
        CredentialType::ClientSecret | CredentialType::Certificate
    )
}

/// The rules, or why they could not be read (Graph's words).
async fn read(
    ctx: &Context,
    graph: &GraphClient,
    app: Option<&Application>,
    now: Timestamp,
) -> Result<Result<CredentialRules, String>, Error> {
    let default = match ctx.default_app_policy(graph).await? {
        PolicyRead::Read(v) => v,
        PolicyRead::Unreadable(why) => return Ok(Err(why)),
    };
    let (assigned, created) = match app {
        None => (Vec::new(), Some(now)),
        Some(a) => match graph.app_management_policies_of(&a.id).await {
            Ok(list) => (list, a.created()),
            Err(
                GraphError::PermissionDenied { message, .. }
                | GraphError::BadRequest { message, .. },
            ) => {
                return Ok(Err(message));
            }
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Ok(policy::rules(Some(&default), &assigned, created, now)))
}

fn summary(r: &CredentialRules, kind: CredentialType, rot: &Rotation) -> CredentialPolicyStatus {
    CredentialPolicyStatus {
        policy_id: r.policy.as_ref().map(|p| p.id.clone()),
        policy_name: r.policy.as_ref().map(|p| p.display_name.clone()),
        max_lifetime: r.max_lifetime(kind).map(policy::iso),
        allowed_types: r.allowed().into_iter().map(String::from).collect(),
        validity: Some(duration::format(rot.validity)),
        renew_before: Some(duration::format(rot.renew_before)),
    }
}

/// The condition message of a policy that was read.
fn described(r: &CredentialRules, kind: CredentialType, rot: &Rotation) -> String {
    let Some(p) = &r.policy else {
        return "no enabled app management policy restricts this client's credential".into();
    };
    let cap = match r.max_lifetime(kind) {
        Some(max) => format!(
            "; it caps a {} at {}: new ones are valid {} and renewed {} before expiry",
            kind_name(kind),
            policy::iso(max),
            duration::format(rot.validity),
            duration::format(rot.renew_before)
        ),
        None => String::new(),
    };
    let blocked = match r.check(kind) {
        Ok(()) => String::new(),
        Err(n) => format!(
            "; it allows no new {} ({}), so the current one cannot be renewed: switch spec.credential.type to {}",
            kind_name(kind),
            n.restriction,
            n.allowed.join(" or ")
        ),
    };
    format!(
        "app management policy '{}' ({}) applies{cap}{blocked}",
        p.display_name, p.id
    )
}

fn unreadable(why: &str) -> String {
    format!(
        "the operator may not read the tenant's app management policies ({why}); credentials are issued as the spec says and a refusal by Entra is reported. Grant the operator's application the Microsoft Graph application permission {READ_POLICY} (or Policy.Read.All) to have lifetimes capped and blocked types reported before anything is created"
    )
}

fn kind_name(kind: CredentialType) -> &'static str {
    match kind {
        CredentialType::ClientSecret => "ClientSecret",
        CredentialType::Certificate => "Certificate",
        CredentialType::WorkloadIdentity => "WorkloadIdentity",
    }
}

/// Stalled: the policy does not allow a new credential of `kind`.
pub fn not_allowed(kind: CredentialType, n: NotAllowed) -> Error {
    Error::CredentialTypeNotAllowedByPolicy {
        kind: kind_name(kind),
        policy: format!("'{}' ({})", n.policy.display_name, n.policy.id),
        restriction: Some(n.restriction.to_string()),
        allowed: n.allowed,
    }
}

/// Before adding a credential of `kind`: Stalled if the rules (when read) do not allow it.
pub fn check(rules: Option<&CredentialRules>, kind: CredentialType) -> Result<(), Error> {
    match rules {
        Some(r) => r.check(kind).map_err(|n| not_allowed(kind, n)),
        None => Ok(()),
    }
}

/// A failed credential write: Entra's policy refusals become the policy's Stalled reasons (and the
/// cached default policy is dropped: it did not show what Entra enforced), anything else is
/// `action`'s error.
pub async fn refused(
    ctx: &Context,
    graph: &GraphClient,
    kind: CredentialType,
    e: GraphError,
    action: &'static str,
    permission: &'static str,
) -> Error {
    let code = e.code().to_string();
    let message = match &e {
        GraphError::BadRequest { message, .. } => message.clone(),
        _ => return needs(action, permission)(e),
    };
    let policy = policy::policy_id_in(&message)
        .map(|id| format!("'{id}'"))
        .unwrap_or_else(|| "(not named by Entra ID)".into());
    let mapped = match code.as_str() {
        "CredentialTypeNotAllowedAsPerAppPolicy" => Error::CredentialTypeNotAllowedByPolicy {
            kind: kind_name(kind),
            policy,
            restriction: Some(format!("Entra ID: {message}")),
            allowed: Vec::new(),
        },
        "CredentialInvalidLifetimeAsPerAppPolicy" => Error::CredentialLifetimeNotAllowedByPolicy {
            kind: kind_name(kind),
            policy,
            message,
        },
        _ => return needs(action, permission)(e),
    };
    ctx.forget_default_app_policy(graph).await;
    mapped
}
