//! The access step: what the client's service principal holds on its target's — app role
//! assignments (`assignAppRoles`) and the admin-consent grant (`grantAdminConsent`) — as a pure plan
//! from what exists, then applied.

use crate::api::FhirClientAppSpec;
use crate::controller::{Error, needs};
use crate::desired::access::{GrantPlan, plan_grant, plan_roles};
use crate::desired::client::{self as b, ResolvedTarget};
use crate::graph::GraphClient;

const ROLES_PERM: &str = "AppRoleAssignment.ReadWrite.All and Application.Read.All";
const GRANT_PERM: &str = "DelegatedPermissionGrant.ReadWrite.All";

/// The client's service principal and whether it was created in this reconcile (then it holds
/// nothing yet, and nothing is listed).
pub struct Principal<'a> {
    pub id: &'a str,
    pub is_new: bool,
}

/// Converges assignments and the grant, as far as the spec opts in.
pub async fn apply(
    graph: &GraphClient,
    spec: &FhirClientAppSpec,
    target: &ResolvedTarget,
    target_sp: Option<&str>,
    sp: Principal<'_>,
) -> Result<(), Error> {
    let resource_sp = || {
        target_sp.ok_or_else(|| {
            Error::InvalidSpec(
                "the target's service principal is not in this tenant; app roles cannot be assigned and admin consent cannot be granted".into(),
            )
        })
    };
    if spec.assign_app_roles == Some(true) {
        let resource_sp = resource_sp()?;
        let have = if sp.is_new {
            vec![]
        } else {
            graph
                .list_app_role_assignments(sp.id)
                .await
                .map_err(needs("list app role assignments", ROLES_PERM))?
        };
        let want: Vec<String> = b::granted(spec, target)
            .roles
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let plan = plan_roles(&want, &have, resource_sp);
        for role in &plan.assign {
            graph
                .assign_app_role(sp.id, resource_sp, role)
                .await
                .map_err(needs("assign app roles", ROLES_PERM))?;
        }
        for id in &plan.remove {
            graph
                .remove_app_role_assignment(sp.id, id)
                .await
                .map_err(needs("remove app role assignments", ROLES_PERM))?;
        }
    }
    if spec.grant_admin_consent == Some(true) {
        let resource_sp = resource_sp()?;
        let grants = if sp.is_new {
            vec![]
        } else {
            graph
                .list_grants(sp.id)
                .await
                .map_err(needs("list delegated permission grants", GRANT_PERM))?
        };
        apply_grant(
            graph,
            sp.id,
            resource_sp,
            plan_grant(&granted_scope(spec, target), &grants, resource_sp),
        )
        .await?;
    }
    Ok(())
}

/// The requested scopes the target publishes, space-separated: a renamed or removed scope leaves
/// the grant.
fn granted_scope(spec: &FhirClientAppSpec, target: &ResolvedTarget) -> String {
    let scopes = b::granted(spec, target).scopes;
    scopes
        .iter()
        .map(|e| e.value.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn apply_grant(
    graph: &GraphClient,
    sp: &str,
    resource_sp: &str,
    plan: GrantPlan,
) -> Result<(), Error> {
    match plan {
        GrantPlan::Keep => Ok(()),
        GrantPlan::Create(scope) => graph
            .create_grant(sp, resource_sp, &scope)
            .await
            .map_err(needs("grant admin consent", GRANT_PERM)),
        GrantPlan::Update { id, scope } => graph
            .update_grant(&id, &scope)
            .await
            .map_err(needs("update admin consent", GRANT_PERM)),
        GrantPlan::Delete(id) => graph
            .delete_grant(&id)
            .await
            .map_err(needs("remove admin consent", GRANT_PERM)),
    }
}
