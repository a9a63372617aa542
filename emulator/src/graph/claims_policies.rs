//! `/policies/claimsMappingPolicies` (list, create, get, update, delete, appliesTo) and their
//! assignment to service principals (`/servicePrincipals/{id}/claimsMappingPolicies[/$ref]`).
//! The stored side and the tokens are `state::claims`. Sources: Learn
//! `claimsmappingpolicy-post-claimsmappingpolicies`, `-list`, `-get`, `-update`, `-delete`,
//! `-list-appliesto`, `serviceprincipal-post-claimsmappingpolicies`, `-list-`, `-delete-`
//! (docs/entra-facts/claims-and-delta.md §A2).
use super::errors::{GErr, R, bad, denied, err, invalid_value, not_found};
use super::lookup::find_sp;
use super::odata::{created, entity, list_response, no_content, with_context_type};
use super::pattern::Params;
use super::policy_refs::{assign_one, referenced_id, require, unassign_one, writable};
use super::req::Req;
use crate::state::claims;
use crate::state::random_guid;
use crate::state::store::{Tenant, s};
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Read: Policy.Read.All or Policy.ReadWrite.ApplicationConfiguration (Learn
/// `claimsmappingpolicy-list`); write: Policy.ReadWrite.ApplicationConfiguration, the only one
/// listed (`-post-`, `-update`, `-delete`).
const READ: &[&str] = &[
    "Policy.Read.All",
    "Policy.ReadWrite.ApplicationConfiguration",
];
const WRITE: &[&str] = &["Policy.ReadWrite.ApplicationConfiguration"];
const WRITABLE: &[&str] = &[
    "definition",
    "displayName",
    "description",
    "isOrganizationDefault",
];
const RESOURCE: &str = "ClaimsMappingPolicy";

/// A `definition` the token service cannot read: 400 `Request_BadRequest` "Property definition
/// has an invalid value." (the text users report, MicrosoftDocs/entra-docs#121).
fn check_definition(d: &Value) -> Result<(), GErr> {
    claims::parse(d)
        .map(|_| ())
        .ok_or_else(|| bad("Property definition has an invalid value."))
}

pub fn list(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, READ)?;
    let items = t.claims_policies.policies.clone();
    list_response(
        r,
        "policies/claimsMappingPolicies",
        items,
        &["id", "displayName"],
    )
}

/// POST: 201 with the policy; `definition` and `displayName` are "Required" (Learn
/// `resources/claimsmappingpolicy`; the missing one gets Graph's invalid-value 400 [INF]).
pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    require(r, WRITE)?;
    let body = writable(&r.body, WRITABLE, RESOURCE)?;
    if body
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(invalid_value("displayName", RESOURCE));
    }
    let definition = body.get("definition").cloned().unwrap_or(Value::Null);
    check_definition(&definition)?;
    let mut policy = json!({"id": random_guid(), "deletedDateTime": null, "definition": definition,
        "displayName": body["displayName"], "isOrganizationDefault": body.get("isOrganizationDefault").cloned().unwrap_or(json!(false))});
    if let Some(d) = body.get("description") {
        policy["description"] = d.clone();
    }
    t.claims_policies.policies.push(policy.clone());
    Ok(created(
        r,
        "policies/claimsMappingPolicies/$entity",
        &policy,
    ))
}

fn policy_idx(t: &Tenant, id: &str) -> Result<usize, GErr> {
    t.claims_policies.idx(id).ok_or_else(|| not_found(id))
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, READ)?;
    let i = policy_idx(t, p.id("policy").value())?;
    Ok(entity(
        r,
        "policies/claimsMappingPolicies/$entity",
        &t.claims_policies.policies[i],
    ))
}

/// PATCH: 204; a new `definition` is checked as on create and shapes the next tokens.
pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, WRITE)?;
    let i = policy_idx(t, p.id("policy").value())?;
    let body = writable(&r.body, WRITABLE, RESOURCE)?;
    if let Some(d) = body.get("definition") {
        check_definition(d)?;
    }
    let policy = &mut t.claims_policies.policies[i];
    for (k, v) in body {
        policy[k] = v;
    }
    Ok(no_content())
}

/// DELETE: 204. What becomes of its assignments is not documented (a third-party guide says to
/// unassign first); [INF] they go with it, as for app management policies.
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, WRITE)?;
    let i = policy_idx(t, p.id("policy").value())?;
    let gone = t.claims_policies.policies.remove(i);
    let id = gone["id"].as_str().unwrap_or("").to_string();
    t.claims_policies.assigned.retain(|_, pid| *pid != id);
    Ok(no_content())
}

/// GET `…/{id}/appliesTo`: the service principals it is assigned to (`…#directoryObjects`).
pub fn applies_to(r: &Req, t: &mut Tenant, p: &Params) -> R {
    require(r, READ)?;
    let i = policy_idx(t, p.id("policy").value())?;
    let id = t.claims_policies.policies[i]["id"].clone();
    let items: Vec<Value> = t
        .claims_policies
        .assigned
        .iter()
        .filter(|(_, pid)| Value::String((*pid).clone()) == id)
        .filter_map(|(sp, _)| t.sp_idx(sp))
        .map(|j| with_context_type("#microsoft.graph.servicePrincipal", &t.sps[j].body))
        .collect();
    list_response(r, "directoryObjects", items, &["id"])
}

/// The route's service principal and whether the caller may change it: the policy permission and
/// Application.ReadWrite.OwnedBy (on an owned one) or Application.ReadWrite.All (Learn
/// `serviceprincipal-post-claimsmappingpolicies`, `-delete-`).
fn sp_for_write(r: &Req, t: &Tenant, p: &Params) -> Result<String, GErr> {
    let j = find_sp(r, t, p.id("sp"))?;
    require(r, READ)?;
    if !r.can_write(&t.sps[j].owners) {
        return Err(denied());
    }
    Ok(t.sps[j].id().to_string())
}

/// GET `…/claimsMappingPolicies`: the assigned policy, or none
/// (`…#Collection(microsoft.graph.claimsMappingPolicy)`, the page's example).
pub fn assigned_list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let j = find_sp(r, t, p.id("sp"))?;
    require(r, READ)?;
    if !r.can_read() {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .claims_policies
        .for_sp(t.sps[j].id())
        .cloned()
        .into_iter()
        .collect();
    list_response(
        r,
        "Collection(microsoft.graph.claimsMappingPolicy)",
        items,
        &["id"],
    )
}

/// POST `…/claimsMappingPolicies/$ref` `{"@odata.id": "…/policies/claimsMappingPolicies/{id}"}`:
/// 204. A service principal holds one policy; a second is refused as Graph refuses a second app
/// management or token lifetime policy (`policy_refs::assign_one`; the error for claims-mapping
/// policies is not documented, [INF]).
pub fn assign(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let sp = sp_for_write(r, t, p)?;
    let i = policy_idx(t, referenced_id(r, "claimsMappingPolicies", RESOURCE)?)?;
    let canonical = s(&t.claims_policies.policies[i], "id");
    assign_one(&mut t.claims_policies.assigned, sp, canonical)
}

/// DELETE `…/claimsMappingPolicies/{policyId}/$ref`: 204 (Graph `how-to-claims-customization`);
/// 404 when that policy is not the one assigned.
pub fn unassign(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let sp = sp_for_write(r, t, p)?;
    unassign_one(&mut t.claims_policies.assigned, &sp, p.wild())
}

/// POST without `/$ref`: 400 `BadRequest` "Write requests are only supported on contained entities
/// or navigation properties with bindings." (microsoftgraph/microsoft-graph-docs#18898, #8083).
pub fn without_ref(r: &Req, t: &mut Tenant, p: &Params) -> R {
    find_sp(r, t, p.id("sp"))?;
    Err(err(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Write requests are only supported on contained entities or navigation properties with bindings.",
    ))
}
