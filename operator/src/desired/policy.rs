//! The access policy of a FhirResourceApp applied to a client's request: which app roles, scopes
//! and redirect URIs the client may have, and what is refused and why. Pure: the controller
//! registers and grants only what [`evaluate`] allows.
//!
//! Defaults (docs/access-policy.md): a client in the resource app's own namespace may have any
//! non-privileged role, any scope and any redirect host (what it had before policies existed); a
//! client in another namespace has nothing unless a rule names its namespace. Rules only add.

use crate::api::{ALWAYS_PRIVILEGED, AccessEntry, AccessPolicySpec, AccessRule};

/// What a client asks of its target: role and scope values as published (SMART notation mapped),
/// and its redirect URIs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
}

/// The policy's answer for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No rule admits the client's namespace (and it is not the resource app's).
    NotAdmitted,
    /// The namespace is admitted; `allowed` is the part of the request that may be registered.
    Admitted {
        allowed: Request,
        refused: Vec<AccessEntry>,
    },
}

pub const ROLE: &str = "AppRole";
pub const SCOPE: &str = "Scope";
pub const REDIRECT: &str = "RedirectUri";

/// Applies `policy` (the resource app's `spec.accessPolicy`) to `req` from a client in `client_ns`
/// for a resource app in `resource_ns`.
pub fn evaluate(
    policy: Option<&AccessPolicySpec>,
    client_ns: &str,
    resource_ns: &str,
    req: &Request,
) -> Decision {
    let same = client_ns == resource_ns;
    let rules: Vec<&AccessRule> = policy
        .and_then(|p| p.rules.as_ref())
        .into_iter()
        .flatten()
        .filter(|r| r.namespaces.iter().any(|n| n == client_ns))
        .collect();
    if !same && rules.is_empty() {
        return Decision::NotAdmitted;
    }
    let privileged = |role: &str| {
        role == ALWAYS_PRIVILEGED
            || policy
                .and_then(|p| p.privileged_roles.as_ref())
                .is_some_and(|l| l.iter().any(|r| r == role))
    };
    let listed = |list: &Option<Vec<String>>, v: &str, wildcard: bool| {
        list.iter()
            .flatten()
            .any(|x| x == v || (wildcard && x == "*"))
    };
    let mut allowed = Request::default();
    let mut refused = Vec::new();
    let mut refuse = |kind: &str, value: &str, reason: String| {
        refused.push(AccessEntry {
            kind: kind.into(),
            value: value.into(),
            reason: Some(reason),
        })
    };
    for role in &req.roles {
        let p = privileged(role);
        let ok = (same && !p) || rules.iter().any(|r| listed(&r.app_roles, role, !p));
        match (ok, p) {
            (true, _) => allowed.roles.push(role.clone()),
            (false, true) => refuse(
                ROLE,
                role,
                format!("privileged: needs a rule naming {role} for namespace {client_ns}"),
            ),
            (false, false) => refuse(
                ROLE,
                role,
                format!("no rule for namespace {client_ns} allows it"),
            ),
        }
    }
    for scope in &req.scopes {
        if same || rules.iter().any(|r| listed(&r.scopes, scope, true)) {
            allowed.scopes.push(scope.clone());
        } else {
            refuse(
                SCOPE,
                scope,
                format!("no rule for namespace {client_ns} allows it"),
            );
        }
    }
    for uri in &req.redirect_uris {
        let target = redirect_target(uri);
        let ok = same
            || target.as_ref().is_some_and(|t| {
                rules.iter().any(|r| {
                    r.redirect_hosts
                        .iter()
                        .flatten()
                        .any(|p| redirect_matches(p, t))
                })
            });
        if ok {
            allowed.redirect_uris.push(uri.clone());
        } else {
            refuse(REDIRECT, uri, redirect_refusal(target.as_ref(), client_ns));
        }
    }
    Decision::Admitted { allowed, refused }
}

/// A redirect URI as a rule judges it: its lower-cased scheme and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    pub scheme: String,
    pub host: String,
}

fn redirect_target(uri: &str) -> Option<RedirectTarget> {
    let u = reqwest::Url::parse(uri).ok()?;
    Some(RedirectTarget {
        scheme: u.scheme().to_ascii_lowercase(),
        host: redirect_host(uri)?,
    })
}

/// Loopback hosts, where a plain `http` redirect URI is allowed (Entra allows http only there).
fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// Whether a `redirectHosts` entry admits `t`. A plain host pattern (`portal.contoso.example`,
/// `*.contoso.example`) admits `https`, and `http` only on a loopback host. A custom scheme decides
/// which app on a device receives the authorization code, so it is admitted only by an entry that
/// names it: `com.contoso.app://portal.contoso.example` (issue 23 item 3).
pub fn redirect_matches(entry: &str, t: &RedirectTarget) -> bool {
    match entry.split_once("://") {
        Some((scheme, host)) => {
            scheme.eq_ignore_ascii_case(&t.scheme) && host_matches(host, &t.host)
        }
        None => {
            let scheme_ok = t.scheme == "https" || (t.scheme == "http" && is_loopback(&t.host));
            scheme_ok && host_matches(entry, &t.host)
        }
    }
}

fn redirect_refusal(t: Option<&RedirectTarget>, client_ns: &str) -> String {
    match t {
        None => format!("not a URI with a host; no rule for namespace {client_ns} can allow it"),
        Some(t) if t.scheme == "https" || (t.scheme == "http" && is_loopback(&t.host)) => format!(
            "host {} is not in redirectHosts of a rule for namespace {client_ns}",
            t.host
        ),
        Some(t) if t.scheme == "http" => format!(
            "http is allowed on loopback hosts only; use https for {}",
            t.host
        ),
        Some(t) => format!(
            "scheme {}:// needs an entry {}://{} in redirectHosts of a rule for namespace {client_ns} (a host alone admits https only)",
            t.scheme, t.scheme, t.host
        ),
    }
}

/// The lower-cased host of a redirect URI (custom schemes included: `msauth.app://auth` → `auth`).
pub fn redirect_host(uri: &str) -> Option<String> {
    let u = reqwest::Url::parse(uri).ok()?;
    u.host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase())
}

/// `pattern` is a host, or `*.` and a domain that matches its subdomains (not the domain itself).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ns: &[&str], roles: &[&str], scopes: &[&str], hosts: &[&str]) -> AccessRule {
        let v = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect());
        AccessRule {
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            app_roles: v(roles),
            scopes: v(scopes),
            redirect_hosts: v(hosts),
        }
    }

    fn req(roles: &[&str], scopes: &[&str], uris: &[&str]) -> Request {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Request {
            roles: v(roles),
            scopes: v(scopes),
            redirect_uris: v(uris),
        }
    }

    fn values(d: &Decision) -> (Request, Vec<String>) {
        match d {
            Decision::NotAdmitted => panic!("not admitted"),
            Decision::Admitted { allowed, refused } => (
                allowed.clone(),
                refused.iter().map(|e| e.value.clone()).collect(),
            ),
        }
    }

    #[test]
    fn same_namespace_keeps_everything_but_privileged_roles() {
        let r = req(
            &["globalReader", "globalAdmin", "exporter"],
            &["user_impersonation"],
            &["https://anywhere.example/cb"],
        );
        let policy = AccessPolicySpec {
            privileged_roles: Some(vec!["exporter".into()]),
            rules: None,
        };
        let (allowed, refused) = values(&evaluate(Some(&policy), "fhir", "fhir", &r));
        assert_eq!(allowed.roles, vec!["globalReader"]);
        assert_eq!(allowed.scopes, vec!["user_impersonation"]);
        assert_eq!(allowed.redirect_uris.len(), 1);
        assert_eq!(refused, vec!["globalAdmin", "exporter"]);
        let (_, refused) = values(&evaluate(None, "fhir", "fhir", &r));
        assert_eq!(
            refused,
            vec!["globalAdmin"],
            "globalAdmin is privileged without a policy too"
        );
    }

    #[test]
    fn other_namespaces_need_a_rule_naming_them() {
        let r = req(&["globalReader"], &[], &[]);
        assert_eq!(evaluate(None, "team-b", "fhir", &r), Decision::NotAdmitted);
        let policy = AccessPolicySpec {
            privileged_roles: None,
            rules: Some(vec![rule(&["team-a"], &["*"], &["*"], &[])]),
        };
        assert_eq!(
            evaluate(Some(&policy), "team-b", "fhir", &r),
            Decision::NotAdmitted
        );
        let (allowed, _) = values(&evaluate(Some(&policy), "team-a", "fhir", &r));
        assert_eq!(allowed.roles, vec!["globalReader"]);
    }

    #[test]
    fn a_wildcard_never_grants_a_privileged_role_but_naming_it_does() {
        let r = req(&["globalAdmin", "globalWriter"], &["patient.all.read"], &[]);
        let wild = AccessPolicySpec {
            privileged_roles: None,
            rules: Some(vec![rule(&["ops"], &["*"], &["*"], &[])]),
        };
        let (allowed, refused) = values(&evaluate(Some(&wild), "ops", "fhir", &r));
        assert_eq!(
            (allowed.roles, refused),
            (
                vec!["globalWriter".to_string()],
                vec!["globalAdmin".to_string()]
            )
        );
        let named = AccessPolicySpec {
            privileged_roles: None,
            rules: Some(vec![rule(&["fhir"], &["globalAdmin"], &[], &[])]),
        };
        let (allowed, refused) = values(&evaluate(Some(&named), "fhir", "fhir", &r));
        assert_eq!(allowed.roles, vec!["globalAdmin", "globalWriter"]);
        assert!(
            refused.is_empty(),
            "the same-namespace default still gives the rest"
        );
    }

    #[test]
    fn partial_requests_keep_the_allowed_part_and_name_the_rest() {
        let policy = AccessPolicySpec {
            privileged_roles: None,
            rules: Some(vec![
                rule(
                    &["portal"],
                    &[],
                    &["user_impersonation"],
                    &["portal.contoso.example"],
                ),
                rule(
                    &["portal", "ingest"],
                    &["globalReader"],
                    &[],
                    &["*.apps.contoso.example"],
                ),
            ]),
        };
        let r = req(
            &["globalReader", "globalWriter"],
            &["user_impersonation", "patient.all.write"],
            &[
                "https://portal.contoso.example/cb",
                "https://x.apps.contoso.example/cb",
                "https://apps.contoso.example/cb",
                "https://evil.example/cb",
            ],
        );
        let (allowed, refused) = values(&evaluate(Some(&policy), "portal", "fhir", &r));
        assert_eq!(allowed.roles, vec!["globalReader"]);
        assert_eq!(allowed.scopes, vec!["user_impersonation"]);
        assert_eq!(
            allowed.redirect_uris,
            vec![
                "https://portal.contoso.example/cb",
                "https://x.apps.contoso.example/cb"
            ]
        );
        assert_eq!(
            refused,
            vec![
                "globalWriter",
                "patient.all.write",
                "https://apps.contoso.example/cb",
                "https://evil.example/cb"
            ]
        );
    }

    #[test]
    fn a_host_rule_admits_https_only_and_a_custom_scheme_needs_its_own_entry() {
        let policy = AccessPolicySpec {
            privileged_roles: None,
            rules: Some(vec![rule(
                &["portal"],
                &[],
                &[],
                &[
                    "portal.contoso.example",
                    "localhost",
                    "msauth.com.contoso.app://auth",
                ],
            )]),
        };
        let r = req(
            &[],
            &[],
            &[
                "https://portal.contoso.example/cb",
                "com.attacker.app://portal.contoso.example/cb",
                "http://portal.contoso.example/cb",
                "http://localhost:3000/cb",
                "msauth.com.contoso.app://auth",
                "MSAUTH.com.contoso.app://auth/x",
                "msauth.com.attacker.app://auth",
            ],
        );
        let (allowed, refused) = values(&evaluate(Some(&policy), "portal", "fhir", &r));
        assert_eq!(
            allowed.redirect_uris,
            vec![
                "https://portal.contoso.example/cb",
                "http://localhost:3000/cb",
                "msauth.com.contoso.app://auth",
                "MSAUTH.com.contoso.app://auth/x",
            ]
        );
        assert_eq!(
            refused,
            vec![
                "com.attacker.app://portal.contoso.example/cb",
                "http://portal.contoso.example/cb",
                "msauth.com.attacker.app://auth",
            ]
        );
        let Decision::Admitted { refused, .. } = evaluate(Some(&policy), "portal", "fhir", &r)
        else {
            panic!()
        };
        assert!(
            refused[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("com.attacker.app://portal.contoso.example"),
            "{:?}",
            refused[0]
        );
    }

    #[test]
    fn redirect_hosts_are_compared_without_case_and_ports() {
        assert_eq!(
            redirect_host("https://Portal.Contoso.Example:8443/cb").as_deref(),
            Some("portal.contoso.example")
        );
        assert_eq!(
            redirect_host("msauth.com.contoso.app://auth").as_deref(),
            Some("auth")
        );
        assert_eq!(redirect_host("not a uri"), None);
        assert!(host_matches("*.contoso.example", "a.b.contoso.example"));
        assert!(!host_matches("*.contoso.example", "contoso.example"));
        assert!(!host_matches("*.contoso.example", "evilcontoso.example"));
    }
}
