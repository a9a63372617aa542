//! The access a client's service principal holds on its target's API, as pure plans from what
//! exists: the app role assignments (`assignAppRoles`) and the admin-consent grant
//! (`grantAdminConsent`). `controller/client_app/access.rs` reads and applies them.

use crate::graph::types::{AppRoleAssignment, PermissionGrant};

/// The changes to app role assignments: role IDs to assign, assignment IDs to remove.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RolesPlan {
    pub assign: Vec<String>,
    pub remove: Vec<String>,
}

/// The change to the admin-consent grant (consentType AllPrincipals) on the target.
#[derive(Debug, PartialEq, Eq)]
pub enum GrantPlan {
    Keep,
    Create(String),
    Update {
        id: String,
        scope: String,
    },
    /// Nothing left to consent to (every requested scope is gone from the target).
    Delete(String),
}

/// Assign the wanted role IDs the principal lacks; remove its assignments on `resource_sp` that are
/// not wanted.
pub fn plan_roles(want: &[String], have: &[AppRoleAssignment], resource_sp: &str) -> RolesPlan {
    let have: Vec<&AppRoleAssignment> = have
        .iter()
        .filter(|a| a.resource_id == resource_sp)
        .collect();
    RolesPlan {
        assign: want
            .iter()
            .filter(|r| !have.iter().any(|a| &a.app_role_id == *r))
            .cloned()
            .collect(),
        remove: have
            .iter()
            .filter(|a| !want.contains(&a.app_role_id))
            .map(|a| a.id.clone())
            .collect(),
    }
}

/// The grant for `scope` (space-separated; order does not matter) on `resource_sp`.
pub fn plan_grant(scope: &str, grants: &[PermissionGrant], resource_sp: &str) -> GrantPlan {
    let words = |s: &str| {
        let mut v: Vec<String> = s.split_whitespace().map(String::from).collect();
        v.sort();
        v
    };
    let existing = grants.iter().find(|g| {
        g.resource_id == resource_sp && g.consent_type.as_deref() == Some("AllPrincipals")
    });
    match existing {
        Some(g) if words(g.scope.as_deref().unwrap_or_default()) == words(scope) => GrantPlan::Keep,
        Some(g) if scope.is_empty() => GrantPlan::Delete(g.id.clone()),
        Some(g) => GrantPlan::Update {
            id: g.id.clone(),
            scope: scope.to_string(),
        },
        None if scope.is_empty() => GrantPlan::Keep,
        None => GrantPlan::Create(scope.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(id: &str, role: &str, resource: &str) -> AppRoleAssignment {
        AppRoleAssignment {
            id: id.into(),
            app_role_id: role.into(),
            principal_id: "client-sp".into(),
            resource_id: resource.into(),
            principal_type: None,
        }
    }

    fn grant(id: &str, scope: &str, resource: &str) -> PermissionGrant {
        PermissionGrant {
            id: id.into(),
            client_id: "client-sp".into(),
            resource_id: resource.into(),
            consent_type: Some("AllPrincipals".into()),
            scope: Some(scope.into()),
        }
    }

    #[test]
    fn roles_are_assigned_and_removed_on_the_target_only() {
        let have = [
            assignment("a1", "reader", "fhir-sp"),
            assignment("a2", "admin", "fhir-sp"),
            assignment("a3", "admin", "other-sp"),
        ];
        let plan = plan_roles(&["reader".into(), "writer".into()], &have, "fhir-sp");
        assert_eq!(
            plan,
            RolesPlan {
                assign: vec!["writer".into()],
                remove: vec!["a2".into()]
            }
        );
    }

    #[test]
    fn the_grant_follows_the_scopes_the_target_still_publishes() {
        let have = [grant("g1", "records.read user_impersonation", "fhir-sp")];
        assert_eq!(
            plan_grant("user_impersonation records.read", &have, "fhir-sp"),
            GrantPlan::Keep,
            "order does not matter"
        );
        assert_eq!(
            plan_grant("user_impersonation", &have, "fhir-sp"),
            GrantPlan::Update {
                id: "g1".into(),
                scope: "user_impersonation".into()
            }
        );
        assert_eq!(
            plan_grant("", &have, "fhir-sp"),
            GrantPlan::Delete("g1".into())
        );
        assert_eq!(plan_grant("", &[], "fhir-sp"), GrantPlan::Keep);
        assert_eq!(
            plan_grant("a", &have, "other-sp"),
            GrantPlan::Create("a".into())
        );
    }
}
