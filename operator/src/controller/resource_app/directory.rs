//! The FHIR API's service principal as the directory sees it: whether only assigned principals get
//! tokens (`appRoleAssignmentRequired`, default true) and the app roles assigned to users and
//! groups (`spec.appRoleAssignments`). Client service principals' assignments belong to the clients'
//! access step and are never touched here.

use crate::api::FhirResourceAppSpec;
use crate::controller::application::WRITE_APPS;
use crate::controller::{Error, needs};
use crate::desired::resource::Entitlement;
use crate::graph::GraphClient;
use crate::graph::types::{AppRoleAssignment, ServicePrincipal};

const ROLES_PERM: &str = "AppRoleAssignment.ReadWrite.All";

/// Assignments to create (principal ID, app role ID) and to remove (assignment IDs).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub assign: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// `want` against the user and group assignments `have` (service principals are left alone).
pub fn plan(want: &[(String, String)], have: &[AppRoleAssignment]) -> Plan {
    let people: Vec<&AppRoleAssignment> = have
        .iter()
        .filter(|a| matches!(a.principal_type.as_deref(), Some("User" | "Group")))
        .collect();
    let held = |(p, r): &(String, String)| {
        people
            .iter()
            .any(|a| a.principal_id.eq_ignore_ascii_case(p) && &a.app_role_id == r)
    };
    Plan {
        assign: want.iter().filter(|w| !held(w)).cloned().collect(),
        remove: people
            .iter()
            .filter(|a| {
                !want
                    .iter()
                    .any(|(p, r)| a.principal_id.eq_ignore_ascii_case(p) && &a.app_role_id == r)
            })
            .map(|a| a.id.clone())
            .collect(),
    }
}

/// The wanted (principal, role ID) pairs; a role the app does not publish is a spec error.
pub fn wanted(
    spec: &FhirResourceAppSpec,
    roles: &[Entitlement],
) -> Result<Vec<(String, String)>, Error> {
    let mut out = vec![];
    for a in spec.app_role_assignments.iter().flatten() {
        let Some(role) = roles.iter().find(|r| r.value == a.app_role) else {
            let names: Vec<&str> = roles.iter().map(|r| r.value.as_str()).collect();
            return Err(Error::InvalidSpec(format!(
                "appRoleAssignments: {} {} is given app role {}, which this app does not publish (its roles: {})",
                a.principal_type.as_str(),
                a.principal_id,
                a.app_role,
                names.join(", ")
            )));
        };
        out.push((a.principal_id.to_ascii_lowercase(), role.id.clone()));
    }
    Ok(out)
}

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
    let want = wanted(spec, roles)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn held(id: &str, principal: &str, role: &str, kind: &str) -> AppRoleAssignment {
        AppRoleAssignment {
            id: id.into(),
            app_role_id: role.into(),
            principal_id: principal.into(),
            resource_id: "fhir-sp".into(),
            principal_type: Some(kind.into()),
        }
    }

    #[test]
    fn users_and_groups_follow_the_spec_and_client_principals_are_left_alone() {
        let have = [
            held("a1", "group-1", "reader", "Group"),
            held("a2", "user-1", "admin", "User"),
            held("a3", "client-sp", "admin", "ServicePrincipal"),
        ];
        let want = [
            ("group-1".to_string(), "reader".to_string()),
            ("user-2".to_string(), "reader".to_string()),
        ];
        assert_eq!(
            plan(&want, &have),
            Plan {
                assign: vec![("user-2".into(), "reader".into())],
                remove: vec!["a2".into()],
            }
        );
    }
}
