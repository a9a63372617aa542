//! The admission step: the target FhirResourceApp's access policy applied to the client's request
//! ([`crate::desired::policy`]) before anything is registered. What follows in the pipeline sees
//! only the allowed part of the spec, so nothing the policy refuses is requested, assigned or
//! consented in Entra; a grant the policy no longer allows is removed by the same convergence that
//! removes a role the spec dropped.

use kube::ResourceExt;

use crate::api::{AccessEntry, AccessStatus, FhirClientApp, FhirResourceApp};
use crate::controller::Error;
use crate::controller::context::resource_app_is_ready;
use crate::desired::client::{self as b, ResolvedTarget};
use crate::desired::policy::{self, Decision, Request};
use crate::desired::smart;

/// What the pipeline continues with, or why it stops here.
pub enum Admission {
    /// Continue with `client` (its spec narrowed to what the policy allows). `refused` is the rest;
    /// `revoked` is set when the namespace is no longer admitted at all: the client was registered
    /// before, so its registration is converged to nothing and the message is the error to end with.
    Go {
        client: Box<FhirClientApp>,
        refused: Vec<AccessEntry>,
        revoked: Option<String>,
    },
    /// Stop before any Graph call: the namespace is not admitted (or the resource app does not
    /// exist, which a client outside the policy must not learn).
    Stop(Error, Vec<AccessEntry>),
}

/// Applies the policy of `target_app` to `obj`. `registered` says whether the client holds a
/// registration that a revoked admission must strip.
pub fn admit(
    obj: &FhirClientApp,
    target_app: Option<&FhirResourceApp>,
    registered: bool,
) -> Admission {
    let own_ns = obj.namespace().unwrap_or_default();
    // The FhirResourceApp the tokens are for (also a managed service's audience app): its policy.
    let Some((ra_ns, ra_name)) = super::target::resource_app_of(obj) else {
        return go(obj.clone(), vec![], None);
    };
    let same = ra_ns == own_ns;
    let request = request(obj);
    let decision = match target_app {
        // Same namespace: the target step says it is missing, as before policies existed.
        None if same => return go(obj.clone(), vec![], None),
        None => Decision::NotAdmitted,
        Some(ra) => policy::evaluate(ra.spec.access_policy.as_ref(), &own_ns, &ra_ns, &request),
    };
    match decision {
        Decision::Admitted { allowed, refused } => go(narrowed(obj, &allowed), refused, None),
        Decision::NotAdmitted => {
            let message = format!(
                "FhirResourceApp {ra_ns}/{ra_name} does not admit namespace {own_ns}, or does not exist: its owner can add {own_ns} to a rule of its spec.accessPolicy (docs/access-policy.md)"
            );
            let reason = format!("namespace {own_ns} is not admitted");
            let refused = entries(&request, &reason);
            match target_app {
                Some(ra) if registered && resource_app_is_ready(ra) => {
                    go(narrowed(obj, &Request::default()), refused, Some(message))
                }
                _ => Admission::Stop(Error::NotPermitted(message), refused),
            }
        }
    }
}

fn go(client: FhirClientApp, refused: Vec<AccessEntry>, revoked: Option<String>) -> Admission {
    Admission::Go {
        client: Box::new(client),
        refused,
        revoked,
    }
}

/// The client's request as the policy reads it: role and scope values as published.
fn request(obj: &FhirClientApp) -> Request {
    Request {
        roles: b::requested_roles(&obj.spec),
        scopes: b::requested_scopes(&obj.spec),
        redirect_uris: obj.spec.redirect_uris.clone().unwrap_or_default(),
    }
}

/// `obj` with only the allowed roles, scopes and redirect URIs (an explicit empty list where the
/// default would ask for something refused).
fn narrowed(obj: &FhirClientApp, allowed: &Request) -> FhirClientApp {
    let mut c = obj.clone();
    let spec = &mut c.spec;
    spec.roles = Some(allowed.roles.clone()).filter(|_| spec.roles.is_some());
    spec.scopes = Some(match &spec.scopes {
        Some(list) => list
            .iter()
            .filter(|s| smart::to_entra(s).is_none_or(|v| allowed.scopes.contains(&v)))
            .cloned()
            .collect(),
        None => allowed.scopes.clone(),
    });
    spec.redirect_uris =
        Some(allowed.redirect_uris.clone()).filter(|_| spec.redirect_uris.is_some());
    c
}

fn entries(request: &Request, reason: &str) -> Vec<AccessEntry> {
    let kinds = [
        (policy::ROLE, &request.roles),
        (policy::SCOPE, &request.scopes),
        (policy::REDIRECT, &request.redirect_uris),
    ];
    kinds
        .into_iter()
        .flat_map(|(kind, values)| {
            values.iter().map(move |v| AccessEntry {
                kind: kind.into(),
                value: v.clone(),
                reason: Some(reason.into()),
            })
        })
        .collect()
}

/// The status's account: what the (narrowed) client has on `target`, and what was refused — by the
/// policy, or because the target does not publish it.
pub fn status(
    client: &FhirClientApp,
    target: &ResolvedTarget,
    refused: &[AccessEntry],
) -> AccessStatus {
    let g = b::granted(&client.spec, target);
    let entry = |kind: &str, value: &str| AccessEntry {
        kind: kind.into(),
        value: value.into(),
        reason: None,
    };
    let mut granted: Vec<AccessEntry> = g
        .roles
        .iter()
        .map(|e| entry(policy::ROLE, &e.value))
        .collect();
    granted.extend(g.scopes.iter().map(|e| entry(policy::SCOPE, &e.value)));
    granted.extend(
        client
            .spec
            .redirect_uris
            .iter()
            .flatten()
            .map(|u| entry(policy::REDIRECT, u)),
    );
    let mut refused = refused.to_vec();
    refused.extend(g.unknown.iter().map(|u| {
        AccessEntry {
            kind: if u.kind == "scope" {
                policy::SCOPE
            } else {
                policy::ROLE
            }
            .into(),
            value: u.value.clone(),
            reason: Some("not published by the target".into()),
        }
    }));
    stamp(granted, refused)
}

/// The status for a client stopped at admission.
pub fn stopped(refused: Vec<AccessEntry>) -> AccessStatus {
    stamp(vec![], refused)
}

fn stamp(granted: Vec<AccessEntry>, refused: Vec<AccessEntry>) -> AccessStatus {
    AccessStatus {
        granted_count: granted.len() as i32,
        refused_count: refused.len() as i32,
        granted,
        refused,
    }
}

/// What the previous status granted that the policy now refuses: the Event's note, if any.
pub fn revoked_note(before: Option<&AccessStatus>, now: &AccessStatus) -> Option<String> {
    let gone: Vec<String> = before
        .into_iter()
        .flat_map(|b| &b.granted)
        .filter(|e| {
            now.refused
                .iter()
                .any(|r| r.kind == e.kind && r.value == e.value)
        })
        .map(|e| format!("{} {}", e.kind, e.value))
        .collect();
    (!gone.is_empty()).then(|| {
        format!(
            "the target's access policy no longer allows {}: removed from the registration, its assignments and grants (the credential is kept)",
            gone.join(", ")
        )
    })
}

/// The error a partly refused request ends with, naming what is missing.
pub fn refusal(ra: &str, refused: &[AccessEntry]) -> Error {
    let list: Vec<String> = refused
        .iter()
        .map(|e| {
            format!(
                "{} {} ({})",
                e.kind,
                e.value,
                e.reason.as_deref().unwrap_or_default()
            )
        })
        .collect();
    Error::NotPermitted(format!(
        "the access policy of FhirResourceApp {ra} refuses {}; the rest is registered and granted (status.access lists both)",
        list.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(spec: serde_json::Value) -> FhirClientApp {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp",
            "metadata": {"name": "web", "namespace": "portal"}, "spec": spec}))
        .unwrap()
    }

    #[test]
    fn a_refused_default_scope_becomes_an_explicit_empty_request() {
        let c = client(serde_json::json!({"type": "Confidential",
            "target": {"resourceAppRef": {"name": "fhir", "namespace": "fhir"}},
            "redirectUris": ["https://evil.example/cb"]}));
        let n = narrowed(&c, &Request::default());
        assert_eq!(
            n.spec.scopes,
            Some(vec![]),
            "not the default user_impersonation"
        );
        assert_eq!(n.spec.redirect_uris, Some(vec![]));
        assert_eq!(n.spec.roles, None, "an absent list stays absent");
        assert!(b::requested_scopes(&n.spec).is_empty());
    }

    #[test]
    fn smart_notation_is_kept_as_written_when_its_entra_value_is_allowed() {
        let c = client(serde_json::json!({"type": "Public",
            "target": {"resourceAppRef": {"name": "fhir"}},
            "scopes": ["patient/*.read", "patient/*.write", "openid"]}));
        let allowed = Request {
            scopes: vec!["patient.all.read".into()],
            ..Default::default()
        };
        let n = narrowed(&c, &allowed);
        assert_eq!(
            n.spec.scopes,
            Some(vec!["patient/*.read".to_string(), "openid".to_string()])
        );
    }

    #[test]
    fn only_what_was_granted_and_is_now_refused_is_announced_as_revoked() {
        let e = |kind: &str, v: &str| AccessEntry {
            kind: kind.into(),
            value: v.into(),
            reason: None,
        };
        let before = stamp(
            vec![e(policy::ROLE, "globalReader"), e(policy::SCOPE, "s")],
            vec![],
        );
        let now = stamp(
            vec![e(policy::SCOPE, "s")],
            vec![
                e(policy::ROLE, "globalReader"),
                e(policy::ROLE, "globalAdmin"),
            ],
        );
        let note = revoked_note(Some(&before), &now).unwrap();
        assert!(
            note.contains("AppRole globalReader") && !note.contains("globalAdmin"),
            "{note}"
        );
        assert_eq!(revoked_note(Some(&now), &now), None);
        assert_eq!(revoked_note(None, &now), None);
    }
}
