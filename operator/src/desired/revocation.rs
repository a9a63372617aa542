//! What a FhirResourceApp's access policy no longer lets a client's service principal hold on the
//! FHIR API: app role assignments and delegated grants (admin consent and users' own consents) to
//! remove. Pure: the resource app's enforcement step and the client's revoke step both plan with it,
//! so the two never disagree.
//!
//! It plans from what Entra **holds**, never from what the client's spec asks: a client whose owner
//! turns `assignAppRoles` off, breaks its spec or points it elsewhere still loses what the policy
//! does not allow (docs/access-policy.md, "Revocation").

use crate::api::AccessPolicySpec;
use crate::desired::policy::{self, Decision, Request};
use crate::desired::resource::Entitlement;
use crate::graph::types::{AppRoleAssignment, PermissionGrant};

/// What one client may hold on one resource app: app role IDs and scope values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// `false`: nothing at all (the namespace is not admitted, or the client no longer targets
    /// this resource app), including assignments of roles the resource app does not publish.
    pub admitted: bool,
    pub role_ids: Vec<String>,
    pub scopes: Vec<String>,
}

/// The resource app as the policy sees it: where it lives, its policy and what it publishes.
pub struct Resource<'a> {
    pub namespace: &'a str,
    pub policy: Option<&'a AccessPolicySpec>,
    pub roles: &'a [Entitlement],
    pub scopes: &'a [Entitlement],
}

/// What a client in `client_ns` may hold on `resource`; nothing when it does not target it.
pub fn allowance(resource: &Resource<'_>, client_ns: &str, targets_it: bool) -> Allowance {
    if !targets_it {
        return Allowance::default();
    }
    // Ask the policy about everything the API publishes: what it allows is the most any client of
    // this namespace may hold, whatever its own spec requests.
    let everything = Request {
        roles: resource.roles.iter().map(|r| r.value.clone()).collect(),
        scopes: resource.scopes.iter().map(|s| s.value.clone()).collect(),
        redirect_uris: vec![],
    };
    match policy::evaluate(resource.policy, client_ns, resource.namespace, &everything) {
        Decision::NotAdmitted => Allowance::default(),
        Decision::Admitted { allowed, .. } => Allowance {
            admitted: true,
            role_ids: resource
                .roles
                .iter()
                .filter(|r| allowed.roles.contains(&r.value))
                .map(|r| r.id.clone())
                .collect(),
            scopes: allowed.scopes,
        },
    }
}

/// A change to one delegated grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChange {
    /// Narrow the grant to `scope` (space-separated).
    Narrow { id: String, scope: String },
    /// Nothing allowed is left in it.
    Delete(String),
}

/// The removals for one client on one resource app, and what they take away (for the Event).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub assignments: Vec<String>,
    pub grants: Vec<GrantChange>,
    /// `AppRole <value>` / `Scope <value>` for each role or scope taken away.
    pub taken: Vec<String>,
}

impl Revocation {
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty() && self.grants.is_empty()
    }
}

/// Plans the removals from what the client's service principal holds on `resource_sp`
/// (`assignments` and `grants` may include other resources' entries; they are left alone). An
/// assignment of a role the API does not publish is kept while the namespace is admitted (it is not
/// the policy's to judge, and Entra keeps it working only for the default access).
pub fn plan(
    allow: &Allowance,
    resource: &Resource<'_>,
    resource_sp: &str,
    assignments: &[AppRoleAssignment],
    grants: &[PermissionGrant],
) -> Revocation {
    let mut out = Revocation::default();
    let role_value = |id: &str| resource.roles.iter().find(|r| r.id == id);
    for a in assignments.iter().filter(|a| a.resource_id == resource_sp) {
        let published = role_value(&a.app_role_id);
        let allowed = allow.role_ids.contains(&a.app_role_id);
        if !allow.admitted || (published.is_some() && !allowed) {
            out.assignments.push(a.id.clone());
            let value = published.map_or(a.app_role_id.as_str(), |r| r.value.as_str());
            out.taken.push(format!("{} {value}", policy::ROLE));
        }
    }
    for g in grants.iter().filter(|g| g.resource_id == resource_sp) {
        let held: Vec<&str> = g
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let (kept, gone): (Vec<&str>, Vec<&str>) = held
            .iter()
            .partition(|s| allow.scopes.iter().any(|a| a == *s));
        if gone.is_empty() {
            continue;
        }
        out.taken
            .extend(gone.iter().map(|s| format!("{} {s}", policy::SCOPE)));
        out.grants.push(if kept.is_empty() {
            GrantChange::Delete(g.id.clone())
        } else {
            GrantChange::Narrow {
                id: g.id.clone(),
                scope: kept.join(" "),
            }
        });
    }
    out.taken.sort();
    out.taken.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccessRule;

    fn ent(id: &str, value: &str) -> Entitlement {
        Entitlement {
            id: id.into(),
            value: value.into(),
        }
    }

    fn assignment(id: &str, role: &str, resource: &str) -> AppRoleAssignment {
        AppRoleAssignment {
            id: id.into(),
            app_role_id: role.into(),
            principal_id: "client-sp".into(),
            resource_id: resource.into(),
            principal_type: Some("ServicePrincipal".into()),
        }
    }

    fn grant(id: &str, consent: &str, scope: &str) -> PermissionGrant {
        PermissionGrant {
            id: id.into(),
            client_id: "client-sp".into(),
            resource_id: "fhir-sp".into(),
            consent_type: Some(consent.into()),
            scope: Some(scope.into()),
        }
    }

    fn policy(rules: Vec<AccessRule>) -> AccessPolicySpec {
        AccessPolicySpec {
            privileged_roles: None,
            rules: Some(rules),
        }
    }

    fn rule(ns: &str, roles: &[&str], scopes: &[&str]) -> AccessRule {
        let v = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect());
        AccessRule {
            namespaces: vec![ns.into()],
            app_roles: v(roles),
            scopes: v(scopes),
            redirect_hosts: None,
        }
    }

    const ROLES: [(&str, &str); 3] = [
        ("r-read", "globalReader"),
        ("r-write", "globalWriter"),
        ("r-admin", "globalAdmin"),
    ];

    fn roles() -> Vec<Entitlement> {
        ROLES.iter().map(|(i, v)| ent(i, v)).collect()
    }

    fn scopes() -> Vec<Entitlement> {
        vec![
            ent("s1", "user_impersonation"),
            ent("s2", "patient.all.read"),
        ]
    }

    #[test]
    fn an_emptied_rule_list_takes_everything_from_another_namespace() {
        let (roles, scopes) = (roles(), scopes());
        let p = policy(vec![]);
        let res = Resource {
            namespace: "fhir",
            policy: Some(&p),
            roles: &roles,
            scopes: &scopes,
        };
        let allow = allowance(&res, "team", true);
        assert!(!allow.admitted);
        let held = [
            assignment("a1", "r-write", "fhir-sp"),
            assignment("a2", "00000000-0000-0000-0000-000000000000", "fhir-sp"),
            assignment("a3", "r-write", "other-sp"),
        ];
        let grants = [
            grant("g1", "AllPrincipals", "user_impersonation"),
            grant("g2", "Principal", "patient.all.read"),
        ];
        let r = plan(&allow, &res, "fhir-sp", &held, &grants);
        assert_eq!(r.assignments, vec!["a1", "a2"], "the other API's is left");
        assert_eq!(
            r.grants,
            vec![
                GrantChange::Delete("g1".into()),
                GrantChange::Delete("g2".into())
            ],
            "users' own consents too"
        );
        assert!(r.taken.contains(&"AppRole globalWriter".to_string()));
    }

    #[test]
    fn a_narrowed_rule_keeps_what_it_still_allows() {
        let (roles, scopes) = (roles(), scopes());
        let p = policy(vec![rule(
            "team",
            &["globalReader"],
            &["user_impersonation"],
        )]);
        let res = Resource {
            namespace: "fhir",
            policy: Some(&p),
            roles: &roles,
            scopes: &scopes,
        };
        let allow = allowance(&res, "team", true);
        let held = [
            assignment("a1", "r-read", "fhir-sp"),
            assignment("a2", "r-write", "fhir-sp"),
        ];
        let grants = [grant(
            "g1",
            "AllPrincipals",
            "user_impersonation patient.all.read",
        )];
        let r = plan(&allow, &res, "fhir-sp", &held, &grants);
        assert_eq!(r.assignments, vec!["a2"]);
        assert_eq!(
            r.grants,
            vec![GrantChange::Narrow {
                id: "g1".into(),
                scope: "user_impersonation".into()
            }]
        );
        assert_eq!(
            r.taken,
            vec!["AppRole globalWriter", "Scope patient.all.read"]
        );
        let nothing = plan(&allow, &res, "fhir-sp", &held[..1], &[]);
        assert!(nothing.is_empty());
    }

    #[test]
    fn a_client_that_no_longer_targets_the_api_keeps_nothing_there() {
        let (roles, scopes) = (roles(), scopes());
        let res = Resource {
            namespace: "team",
            policy: None,
            roles: &roles,
            scopes: &scopes,
        };
        assert!(allowance(&res, "team", true).admitted, "same namespace");
        let allow = allowance(&res, "team", false);
        let r = plan(
            &allow,
            &res,
            "fhir-sp",
            &[assignment("a1", "r-read", "fhir-sp")],
            &[grant("g1", "AllPrincipals", "user_impersonation")],
        );
        assert_eq!(r.assignments, vec!["a1"]);
        assert_eq!(r.grants, vec![GrantChange::Delete("g1".into())]);
    }

    #[test]
    fn privileged_roles_need_a_rule_even_in_the_same_namespace() {
        let (roles, scopes) = (roles(), scopes());
        let res = Resource {
            namespace: "fhir",
            policy: None,
            roles: &roles,
            scopes: &scopes,
        };
        let allow = allowance(&res, "fhir", true);
        let r = plan(
            &allow,
            &res,
            "fhir-sp",
            &[
                assignment("a1", "r-read", "fhir-sp"),
                assignment("a2", "r-admin", "fhir-sp"),
            ],
            &[],
        );
        assert_eq!(r.assignments, vec!["a2"]);
    }
}
