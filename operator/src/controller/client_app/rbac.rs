//! The role-assignment step (managed target): Azure RBAC data roles on the managed FHIR service for
//! the client's service principal, through Azure Resource Manager. The managed service authorises
//! data-plane requests by these assignments alone (API permissions do nothing there), so a client
//! is Ready only once they exist. `desired::managed` computes names and the plan. [`note`] is what
//! the client's status says about that data plane.

use crate::api::{AppStatus, DataRole, FhirClientApp, FhirClientAppSpec, RoleAssignmentStatus};
use crate::arm::{ArmClient, ArmError, Put};
use crate::controller::{Context, Error};
use crate::desired::client::ResolvedTarget;
use crate::desired::managed::{self as m, Existing};
use crate::graph::GraphClient;

/// The FHIR service's scope and the roles the spec wants there (`None`: no resource id).
fn wanted(spec: &FhirClientAppSpec) -> Option<(m::ServiceId, Vec<DataRole>)> {
    let managed = spec.target.managed.as_ref()?;
    let id = m::parse_resource_id(managed.resource_id.as_deref()?)?;
    Some((id, managed.data_roles.clone().unwrap_or_default()))
}

/// Converges the assignments of `principal` and records them in `status` as they become true.
pub async fn apply(
    ctx: &Context,
    graph: &GraphClient,
    spec: &FhirClientAppSpec,
    principal: &str,
    status: &mut AppStatus,
) -> Result<(), Error> {
    let want = wanted(spec);
    if want.is_none() && status.role_assignments.is_empty() {
        return Ok(());
    }
    let arm = ctx.arm(graph);
    let fail = |scope: &str| {
        let scope = scope.to_string();
        move |e| arm_error(e, &scope, graph)
    };
    // Assignments recorded on a scope the spec no longer names (resourceId changed or removed).
    let current = want.as_ref().map(|(id, _)| id.scope.to_ascii_lowercase());
    let stale: Vec<RoleAssignmentStatus> = status
        .role_assignments
        .iter()
        .filter(|a| Some(a.scope.to_ascii_lowercase()) != current)
        .cloned()
        .collect();
    for a in stale {
        arm.delete(&a.scope, &a.name)
            .await
            .map_err(fail(&a.scope))?;
        status.role_assignments.retain(|r| r != &a);
    }
    let Some((id, roles)) = want else {
        return Ok(());
    };
    let existing = list(&arm, &id.scope, principal)
        .await
        .map_err(fail(&id.scope))?;
    let plan = m::plan(&id.scope, principal, &roles, &existing);
    let mut held: Vec<RoleAssignmentStatus> = plan
        .keep
        .iter()
        .map(|(role, name)| record(*role, name, &id.scope))
        .collect();
    for name in &plan.remove {
        arm.delete(&id.scope, name).await.map_err(fail(&id.scope))?;
    }
    for role in &plan.assign {
        let name = assign(&arm, &id, principal, *role)
            .await
            .map_err(fail(&id.scope))?;
        held.push(record(*role, &name, &id.scope));
        // Recorded as each one exists, so a later failure still reports what is there.
        status.role_assignments = sorted(held.clone());
    }
    status.role_assignments = sorted(held);
    Ok(())
}

/// PUT the deterministic assignment; on 409 (the same grant under another name, e.g. made by hand)
/// adopt that one. Returns the name that holds the grant.
async fn assign(
    arm: &ArmClient,
    id: &m::ServiceId,
    principal: &str,
    role: DataRole,
) -> Result<String, ArmError> {
    let name = m::assignment_name(&id.scope, principal, role);
    let definition = m::role_definition_id(id.subscription(), role);
    match arm.put(&id.scope, &name, &definition, principal).await? {
        Put::Done => Ok(name),
        Put::ExistsElsewhere => {
            let found = list(arm, &id.scope, principal).await?;
            found
                .into_iter()
                .find(|e| {
                    e.scope.eq_ignore_ascii_case(&id.scope)
                        && m::role_of_definition(&e.role_definition_id) == Some(role)
                })
                .map(|e| e.name)
                .ok_or_else(|| ArmError::Transient {
                    status: 409,
                    message: format!(
                        "{} is assigned under another name that the list does not show yet",
                        role.name()
                    ),
                    retry_after: None,
                })
        }
    }
}

async fn list(arm: &ArmClient, scope: &str, principal: &str) -> Result<Vec<Existing>, ArmError> {
    Ok(arm
        .list_for_principal(scope, principal)
        .await?
        .into_iter()
        .map(|a| Existing {
            name: a.name,
            scope: a.properties.scope,
            principal_id: a.properties.principal_id,
            role_definition_id: a.properties.role_definition_id,
        })
        .collect())
}

fn record(role: DataRole, name: &str, scope: &str) -> RoleAssignmentStatus {
    RoleAssignmentStatus {
        role: role.name().to_string(),
        name: name.to_string(),
        scope: scope.to_string(),
    }
}

fn sorted(mut v: Vec<RoleAssignmentStatus>) -> Vec<RoleAssignmentStatus> {
    v.sort_by(|a, b| a.role.cmp(&b.role));
    v
}

/// A 403 names what the operator lacks and how to grant it; the rest are ARM's errors.
fn arm_error(e: ArmError, scope: &str, graph: &GraphClient) -> Error {
    match e {
        ArmError::AuthorizationFailed { message, .. } => Error::RoleAssignmentPermissionMissing {
            scope: scope.to_string(),
            operator: graph.client_id().to_string(),
            message,
        },
        e => Error::Arm(e),
    }
}

/// On deletion (policy Delete): every FHIR data-role assignment of the client's service principal
/// at the scope — the recorded ones and any a crash left unrecorded. 200, 204 and 404 are done.
pub async fn remove_all(
    ctx: &Context,
    graph: &GraphClient,
    obj: &FhirClientApp,
) -> Result<(), Error> {
    let status = obj.status.clone().unwrap_or_default();
    let Some(principal) = status.service_principal_object_id.as_deref() else {
        return Ok(());
    };
    let arm = ctx.arm(graph);
    for a in &status.role_assignments {
        arm.delete(&a.scope, &a.name)
            .await
            .map_err(|e| arm_error(e, &a.scope, graph))?;
    }
    if let Some((id, roles)) = wanted(&obj.spec) {
        let existing = match list(&arm, &id.scope, principal).await {
            Ok(e) => e,
            // Nothing recorded and no right to look: the operator cannot have assigned anything
            // here, so there is nothing of ours to remove (and deletion must not hang on it).
            Err(ArmError::AuthorizationFailed { .. })
                if status.role_assignments.is_empty() || roles.is_empty() =>
            {
                return Ok(());
            }
            Err(e) => return Err(arm_error(e, &id.scope, graph)),
        };
        let plan = m::plan(&id.scope, principal, &[], &existing);
        for name in plan.remove {
            arm.delete(&id.scope, &name)
                .await
                .map_err(|e| arm_error(e, &id.scope, graph))?;
        }
    }
    Ok(())
}

/// What a managed-target client's status says about data-plane access, and about `fhirUser`: the
/// audience step the operator does not take when a FhirResourceApp stands for the service's
/// audience, or, with the FHIR SMART User role and no such app, where the claim must come from.
pub fn note(obj: &FhirClientApp, target: &ResolvedTarget, status: &AppStatus) -> String {
    let note = managed_access_note(status.role_assignments.is_empty());
    let m = obj.spec.target.managed.as_ref();
    if m.is_some_and(|m| m.audience_resource_app_ref.is_some()) {
        let id = m.and_then(|m| m.resource_id.as_deref());
        let step = crate::desired::fhir_user::audience_step(id, &target.audience);
        return format!("{note} {step}");
    }
    let roles = m.and_then(|m| m.data_roles.as_ref());
    if !roles.is_some_and(|r| r.contains(&crate::api::DataRole::FhirSmartUser)) {
        return note;
    }
    format!(
        "{note} FHIR SMART User narrows each request by the token's fhirUser claim, which the \
         service's first-party application cannot carry: name a FhirResourceApp with \
         smart.fhirUserClaim in target.managed.audienceResourceAppRef (docs/smart-fhir-user.md, \
         managed service)."
    )
}

fn managed_access_note(no_assignments: bool) -> String {
    if no_assignments {
        "Target is the managed FHIR service: data-plane access is granted by Azure RBAC; set target.managed.resourceId and dataRoles for the operator to assign roles, or assign e.g. 'FHIR Data Reader' to this client's service principal on the FHIR service yourself.".into()
    } else {
        "Target is the managed FHIR service: data-plane access is granted by the Azure RBAC role assignments in status.roleAssignments; they can take a few minutes to take effect.".into()
    }
}
