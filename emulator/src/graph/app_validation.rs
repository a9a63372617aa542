//! The rules an application must keep after a create, update or restore, with Graph's errors.
use super::errors::{GErr, bad, err, invalid_value};
use crate::state::recycle;
use crate::state::store::Tenant;
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Checks `app` (as it would be stored) against `old` (None on create) and the tenant's other
/// applications (`self_id` is its own object id).
pub fn validate_app(
    t: &Tenant,
    app: &Value,
    old: Option<&Value>,
    self_id: &str,
) -> Result<(), GErr> {
    check_texts(app)?;
    check_identifier_uris(t, app, old, self_id)?;
    check_unique_name(t, app, old, self_id)?;
    validate_redirects(&app["web"]["redirectUris"], "redirectUris", false)?;
    validate_redirects(&app["spa"]["redirectUris"], "redirectUris", false)?;
    validate_redirects(&app["publicClient"]["redirectUris"], "redirectUris", true)?;
    check_entitlements(app, old)?;
    check_required_resource_access(app)?;
    check_token_version(app)
}

fn too_long(v: &Value, max: usize) -> bool {
    v.as_str().is_some_and(|d| d.chars().count() > max)
}

/// displayName, description, notes, signInAudience, tags.
fn check_texts(app: &Value) -> Result<(), GErr> {
    let dn = app["displayName"].as_str().unwrap_or("");
    if dn.trim().is_empty() || dn.chars().count() > 256 {
        return Err(invalid_value("displayName", "Application"));
    }
    if too_long(&app["description"], 1024) {
        return Err(invalid_value("description", "Application"));
    }
    if too_long(&app["notes"], 1024) {
        return Err(invalid_value("notes", "Application"));
    }
    let aud = app["signInAudience"].as_str().unwrap_or("");
    if !matches!(
        aud,
        "AzureADMyOrg"
            | "AzureADMultipleOrgs"
            | "AzureADandPersonalMicrosoftAccount"
            | "PersonalMicrosoftAccount"
    ) {
        return Err(invalid_value("signInAudience", "Application"));
    }
    if let Some(tags) = app["tags"].as_array()
        && tags
            .iter()
            .any(|x| x.as_str().is_none_or(|x| x.chars().count() > 256))
    {
        return Err(invalid_value("tags", "Application"));
    }
    Ok(())
}

/// At most 50, distinct, `scheme://…`; a new non-`api` one on a verified domain; unique in the
/// tenant.
fn check_identifier_uris(
    t: &Tenant,
    app: &Value,
    old: Option<&Value>,
    self_id: &str,
) -> Result<(), GErr> {
    let uris = app["identifierUris"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if uris.len() > 50 {
        return Err(invalid_value("identifierUris", "Application"));
    }
    let old_uris: Vec<&str> = old
        .map(|o| o.identifier_uris().collect())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for u in &uris {
        let Some(u) = u.as_str() else {
            return Err(invalid_value("identifierUris", "Application"));
        };
        if !seen.insert(u.to_ascii_lowercase().trim_end_matches('/').to_string()) {
            return Err(invalid_value("identifierUris", "Application"));
        }
        let lower = u.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err(invalid_value("identifierUris", "Application"));
        };
        if u.len() > 256 || rest.is_empty() || u.contains('*') {
            return Err(invalid_value("identifierUris", "Application"));
        }
        if scheme != "api" && !old_uris.contains(&u) {
            check_verified_domain(t, u, rest)?;
        }
        check_uri_free(t, u, self_id)?;
    }
    Ok(())
}

fn check_verified_domain(t: &Tenant, u: &str, rest: &str) -> Result<(), GErr> {
    let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
    let verified = t
        .domains
        .iter()
        .any(|d| host == d || host.ends_with(&format!(".{d}")));
    if verified {
        return Ok(());
    }
    Err(err(
        StatusCode::BAD_REQUEST,
        "HostNameNotOnVerifiedDomain",
        format!(
            "Values of identifierUris property must use a verified domain of the organization or its subdomain: '{u}'"
        ),
    ))
}

/// Unique among the tenant's applications, deleted ones included. That a soft-deleted application
/// keeps its identifier URIs is not documented by Microsoft: azure-cli's `test_graph.py`
/// (`test_app_scenario`) says "Graph cannot create app with same identifierUris even after
/// deleting the previous one", and a restore fails on an identifier URI another app took (the
/// support-wiki copy); so the emulator answers as for a live holder (facts §1.5).
fn check_uri_free(t: &Tenant, u: &str, self_id: &str) -> Result<(), GErr> {
    let clash = t.apps.iter().chain(&t.deleted_apps).any(|a| {
        a.id() != self_id
            && a.identifier_uris().any(|x| {
                x.trim_end_matches('/')
                    .eq_ignore_ascii_case(u.trim_end_matches('/'))
            })
    });
    if !clash {
        return Ok(());
    }
    let mut e =
        bad("Another object with the same value for property identifierUris already exists.");
    e.details = Some(
        json!([{"code": "ObjectConflict", "message": format!("Another object with the same value for property identifierUris already exists: '{u}'."), "target": "identifierUris"}]),
    );
    Err(e)
}

/// uniqueName: set once, unique in the tenant.
fn check_unique_name(
    t: &Tenant,
    app: &Value,
    old: Option<&Value>,
    self_id: &str,
) -> Result<(), GErr> {
    let Some(un) = app["uniqueName"].as_str() else {
        return Ok(());
    };
    if let Some(o) = old.and_then(|o| o["uniqueName"].as_str())
        && o != un
    {
        return Err(bad(
            "Property 'uniqueName' is read-only and cannot be changed once set.",
        ));
    }
    if recycle::holds_unique_name(t, un, self_id) {
        return Err(unique_name_held_by_deleted(un));
    }
    if t.apps.iter().any(|a| {
        a.body.id() != self_id
            && a.body["uniqueName"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(un))
    }) {
        return Err(err(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            format!(
                "Another object with the same value for property uniqueName already exists: '{un}'."
            ),
        ));
    }
    Ok(())
}

/// A soft-deleted application keeps its `uniqueName` for its 30 days: Learn "Known issues:
/// Microsoft Graph Bicep templates" ("Another object with the same value for property uniqueName
/// already exists … a conflict on the unique name value between the newly created item and the one
/// in the deleted items container"); status and code from byte5ai/omadia#916 ("Entra reports the
/// collision as 400 `Request_BadRequest`", not 409), the message from msgraph-bicep-types#137. The
/// same answer for a create, and for an upsert by that name ([INF]: the Bicep extension deploys by
/// upsert and its redeploys fail so). The `details` entry is [INF], in the form Graph gives for
/// other unique properties (facts §1.5).
fn unique_name_held_by_deleted(un: &str) -> GErr {
    let mut e = bad("Another object with the same value for property uniqueName already exists.");
    e.details = Some(
        json!([{"code": "ObjectConflict", "message": format!("Another object with the same value for property uniqueName already exists: '{un}'."), "target": "uniqueName"}]),
    );
    e
}

/// Redirect URIs: at most 256 of at most 256 characters, https (http only for localhost); a
/// public client may use custom schemes.
fn validate_redirects(list: &Value, prop: &str, public: bool) -> Result<(), GErr> {
    let Some(a) = list.as_array() else {
        return Ok(());
    };
    if a.len() > 256 {
        return Err(invalid_value(prop, "Application"));
    }
    for u in a {
        let Some(u) = u.as_str() else {
            return Err(invalid_value(prop, "Application"));
        };
        if !redirect_ok(u, public) {
            return Err(bad(format!(
                "Invalid value specified for property '{prop}' of resource 'Application'. Redirect URIs must use https, or http only for localhost: '{u}'."
            )));
        }
    }
    Ok(())
}

fn redirect_ok(u: &str, public: bool) -> bool {
    let lower = u.to_ascii_lowercase();
    let ok_len = !u.is_empty() && u.len() <= 256;
    let ok = if let Some(rest) = lower.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host
            .rsplit_once(':')
            .map(|(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            })
            .unwrap_or(host);
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    } else if lower.starts_with("https://") {
        lower.len() > 8 && !lower.contains('*')
    } else {
        public && lower.contains("://")
    };
    ok && ok_len
}

/// App roles and delegated scopes: well-formed, ids and values unique within each collection, a
/// role and a scope sharing an id or a value only as one permission (see
/// [`check_role_scope_pairs`]); an enabled one is changed or removed only after it is disabled.
fn check_entitlements(app: &Value, old: Option<&Value>) -> Result<(), GErr> {
    let roles = app["appRoles"].as_array().cloned().unwrap_or_default();
    let scopes = app["api"]["oauth2PermissionScopes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check_roles(&roles)?;
    check_scopes(&scopes)?;
    check_role_scope_pairs(&roles, &scopes)?;
    if let Some(o) = old {
        check_enabled_kept(
            o["appRoles"].as_array().map(Vec::as_slice).unwrap_or(&[]),
            &roles,
        )?;
        check_enabled_kept(
            o["api"]["oauth2PermissionScopes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            &scopes,
        )?;
    }
    Ok(())
}

/// A GUID id, not used by another entry of the same collection: Graph documents `id` as "Unique
/// role identifier inside the appRoles collection" (microsoftgraph/microsoft-graph-docs#5068,
/// `approle.md`), and the same for `permissionScope`.
fn check_id(e: &Value, ids: &mut HashSet<String>, prop: &str, what: &str) -> Result<(), GErr> {
    let id = e["id"].as_str().unwrap_or("");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid_value(prop, "Application"));
    }
    if !ids.insert(id.to_ascii_lowercase()) {
        return Err(bad(format!(
            "Request contains a property with duplicate values: {what} '{id}'."
        )));
    }
    Ok(())
}

fn check_roles(roles: &[Value]) -> Result<(), GErr> {
    let (mut ids, mut values) = (HashSet::new(), HashSet::new());
    for r in roles {
        check_id(r, &mut ids, "appRoles", "app role id")?;
        let v = r["value"].as_str().unwrap_or("");
        if v.contains(' ') || v.chars().count() > 249 {
            return Err(invalid_value("appRoles", "Application"));
        }
        if !v.is_empty() && !values.insert(v.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: app role value '{v}' is used more than once."
            )));
        }
        if r["allowedMemberTypes"].as_array().is_none_or(|a| {
            a.is_empty()
                || a.iter()
                    .any(|m| !matches!(m.as_str(), Some("User" | "Application")))
        }) {
            return Err(invalid_value("appRoles", "Application"));
        }
        if r["displayName"].as_str().is_none_or(str::is_empty) {
            return Err(invalid_value("appRoles", "Application"));
        }
    }
    Ok(())
}

fn check_scopes(scopes: &[Value]) -> Result<(), GErr> {
    let (mut ids, mut values) = (HashSet::new(), HashSet::new());
    for sc in scopes {
        check_id(sc, &mut ids, "oauth2PermissionScopes", "permission id")?;
        let v = sc["value"].as_str().unwrap_or("");
        if v.is_empty() || v.contains(' ') || v.chars().count() > 120 {
            return Err(invalid_value("oauth2PermissionScopes", "Application"));
        }
        if !values.insert(v.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: scope value '{v}' is used more than once."
            )));
        }
        if !matches!(sc["type"].as_str(), Some("User" | "Admin")) {
            return Err(invalid_value("oauth2PermissionScopes", "Application"));
        }
    }
    Ok(())
}

/// An app role and a delegated scope may share an id only when they describe one permission, and
/// may share a value only with one id. Sources: the errors Entra gives (MicrosoftDocs/azure-docs#81899,
/// texts from the portal's manifest editor, which calls Graph: "It contains duplicate value" for a
/// shared value under two ids, and the "values must match" text below for a shared id whose entries
/// differ; the same value and description/display name under one id is accepted);
/// hashicorp/terraform-provider-azuread#963 and PR #971 (`applicationValidateRolesScopes` accepts a
/// shared id when `description`, `displayName`, `isEnabled` and `value` equal the scope's
/// `adminConsentDescription`, `adminConsentDisplayName`, `isEnabled` and `value`); nais/azurerator
/// creates such pairs ("Permissions … with the same value/name must have the same ID",
/// `pkg/azure/permissions/permissions.go`). `origin` is in Entra's list too but is read-only: it is
/// not sent and the emulator gives both entries the same one, so it is not compared. Graph's status
/// and code for these refusals are not recorded anywhere public; 400 `Request_BadRequest`, as for
/// Graph's other property conflicts, is our choice. Values are compared without case, as within a
/// collection; the pair's fields exactly, as "must match" says.
fn check_role_scope_pairs(roles: &[Value], scopes: &[Value]) -> Result<(), GErr> {
    let key = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
    for role in roles {
        for scope in scopes {
            let same_id = key(&role["id"]) == key(&scope["id"]);
            let same_value =
                !key(&role["value"]).is_empty() && key(&role["value"]) == key(&scope["value"]);
            if same_id && !one_permission(role, scope) {
                return Err(bad(format!(
                    "The following values must match for the 'oauth2Permissions' and 'appRoles' properties with identifier '{}': (description, adminConsentDescription),(displayName, adminConsentDisplayName),(isEnabled, isEnabled),(origin, origin),(value, value). Ensure that you are intending to have entries with the same identifier, and if so, are updating them together.",
                    role["id"].as_str().unwrap_or("")
                )));
            }
            if same_value && !same_id {
                return Err(bad("It contains duplicate value"));
            }
        }
    }
    Ok(())
}

/// The role and the scope describe the same permission (the fields Entra's error lists).
fn one_permission(role: &Value, scope: &Value) -> bool {
    let enabled = |v: &Value| v["isEnabled"] != Value::Bool(false);
    role["description"] == scope["adminConsentDescription"]
        && role["displayName"] == scope["adminConsentDisplayName"]
        && enabled(role) == enabled(scope)
        && role["value"] == scope["value"]
}

fn enabled_entitlement_error() -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "CannotDeleteOrUpdateEnabledEntitlement",
        "Permission (scope or role) cannot be deleted or updated unless disabled first.",
    )
}

/// Every enabled entitlement of `old` is in `new`, unchanged but perhaps for being disabled.
fn check_enabled_kept(old: &[Value], new: &[Value]) -> Result<(), GErr> {
    for o in old {
        if o["isEnabled"] != json!(true) {
            continue;
        }
        match new.iter().find(|n| n["id"] == o["id"]) {
            None => return Err(enabled_entitlement_error()),
            Some(n) => {
                let mut n2 = n.clone();
                n2["isEnabled"] = json!(true);
                if &n2 != o {
                    return Err(enabled_entitlement_error());
                }
            }
        }
    }
    Ok(())
}

/// At most 50 resources and 400 permissions, each resource a GUID.
fn check_required_resource_access(app: &Value) -> Result<(), GErr> {
    let Some(rra) = app["requiredResourceAccess"].as_array() else {
        return Ok(());
    };
    let perms: usize = rra
        .iter()
        .map(|x| x["resourceAccess"].as_array().map(Vec::len).unwrap_or(0))
        .sum();
    if rra.len() > 50 || perms > 400 {
        return Err(invalid_value("requiredResourceAccess", "Application"));
    }
    for x in rra {
        if uuid::Uuid::parse_str(x["resourceAppId"].as_str().unwrap_or("")).is_err() {
            return Err(invalid_value("requiredResourceAccess", "Application"));
        }
    }
    Ok(())
}

/// api.requestedAccessTokenVersion is 1 or 2, and 2 when personal accounts may sign in.
fn check_token_version(app: &Value) -> Result<(), GErr> {
    let version = app["api"]["requestedAccessTokenVersion"].as_i64();
    if version.is_some_and(|v| v != 1 && v != 2) {
        return Err(invalid_value("api", "Application"));
    }
    let aud = app["signInAudience"].as_str().unwrap_or("");
    if aud.contains("Personal") && version == Some(1) {
        return Err(bad(
            "Property api.requestedAccessTokenVersion is invalid. It must be 2 when signInAudience includes personal Microsoft accounts.",
        ));
    }
    Ok(())
}
