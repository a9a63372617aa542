//! The FHIR API's service principal as the directory sees it: whether only assigned principals get
//! tokens (`appRoleAssignmentRequired`, default true) and the app roles assigned to users and
//! groups (`spec.appRoleAssignments`). Client service principals' assignments belong to the clients'
//! access step and are never touched here.

use crate::api::FhirResourceAppSpec;
use crate::controller::application::WRITE_APPS;
use crate::controller::{Error, needs};
use crate::desired::directory::{plan, wanted};
use crate::desired::resource::Entitlement;
use crate::graph::GraphClient;
use crate::graph::types::ServicePrincipal;

const ROLES_PERM: &str = "AppRoleAssignment.ReadWrite.All";

/// Converges `appRoleAssignmentRequired` and, when `spec.appRoleAssignments` is set, the user and
/// group assignments. Returns how many user and group assignments the API has now.
pub async fn apply(
    graph: &GraphClient,
    spec: &FhirResourceAppSpec,
    sp: &ServicePrincipal,
    roles: &[Entitlement],
) -> Result<Option<usize>, Error> {
    let required = spec.app_role_assignment_required.unwrap_or(true);
    if sp.app_role_assignment_required != required {
        graph
            .set_assignment_required(&sp.id, required)
            .await
            .map_err(needs("update the service principal", WRITE_APPS))?;
    }
    if spec.app_role_assignments.is_none() {
        return Ok(None);
    }
    let want = wanted(spec, roles).map_err(Error::InvalidSpec)?;
    let have = graph
        .list_assigned_to(&sp.id)
        .await
        .map_err(needs("list app role assignments", ROLES_PERM))?;
    let plan = plan(&want, &have);
    for (principal, role) in &plan.assign {
        match graph
            .assign_app_role_to_principal(principal, &sp.id, role)
            .await
        {
            // Graph's 404 names the principal: a typo in the spec, not an object to recreate.
            Err(crate::graph::GraphError::NotFound { .. }) => {
                return Err(Error::InvalidSpec(format!(
                    "appRoleAssignments: no user or group with object ID {principal} in tenant {}",
                    graph.tenant_id()
                )));
            }
            r => r.map_err(needs("assign app roles to users and groups", ROLES_PERM))?,
        }
    }
    for id in &plan.remove {
        graph
            .remove_assigned_to(&sp.id, id)
            .await
            .map_err(needs("remove app role assignments", ROLES_PERM))?;
    }
    Ok(Some(want.len()))
}
