//! `/policies/defaultAppManagementPolicy` and `/policies/appManagementPolicies`: the tenant's
//! default policy (get, update), custom policies (list, create, get, update, delete, appliesTo),
//! and their assignment to applications and service principals (`…/appManagementPolicies/$ref`).
//! The stored side is `state::app_policies`; enforcement is `policy_rules`. Sources:
//! docs/entra-facts/lifecycle-and-policies.md §3.1–3.2 (Learn `tenantappmanagementpolicy-get`,
//! `-update`, `appmanagementpolicy-list`, `-post`, `-get`, `-update`, `-delete`,
//! `-list-appliesto`, `-post-appliesto`, `-delete-appliesto`).
use super::errors::{GErr, R, denied, invalid_value, not_found};
use super::lookup::{find_app, find_sp};
use super::odata::{created, deep_merge, entity, list_response, no_content, with_context_type};
use super::pattern::Params;
use super::policy_refs::{assign_one, referenced_id, require, unassign_one, writable};
use super::policy_rules::parse_duration;
use super::req::Req;
use crate::state::random_guid;
use crate::state::store::Tenant;
use serde_json::{Map, Value, json};

const READ: &[&str] = &[
    "Policy.Read.All",
    "Policy.Read.ApplicationConfiguration",
    "Policy.ReadWrite.ApplicationConfiguration",
];
const WRITE: &[&str] = &["Policy.ReadWrite.ApplicationConfiguration"];
/// Assigning needs `Application.Read.All` (or a permission that includes it) as well as the policy
/// write permission (Learn `appmanagementpolicy-post-appliesto`).
const READ_APPS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// GET: 200, the policy, `…#policies/defaultAppManagementPolicy/$entity`.
pub fn default_get(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, READ)?;
    Ok(entity(
        r,
        "policies/defaultAppManagementPolicy/$entity",
        &t.app_policies.default,
    ))
}

/// PATCH: 204. The properties sent replace the stored ones; objects merge, collections are
/// replaced whole ("include any existing restrictions that are already set",
/// microsoft/entra-apps-identifier-uri-protection `enable-protection-using-graph.md`). A
/// restriction the tenant sends is no longer "set by Microsoft".
pub fn default_update(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, WRITE)?;
    let patch = writable(
        &r.body,
        &[
            "displayName",
            "description",
            "isEnabled",
            "applicationRestrictions",
            "servicePrincipalRestrictions",
        ],
        "TenantAppManagementPolicy",
    )?;
    let mut policy = t.app_policies.default.clone();
    deep_merge(&mut policy, &Value::Object(patch.clone()));
    for part in ["applicationRestrictions", "servicePrincipalRestrictions"] {
        check_restrictions(&policy[part], "TenantAppManagementPolicy")?;
    }
    let sent = &patch
        .get("applicationRestrictions")
        .cloned()
        .unwrap_or_default()["identifierUris"];
    for name in [
        "nonDefaultUriAddition",
        "uriAdditionWithoutUniqueTenantIdentifier",
    ] {
        if sent[name].is_object() {
            policy["applicationRestrictions"]["identifierUris"][name]["isStateSetByMicrosoft"] =
                json!(false);
        }
    }
    t.app_policies.default = policy;
    Ok(no_content())
}

/// `passwordCredentials` and `keyCredentials` of a restrictions object: known types, each "only
/// once per policy", a parsable `maxLifetime` where the type is a lifetime (Learn
/// `resources/passwordcredentialconfiguration`, `keycredentialconfiguration`). The refusal's text
/// is not documented: Graph's usual invalid-value text, [INF].
fn check_restrictions(restrictions: &Value, resource: &str) -> Result<(), GErr> {
    for (prop, types) in [
        (
            "passwordCredentials",
            &[
                "passwordAddition",
                "passwordLifetime",
                "symmetricKeyAddition",
                "symmetricKeyLifetime",
                "customPasswordAddition",
            ][..],
        ),
        (
            "keyCredentials",
            &["asymmetricKeyLifetime", "trustedCertificateAuthority"][..],
        ),
    ] {
        let list = match &restrictions[prop] {
            Value::Null => continue,
            Value::Array(l) => l,
            _ => return Err(invalid_value(prop, resource)),
        };
        let mut seen = vec![];
        for x in list {
            let ty = x["restrictionType"].as_str().unwrap_or("");
            let lifetime_ok = !ty.ends_with("Lifetime")
                || x["maxLifetime"].as_str().and_then(parse_duration).is_some();
            if !types.contains(&ty) || seen.contains(&ty) || !lifetime_ok {
                return Err(invalid_value(prop, resource));
            }
            seen.push(ty);
        }
    }
    Ok(())
}

/// A custom policy as Graph shows it: the properties in the resource's order.
fn custom_policy(id: &str, body: &Map<String, Value>) -> Value {
    json!({
        "id": id,
        "deletedDateTime": null,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "displayName": body.get("displayName").cloned().unwrap_or(Value::Null),
        "isEnabled": body.get("isEnabled").cloned().unwrap_or(json!(true)),
        "restrictions": body.get("restrictions").cloned().unwrap_or(json!({
            "passwordCredentials": [], "keyCredentials": []})),
    })
}

const CUSTOM_WRITABLE: &[&str] = &["displayName", "description", "isEnabled", "restrictions"];

/// GET: 200, `…#policies/appManagementPolicies` (`$filter`/`$select`/`$top` as lists take them).
pub fn list(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, READ)?;
    let items = t.app_policies.custom.clone();
    list_response(
        r,
        "policies/appManagementPolicies",
        items,
        &["id", "displayName", "isEnabled"],
    )
}

/// POST: 201 with the policy ("201 Created" in the page's text; its example's `200 OK` is the
/// page's slip). `displayName` and `description` are "Required" on v1.0.
pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, WRITE)?;
    let (body, beta) = custom_writable(r)?;
    for required in ["displayName", "description"] {
        if !beta
            && body
                .get(required)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(invalid_value(required, "AppManagementPolicy"));
        }
    }
    let policy = custom_policy(&random_guid(), &body);
    check_restrictions(&policy["restrictions"], "AppManagementPolicy")?;
    t.app_policies.custom.push(policy.clone());
    Ok(created(
        r,
        "policies/appManagementPolicies/$entity",
        &policy,
    ))
}

/// The body's writable properties, and whether the request came through beta.
fn custom_writable(r: &Req) -> Result<(Map<String, Value>, bool), GErr> {
    let beta = r.g.ends_with("/beta");
    let body = writable(
        &custom_body(r, beta),
        CUSTOM_WRITABLE,
        "AppManagementPolicy",
    )?;
    Ok((body, beta))
}

/// The body of a custom policy. Microsoft's own exemption guide POSTs to beta a policy with a
/// top-level `applicationRestrictions` and no names (microsoft/entra-apps-identifier-uri-protection
/// `grant-app-exemption.md`); v1.0 names the field `restrictions.applicationRestrictions`. [INF] beta
/// takes that form as the same restriction (facts §3.4) and does not insist on the names.
fn custom_body(r: &Req, beta: bool) -> Value {
    let mut body = r.body.clone();
    if beta
        && let Some(o) = body.as_object_mut()
        && let Some(ar) = o.remove("applicationRestrictions")
    {
        let restrictions = o.entry("restrictions").or_insert_with(|| json!({}));
        if restrictions.is_object() {
            restrictions["applicationRestrictions"] = ar;
        }
    }
    body
}

fn custom_idx(t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let id = p.id("policy").value();
    t.app_policies.custom_idx(id).ok_or_else(|| not_found(id))
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, READ)?;
    let i = custom_idx(t, p)?;
    Ok(entity(
        r,
        "policies/appManagementPolicies/$entity",
        &t.app_policies.custom[i],
    ))
}

/// PATCH: 204; `restrictions` replaced whole when sent.
pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, WRITE)?;
    let i = custom_idx(t, p)?;
    let (body, _) = custom_writable(r)?;
    let mut policy = t.app_policies.custom[i].clone();
    for (k, v) in body {
        policy[k] = v;
    }
    check_restrictions(&policy["restrictions"], "AppManagementPolicy")?;
    t.app_policies.custom[i] = policy;
    Ok(no_content())
}

/// DELETE: 204. What becomes of its assignments is not documented; [INF] they go with it, and
/// the objects fall back to the tenant default.
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, WRITE)?;
    let i = custom_idx(t, p)?;
    let policy = t.app_policies.custom.remove(i);
    let id = policy["id"].as_str().unwrap_or("").to_string();
    t.app_policies.assigned.retain(|_, pid| *pid != id);
    Ok(no_content())
}

/// GET `…/{id}/appliesTo`: the applications and service principals it is assigned to, each with
/// its `@odata.type`.
pub fn applies_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, READ)?;
    let i = custom_idx(t, p)?;
    let id = t.app_policies.custom[i]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let items: Vec<Value> = t
        .app_policies
        .assigned
        .iter()
        .filter(|(_, pid)| **pid == id)
        .filter_map(|(obj, _)| object_view(t, obj))
        .collect();
    list_response(r, "directoryObjects", items, &["id"])
}

fn object_view(t: &Tenant, id: &str) -> Option<Value> {
    if let Some(i) = t.app_idx(id) {
        let v = crate::state::store::app_public_view(&t.apps[i]);
        return Some(with_context_type("#microsoft.graph.application", &v));
    }
    t.sp_idx(id)
        .map(|j| with_context_type("#microsoft.graph.servicePrincipal", &t.sps[j].body))
}

/// The object id of the route's application or service principal.
fn target(r: &Req, t: &Tenant, p: &Params) -> Result<String, GErr> {
    if let Some(a) = p.get("app") {
        let i = find_app(r, t, a, false)?;
        return Ok(t.apps[i].body["id"].as_str().unwrap_or("").to_string());
    }
    let j = find_sp(r, t, p.id("sp"))?;
    Ok(t.sps[j].body["id"].as_str().unwrap_or("").to_string())
}

/// GET `…/appManagementPolicies`: the one assigned policy, or none.
pub fn assigned_list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let obj = target(r, t, p)?;
    if !r.can_read() || !r.has_any(READ) {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .app_policies
        .assigned
        .get(&obj)
        .and_then(|pid| t.app_policies.custom_idx(pid))
        .map(|i| t.app_policies.custom[i].clone())
        .into_iter()
        .collect();
    list_response(r, "appManagementPolicies", items, &["id"])
}

/// POST `…/appManagementPolicies/$ref` `{"@odata.id": "…/policies/appManagementPolicies/{id}"}`:
/// 204. "Only one policy object can be assigned to an application or service principal": a second
/// one is refused (`policy_refs::assign_one`).
pub fn assign(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let obj = target(r, t, p)?;
    require(r, WRITE)?;
    require(r, READ_APPS)?;
    let pid = referenced_id(r, "appManagementPolicies", "AppManagementPolicy")?;
    let i = t
        .app_policies
        .custom_idx(pid)
        .ok_or_else(|| not_found(pid))?;
    let pid = t.app_policies.custom[i]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assign_one(&mut t.app_policies.assigned, obj, pid)
}

/// DELETE `…/appManagementPolicies/{policyId}/$ref`: 204 (the Graph PowerShell
/// `Remove-MgApplicationAppManagementPolicyByRef` the exemption scripts use); 404 when that policy
/// is not the one assigned.
pub fn unassign(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let obj = target(r, t, p)?;
    require(r, WRITE)?;
    require(r, READ_APPS)?;
    unassign_one(&mut t.app_policies.assigned, &obj, p.wild())
}
