//! Delegated permissions: which resource and scopes a sign-in asks for, which of them the user or
//! an admin already granted (oAuth2PermissionGrant, consentType AllPrincipals or Principal), and
//! recording a new grant when the user (or an admin, for everyone) accepts the consent page.
//! Facts: interactive-flows.md section 4 (D-CON, D-SC, G-GRANT).
use crate::state::sign_in::{Requested, ResourceScopes};
use crate::state::store::{self, Grant, Tenant, s};
use crate::state::views::GraphObject;
use serde_json::Value;

/// Scopes handled by the identity platform itself; never consented one by one.
pub const OIDC: &[&str] = &["openid", "profile", "email", "offline_access"];
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Delegated Graph scopes the emulator knows (the Graph service principal lists none): value, type.
const GRAPH_SCOPES: &[(&str, &str)] = &[
    ("User.Read", "User"),
    ("User.ReadBasic.All", "User"),
    ("Directory.Read.All", "Admin"),
];

/// An Entra error for a bad scope: (AADSTS code, `error`, text).
pub type ScopeErr = (u32, &'static str, String);

fn resource_of(scope: &str) -> (String, String) {
    match scope.rsplit_once('/') {
        Some((r, v)) if scope.contains("://") || uuid::Uuid::parse_str(r).is_ok() => {
            (r.to_string(), v.to_string())
        }
        _ => (GRAPH_RESOURCE.to_string(), scope.to_string()),
    }
}

/// The resource's delegated scopes: (value, type "User"|"Admin").
pub fn scopes_of(sp: &Value) -> Vec<(String, String)> {
    if sp.app_id() == store::GRAPH_APP_ID {
        return GRAPH_SCOPES
            .iter()
            .map(|(v, t)| (v.to_string(), t.to_string()))
            .collect();
    }
    sp.scopes()
        .filter(|x| x.enabled)
        .map(|x| (x.value.to_string(), x.kind.to_string()))
        .collect()
}

/// Scope values the client's registration lists for the resource (`requiredResourceAccess`): what
/// `.default` and v1's `resource=` ask for (D-SC).
fn static_scopes(client_app: &Value, sp: &Value) -> Vec<String> {
    let ids: Vec<String> = client_app["requiredResourceAccess"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| s(r, "resourceAppId") == s(sp, "appId"))
        .flat_map(|r| r["resourceAccess"].as_array().cloned().unwrap_or_default())
        .filter(|a| s(a, "type") == "Scope")
        .map(|a| s(&a, "id"))
        .collect();
    sp["oauth2PermissionScopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| ids.contains(&s(x, "id")))
        .map(|x| s(x, "value"))
        .collect()
}

fn not_found(resource: &str, tid: &str) -> ScopeErr {
    (
        500011,
        "invalid_resource",
        format!(
            "The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        ),
    )
}

fn one_resource(
    t: &Tenant,
    client_app: &Value,
    resource: &str,
    values: &[String],
) -> Result<ResourceScopes, ScopeErr> {
    let i = t
        .sp_idx_by_name(resource)
        .ok_or_else(|| not_found(resource, &t.id))?;
    let sp = &t.sps[i].body;
    let known = scopes_of(sp);
    let dflt = values.iter().any(|v| v == ".default");
    if dflt && values.len() > 1 {
        return Err((
            70011,
            "invalid_scope",
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {} is not valid. static scope limit exceeded.",
                values
                    .iter()
                    .map(|v| format!("{resource}/{v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    let resolved = if dflt {
        static_scopes(client_app, sp)
    } else {
        values.to_vec()
    };
    for v in &resolved {
        if !known.iter().any(|(k, _)| k.eq_ignore_ascii_case(v)) {
            // Seen both on the error page and as a redirect with error=invalid_client (1.4).
            return Err((
                650053,
                "invalid_client",
                format!(
                    "The application '{}' asked for scope '{v}' that doesn't exist on the resource '{}'. Contact the app vendor.",
                    s(client_app, "displayName"),
                    s(sp, "appId")
                ),
            ));
        }
    }
    // `.default` is answered with the scopes it stood for, then itself (recorded: `…//user_impersonation …//.default`).
    let mut requested: Vec<String> = if dflt {
        resolved.clone()
    } else {
        values.to_vec()
    };
    if dflt {
        requested.push(".default".into());
    }
    Ok(ResourceScopes {
        sp_id: s(sp, "id"),
        display_name: s(sp, "displayName"),
        values: resolved,
        requested: requested
            .iter()
            .map(|v| format!("{resource}/{v}"))
            .collect(),
    })
}

/// Resolves a v2 `scope` parameter (several resources allowed at /authorize, D-AC).
pub fn resolve_v2(t: &Tenant, client_app: &Value, scope: &str) -> Result<Requested, ScopeErr> {
    let mut oidc = vec![];
    let mut by_resource: Vec<(String, Vec<String>)> = vec![];
    for sc in scope.split_whitespace() {
        if OIDC.contains(&sc) {
            oidc.push(sc.to_string());
            continue;
        }
        let (r, v) = resource_of(sc);
        match by_resource
            .iter_mut()
            .find(|(x, _)| x.eq_ignore_ascii_case(&r))
        {
            Some((_, vs)) => vs.push(v),
            None => by_resource.push((r, vec![v])),
        }
    }
    if by_resource.is_empty() {
        // Sign-in only: Entra issues a Graph token with User.Read, consented with the sign-in (D-CON).
        by_resource.push((GRAPH_RESOURCE.into(), vec!["User.Read".into()]));
    }
    let resources = by_resource
        .iter()
        .map(|(r, vs)| one_resource(t, client_app, r, vs))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Requested { resources, oidc })
}

/// Resolves a v1 `resource` parameter: the scopes the client's registration lists (D-V1).
pub fn resolve_v1(
    t: &Tenant,
    client_app: &Value,
    resource: Option<&str>,
) -> Result<Requested, ScopeErr> {
    let r = resource.unwrap_or(GRAPH_RESOURCE);
    let i = t.sp_idx_by_name(r).ok_or_else(|| {
        (50001, "invalid_resource", format!("The application named {r} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", t.id))
    })?;
    let sp = &t.sps[i].body;
    let mut values = static_scopes(client_app, sp);
    if values.is_empty() && sp.app_id() == store::GRAPH_APP_ID {
        values.push("User.Read".into());
    }
    Ok(Requested {
        resources: vec![ResourceScopes {
            sp_id: s(sp, "id"),
            display_name: s(sp, "displayName"),
            requested: values
                .iter()
                .map(|v| format!("{}/{v}", r.trim_end_matches('/')))
                .collect(),
            values,
        }],
        oidc: vec!["openid".into(), "profile".into()],
    })
}

/// Scope values granted to the client on the resource for this user: admin consent for everyone
/// (AllPrincipals) plus the user's own (Principal), plus what the resource pre-authorizes (G-API).
pub fn granted(t: &Tenant, client_sp: &Value, resource_sp_id: &str, user_id: &str) -> Vec<String> {
    let csp = s(client_sp, "id");
    let mut out: Vec<String> = t
        .grants
        .iter()
        .filter(|g| g.client_id == csp && g.resource_id == resource_sp_id)
        .filter(|g| g.consent_type == "AllPrincipals" || g.principal_id.as_deref() == Some(user_id))
        .flat_map(|g| {
            g.scope
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(rsp) = t.sps.iter().find(|x| x.body.id() == resource_sp_id)
        && let Some(app) = t
            .app_idx_by_app_id(&s(&rsp.body, "appId"))
            .map(|i| &t.apps[i].body)
    {
        let pre = app["api"]["preAuthorizedApplications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for p in pre.iter().filter(|p| p.app_id() == s(client_sp, "appId")) {
            let ids: Vec<String> = p["delegatedPermissionIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            out.extend(
                rsp.body["oauth2PermissionScopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| ids.contains(&s(x, "id")))
                    .map(|x| s(x, "value")),
            );
        }
    }
    out
}

/// The requested (resource sp id, value, type) not yet granted.
pub fn missing(
    t: &Tenant,
    client_sp: &Value,
    req: &Requested,
    user_id: &str,
) -> Vec<(String, String, String)> {
    let mut out = vec![];
    for r in &req.resources {
        let have = granted(t, client_sp, &r.sp_id, user_id);
        let sp = t
            .sps
            .iter()
            .find(|x| x.body.id() == r.sp_id)
            .map(|x| x.body.clone())
            .unwrap_or_default();
        let types = scopes_of(&sp);
        for v in &r.values {
            if !have.iter().any(|h| h.eq_ignore_ascii_case(v)) {
                let ty = types
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(v))
                    .map(|x| x.1.clone())
                    .unwrap_or_default();
                out.push((r.sp_id.clone(), v.clone(), ty));
            }
        }
    }
    out
}

/// Adds `values` to the client's grant on the resource: for everyone (`user_id` None, an admin
/// consenting on behalf of the organisation) or for one user.
pub fn record(
    t: &mut Tenant,
    client_sp_id: &str,
    resource_sp_id: &str,
    user_id: Option<&str>,
    values: &[String],
) {
    let new = Grant::new(client_sp_id, resource_sp_id, user_id, values.join(" "));
    let existing = t.grants.iter_mut().find(|g| {
        g.client_id == client_sp_id
            && g.resource_id == resource_sp_id
            && g.consent_type == new.consent_type
            && g.principal_id.as_deref() == user_id
    });
    match existing {
        Some(g) => {
            let mut have: Vec<String> = g.scope.split_whitespace().map(str::to_string).collect();
            for v in values {
                if !have.contains(v) {
                    have.push(v.clone());
                }
            }
            g.scope = have.join(" ");
        }
        None => t.grants.push(new),
    }
}
