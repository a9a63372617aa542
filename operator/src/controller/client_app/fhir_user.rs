//! The fhirUser step of a SMART client (issue 25): a Confidential or Public client whose target
//! FhirResourceApp has the `fhirUser` claim in place gets the same claims-mapping policy on its own
//! service principal and `api.acceptMappedClaims` on its own application, so that its ID token
//! carries `fhirUser` too (a policy shapes the tokens whose audience its service principal is:
//! docs/entra-facts/claims-and-delta.md §A3). The policy's ID comes from the target's
//! `status.fhirUser`; this client's `status.fhirUser` records what it holds, and the
//! `FhirUserClaim` condition says it. When the target stops offering it (claim off, target deleted
//! or changed, the client turned Service) the client takes it off again: unassigned first, then
//! acceptMappedClaims off, so no token is refused in between (AADSTS50146).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::json;

use crate::api::{AppStatus, ClientType, FhirClientApp, FhirResourceApp, FhirUserStatus};
use crate::controller::application::WRITE_APPS;
use crate::controller::resource_app::fhir_user::{accept_mapped_claims, assign};
use crate::controller::{Error, needs};
use crate::desired::conditions;
use crate::desired::fhir_user as fu;
use crate::graph::GraphClient;
use crate::graph::types::Application;

/// What the target offers this client.
pub enum Offer {
    /// Nothing: a Service client, a managed target, or a target without the claim.
    None,
    /// The target asks for the claim but does not have it in place yet (its condition's words).
    Pending(String),
    /// The target's extension and policy, in place.
    Ready(FhirUserStatus),
}

/// The offer of `target_app` to this client.
pub fn offer(obj: &FhirClientApp, target_app: Option<&FhirResourceApp>) -> Offer {
    let Some(ra) = target_app.filter(|_| obj.spec.r#type != ClientType::Service) else {
        return Offer::None;
    };
    if obj.spec.target.resource_app_ref.is_none() || !fu::wanted(&ra.spec) {
        return Offer::None;
    }
    let status = ra.status.as_ref();
    let condition = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == fu::CONDITION));
    let record = status.and_then(|s| s.fhir_user.clone());
    match (condition, record) {
        (Some(c), Some(r)) if c.status == "True" && r.claims_mapping_policy_id.is_some() => {
            Offer::Ready(r)
        }
        (c, _) => Offer::Pending(format!(
            "FhirResourceApp {}/{} asks for the fhirUser claim but does not have it in place yet{}",
            ra.namespace().unwrap_or_default(),
            ra.name_any(),
            c.map(|c| format!(": {}", c.message)).unwrap_or_default()
        )),
    }
}

/// Anything this client holds taken off when the offer is not `Ready`; the condition says why
/// the client has no claim (or goes when nothing is offered).
pub async fn release(
    graph: &GraphClient,
    obj: &FhirClientApp,
    offer: &Offer,
    status: &mut AppStatus,
) -> Result<(), Error> {
    take_off(graph, status).await?;
    match offer {
        Offer::Pending(message) => set(obj, status, ("False", "WaitingForFhirUserClaim", message)),
        _ => status.conditions.retain(|c| c.type_ != fu::CONDITION),
    }
    Ok(())
}

/// The target's policy on this client's service principal and acceptMappedClaims on its
/// application (a multi-tenant client is refused: Entra advises against acceptMappedClaims there).
pub async fn apply(
    graph: &GraphClient,
    obj: &FhirClientApp,
    app: &Application,
    sp_id: &str,
    offered: &FhirUserStatus,
    status: &mut AppStatus,
) -> Result<(), Error> {
    let policy = offered.claims_mapping_policy_id.clone().unwrap_or_default();
    let recorded = status.fhir_user.as_ref();
    if recorded.is_some_and(|r| r.claims_mapping_policy_id.as_deref() != Some(policy.as_str())) {
        take_off(graph, status).await?;
    }
    if let Some((reason, message)) = fu::client_refusal(obj.spec.sign_in_audience) {
        take_off(graph, status).await?;
        set(obj, status, ("False", reason, &message));
        return Ok(());
    }
    accept_mapped_claims(graph, app, true).await?;
    status.fhir_user = Some(offered.clone());
    match assign(graph, sp_id, &policy).await? {
        Ok(()) => {
            let message = format!(
                "this client's ID tokens carry fhirUser (from {}), as do its access tokens for the FHIR API",
                offered.extension_attribute
            );
            set(obj, status, ("True", "FhirUserClaimInPlace", &message));
        }
        Err((reason, message)) => set(obj, status, ("False", reason, &message)),
    }
    Ok(())
}

/// Unassigns the recorded policy from this client's service principal and turns
/// acceptMappedClaims off on its application; clears the record.
pub async fn take_off(graph: &GraphClient, status: &mut AppStatus) -> Result<(), Error> {
    let Some(record) = status.fhir_user.clone() else {
        return Ok(());
    };
    if let (Some(sp), Some(policy)) = (
        status.service_principal_object_id.as_deref(),
        record.claims_mapping_policy_id.as_deref(),
    ) {
        graph
            .unassign_claims_mapping_policy(sp, policy)
            .await
            .map_err(needs(
                "unassign the fhirUser claims-mapping policy",
                fu::POLICY_PERMISSION,
            ))?;
    }
    if let Some(app) = status.application_object_id.as_deref() {
        let off = json!({"api": {"acceptMappedClaims": false}});
        match graph.patch_application(app, &off).await {
            Err(crate::graph::GraphError::NotFound { .. }) | Ok(()) => {}
            Err(e) => return Err(needs("set api.acceptMappedClaims", WRITE_APPS)(e)),
        }
    }
    status.fhir_user = None;
    Ok(())
}

fn set(obj: &FhirClientApp, status: &mut AppStatus, value: (&str, &str, &str)) {
    let now = Time(Timestamp::now());
    let generation = obj.metadata.generation;
    conditions::set(
        &mut status.conditions,
        fu::CONDITION,
        value,
        generation,
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn client(kind: &str) -> FhirClientApp {
        serde_json::from_value(
            json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": kind, "target": {"resourceAppRef": {"name": "fhir"}}}}),
        )
        .unwrap()
    }

    fn resource(claim: bool, status: Value) -> FhirResourceApp {
        serde_json::from_value(json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirResourceApp",
            "metadata": {"name": "fhir", "namespace": "ns"},
            "spec": {"fhirUrl": "https://fhir.example", "smart": {"enabled": true, "fhirUserClaim": claim}},
            "status": status}))
        .unwrap()
    }

    fn condition(status: &str, message: &str) -> Value {
        json!({"type": "FhirUserClaim", "status": status, "reason": "r", "message": message,
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn only_smart_clients_of_a_resource_with_the_claim_in_place_are_offered_it() {
        let record =
            json!({"extensionAttribute": "extension_a_fhirUser", "claimsMappingPolicyId": "p"});
        let ready = resource(
            true,
            json!({"conditions": [condition("True", "ok")], "fhirUser": record}),
        );
        match offer(&client("Confidential"), Some(&ready)) {
            Offer::Ready(r) => assert_eq!(r.claims_mapping_policy_id.as_deref(), Some("p")),
            _ => panic!("a SMART client of a resource with the claim is offered it"),
        }
        assert!(matches!(
            offer(&client("Public"), Some(&ready)),
            Offer::Ready(_)
        ));
        assert!(matches!(
            offer(&client("Service"), Some(&ready)),
            Offer::None
        ));
        assert!(matches!(offer(&client("Public"), None), Offer::None));
        let off = resource(false, json!({}));
        assert!(matches!(offer(&client("Public"), Some(&off)), Offer::None));
        let denied = resource(
            true,
            json!({"conditions": [condition("False", "lacks Policy.X")],
            "fhirUser": {"extensionAttribute": "extension_a_fhirUser"}}),
        );
        match offer(&client("Confidential"), Some(&denied)) {
            Offer::Pending(m) => {
                assert!(m.contains("ns/fhir") && m.contains("lacks Policy.X"), "{m}")
            }
            _ => panic!("not in place yet: pending, with the resource's reason"),
        }
    }
}
