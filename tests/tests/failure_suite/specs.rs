//! The resources the failure suite applies: what users deploy, in every kind of client.

use fhir_app_operator_tests::operator::{client_app, resource_app};
use serde_json::{Value, json};

/// A FhirResourceApp for `https://{name}.contoso.example`.
pub fn resource(name: &str) -> Value {
    resource_app(
        name,
        // Assignment not required: the invariants prove every Secret with client credentials, web
        // apps' too, which hold no app role (with assignment required they get AADSTS501051).
        json!({"fhirUrl": format!("https://{name}.contoso.example"), "appRoleAssignmentRequired": false}),
    )
}

/// Client `i` of FhirResourceApp `target`, cycling through what users deploy: a Service client with
/// assigned app roles, a Confidential web app with admin consent, a Public SPA, and Service clients
/// whose certificate or client secret rotates every ~10 s (overlap 20 s), so kills and faults also
/// hit rotations.
pub fn client(i: usize, target: &str) -> Value {
    let name = format!("c{i}-{target}");
    let t = json!({"resourceAppRef": {"name": target}});
    let redirect = json!([format!("https://{name}.contoso.example/callback")]);
    let fast = json!({"validity": "1h", "renewBefore": "59m50s", "overlap": "20s"});
    let spec = match i % 5 {
        0 => {
            json!({"type": "Service", "target": t, "roles": ["globalReader"], "assignAppRoles": true})
        }
        1 => json!({"type": "Confidential", "target": t, "redirectUris": redirect,
                     "scopes": ["user_impersonation"], "grantAdminConsent": true}),
        2 => {
            json!({"type": "Public", "target": t, "publicPlatform": "Spa", "redirectUris": redirect,
                     "scopes": ["user_impersonation"]})
        }
        // Roles assigned too, so role assignments are in the mix of every scenario.
        3 => {
            json!({"type": "Service", "target": t, "roles": ["globalReader"], "assignAppRoles": true,
                     "credential": {"type": "Certificate", "rotation": fast}})
        }
        _ => {
            json!({"type": "Service", "target": t, "roles": ["globalWriter"], "assignAppRoles": true,
                     "credential": {"type": "ClientSecret", "rotation": fast}})
        }
    };
    client_app(&name, spec)
}

pub fn clients(range: std::ops::Range<usize>, target: &str) -> Vec<Value> {
    range.map(|i| client(i, target)).collect()
}

/// Clients like [`clients`], in namespace `team`, of FhirResourceApp `target` in namespace `ns`.
pub fn team_clients(
    range: std::ops::Range<usize>,
    target: &str,
    ns: &str,
    team: &str,
) -> Vec<Value> {
    range
        .map(|i| {
            let mut c = client(i, target);
            c["metadata"]["namespace"] = json!(team);
            c["spec"]["target"]["resourceAppRef"]["namespace"] = json!(ns);
            c
        })
        .collect()
}

/// [`resource`] with an access policy admitting `team` to every non-privileged role and scope and to
/// redirect URIs under contoso.example.
pub fn resource_for_team(name: &str, team: &str) -> Value {
    let mut r = resource(name);
    r["spec"]["accessPolicy"] = json!({"rules": [{"namespaces": [team], "appRoles": ["*"],
        "scopes": ["*"], "redirectHosts": ["*.contoso.example"]}]});
    r
}
