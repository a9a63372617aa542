//! The users and groups assigned the FHIR API's app roles (`spec.appRoleAssignments`), as a pure
//! plan against what the API's service principal has. Client service principals' assignments are
//! never planned here (the access policy governs those: [`super::revocation`]).

use crate::api::FhirResourceAppSpec;
use crate::desired::resource::Entitlement;
use crate::graph::types::AppRoleAssignment;

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
) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![];
    for a in spec.app_role_assignments.iter().flatten() {
        let Some(role) = roles.iter().find(|r| r.value == a.app_role) else {
            let names: Vec<&str> = roles.iter().map(|r| r.value.as_str()).collect();
            return Err(format!(
                "appRoleAssignments: {} {} is given app role {}, which this app does not publish (its roles: {})",
                a.principal_type.as_str(),
                a.principal_id,
                a.app_role,
                names.join(", ")
            ));
        };
        out.push((a.principal_id.to_ascii_lowercase(), role.id.clone()));
    }
    Ok(out)
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
