//! The fhirUser step of a resource app (issue 25): with `smart.fhirUserClaim` the directory
//! extension `fhirUser` on the application, a claims-mapping policy that emits it as `fhirUser`
//! (tagged with the resource's uid in its display name, so a crash between its create and the
//! status write finds it again instead of creating another), `api.acceptMappedClaims` and the
//! policy's assignment to the API's service principal, in that order (accepting before assigning
//! never leaves a window in which Entra refuses tokens with AADSTS50146). Without it, or when the
//! resource is deleted, the same undone in reverse: every assignment (`appliesTo`, clients'
//! included), the policy, `acceptMappedClaims`, the extension. The `FhirUserClaim` condition says
//! which; a missing policy permission is said there and the rest of the app works on.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::json;

use crate::api::{AppStatus, FhirResourceApp, FhirUserStatus};
use crate::controller::application::WRITE_APPS;
use crate::controller::{Error, needs};
use crate::desired::conditions;
use crate::desired::fhir_user as fu;
use crate::desired::resource as b;
use crate::graph::claims::{ClaimsMappingPolicy, ExtensionProperty};
use crate::graph::types::{Application, ServicePrincipal};
use crate::graph::{GraphClient, GraphError};

/// Why the claim is not in place although asked for: the condition's reason and message.
pub(crate) type Blocked = (&'static str, String);

/// The step. Returns the extension attribute's full name while the claim is in place (the
/// ConfigMap then names it and the claim), `None` otherwise.
pub async fn apply(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    app: &Application,
    sp: &ServicePrincipal,
    identifier_uri: &str,
    status: &mut AppStatus,
) -> Result<Option<String>, Error> {
    let spec = &obj.spec;
    if !fu::wanted(spec) {
        remove(graph, obj, Some(app), status).await?;
        return Ok(None);
    }
    let refused = fu::refusal(spec, b::token_version(spec), identifier_uri, &app.app_id);
    if let Some((reason, message)) = refused {
        remove(graph, obj, Some(app), status).await?;
        set_condition(obj, status, ("False", reason, &message));
        return Ok(None);
    }
    match set_up(graph, obj, app, sp, status).await? {
        Ok(extension) => {
            let message = format!(
                "tokens carry fhirUser from the directory extension {extension}: set each user's \
                 FHIR resource there (PATCH /users/{{id}} {{\"{extension}\": \"Practitioner/123\"}})"
            );
            set_condition(obj, status, ("True", "FhirUserClaimInPlace", &message));
            Ok(Some(extension))
        }
        Err((reason, message)) => {
            set_condition(obj, status, ("False", reason, &message));
            Ok(None)
        }
    }
}

/// Extension, policy, acceptMappedClaims, assignment; the status records each as it exists.
async fn set_up(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    app: &Application,
    sp: &ServicePrincipal,
    status: &mut AppStatus,
) -> Result<Result<String, Blocked>, Error> {
    let extension = extension(graph, app).await?.name;
    let recorded = recorded_policy(status);
    status.fhir_user = Some(FhirUserStatus {
        extension_attribute: extension.clone(),
        claims_mapping_policy_id: None,
    });
    let found = policy(graph, obj, &extension, recorded.as_deref()).await;
    let policy = match unless_denied(found)? {
        Ok(p) => p,
        Err(blocked) => return Ok(Err(blocked)),
    };
    if let Some(s) = status.fhir_user.as_mut() {
        s.claims_mapping_policy_id = Some(policy.clone());
    }
    accept_mapped_claims(graph, app, true).await?;
    Ok(assign(graph, &sp.id, &policy).await?.map(|()| extension))
}

/// The `fhirUser` extension on the application: the one Graph lists, else a new one (a create
/// that meets one made meanwhile lists again).
async fn extension(graph: &GraphClient, app: &Application) -> Result<ExtensionProperty, Error> {
    let want = fu::extension_attribute(&app.app_id);
    let find = |list: Vec<ExtensionProperty>| {
        list.into_iter()
            .find(|e| e.name.eq_ignore_ascii_case(&want))
    };
    let listed = graph.extension_properties(&app.id).await;
    if let Some(e) = find(listed.map_err(needs("list extension properties", WRITE_APPS))?) {
        return Ok(e);
    }
    match graph
        .create_extension_property(&app.id, &fu::extension_body())
        .await
    {
        Ok(e) => Ok(e),
        // One made meanwhile (Entra: `Request_MultipleObjectsWithSameKeyValue`, 400) is listed now.
        Err(e @ (GraphError::Conflict { .. } | GraphError::BadRequest { .. })) => {
            let again = graph.extension_properties(&app.id).await?;
            find(again).ok_or(Error::Graph(e))
        }
        Err(e) => Err(needs("create the fhirUser extension property", WRITE_APPS)(
            e,
        )),
    }
}

/// This resource's policy with the desired definition: found by the recorded ID or by the uid in
/// its display name (duplicates a crash may have left are removed), else created.
async fn policy(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    extension: &str,
    recorded: Option<&str>,
) -> Result<String, GraphError> {
    let definition = fu::policy_definition(extension);
    let mut ours = ours(graph, obj, recorded).await?;
    let Some(keep) = (!ours.is_empty()).then(|| ours.remove(0)) else {
        let name = fu::policy_display_name(
            &obj.namespace().unwrap_or_default(),
            &obj.name_any(),
            &uid(obj),
        );
        return Ok(graph
            .create_claims_mapping_policy(&name, &definition)
            .await?
            .id);
    };
    for duplicate in ours {
        delete_policy(graph, &duplicate.id).await?;
    }
    if !fu::definition_matches(&keep.definition, extension) {
        graph
            .set_claims_mapping_definition(&keep.id, &definition)
            .await?;
    }
    Ok(keep.id)
}

/// The policies of this resource (by uid): the recorded one first when it is still there.
async fn ours(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    recorded: Option<&str>,
) -> Result<Vec<ClaimsMappingPolicy>, GraphError> {
    let uid = uid(obj);
    let mut list: Vec<ClaimsMappingPolicy> = graph
        .claims_mapping_policies()
        .await?
        .into_iter()
        .filter(|p| fu::is_policy_of(&p.display_name, &uid))
        .collect();
    list.sort_by_key(|p| Some(p.id.as_str()) != recorded);
    Ok(list)
}

/// Assigned to the service principal: done, or another policy holds it (Entra assigns one).
pub(crate) async fn assign(
    graph: &GraphClient,
    sp_id: &str,
    policy: &str,
) -> Result<Result<(), Blocked>, Error> {
    let held = match unless_denied(graph.claims_mapping_policies_of(sp_id).await)? {
        Ok(list) => list,
        Err(blocked) => return Ok(Err(blocked)),
    };
    if held.iter().any(|p| p.id.eq_ignore_ascii_case(policy)) {
        return Ok(Ok(()));
    }
    if let Some(other) = held.first() {
        return Ok(Err((
            "ClaimsMappingPolicyTaken",
            fu::taken(sp_id, &other.display_name, &other.id),
        )));
    }
    unless_denied(graph.assign_claims_mapping_policy(sp_id, policy).await)
}

/// A policy call's 403 as the condition's words (the operator lacks the policy permission),
/// other errors as the reconcile's.
fn unless_denied<T>(r: Result<T, GraphError>) -> Result<Result<T, Blocked>, Error> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(GraphError::PermissionDenied { message, .. }) => Ok(Err((
            "PolicyWriteNotPermitted",
            fu::not_permitted(&message),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `api.acceptMappedClaims` as wanted, written only when it differs.
pub(crate) async fn accept_mapped_claims(
    graph: &GraphClient,
    app: &Application,
    on: bool,
) -> Result<(), Error> {
    if app.accepts_mapped_claims() == on {
        return Ok(());
    }
    graph
        .patch_application(&app.id, &json!({"api": {"acceptMappedClaims": on}}))
        .await
        .map_err(needs("set api.acceptMappedClaims", WRITE_APPS))
}

/// Everything the step made, undone, when the status records it (a resource that never asked
/// costs no Graph call); the condition goes too. `app` is the application, when it exists.
pub async fn remove(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    app: Option<&Application>,
    status: &mut AppStatus,
) -> Result<(), Error> {
    if !traced(status) {
        status.conditions.retain(|c| c.type_ != fu::CONDITION);
        return Ok(());
    }
    undo(graph, obj, app, status).await
}

/// Whether the status shows the step made something: the record is set as soon as the extension
/// exists, before anything else is made.
pub fn traced(status: &AppStatus) -> bool {
    status.fhir_user.is_some()
}

/// Every policy of this resource unassigned and deleted, `acceptMappedClaims` off and the
/// extension deleted (when the application exists); the record and condition cleared.
pub async fn undo(
    graph: &GraphClient,
    obj: &FhirResourceApp,
    app: Option<&Application>,
    status: &mut AppStatus,
) -> Result<(), Error> {
    let recorded = recorded_policy(status);
    match ours(graph, obj, recorded.as_deref()).await {
        Ok(list) => {
            for p in list {
                delete_policy(graph, &p.id).await?;
            }
        }
        // Never permitted to write policies: none was made, unless one is recorded.
        Err(GraphError::PermissionDenied { .. }) if recorded.is_none() => {}
        Err(e) => {
            return Err(needs(
                "remove the fhirUser claims-mapping policy",
                fu::POLICY_PERMISSION,
            )(e));
        }
    }
    if let Some(app) = app {
        accept_mapped_claims(graph, app, false).await?;
        remove_extension(graph, app).await?;
    }
    status.fhir_user = None;
    status.conditions.retain(|c| c.type_ != fu::CONDITION);
    Ok(())
}

/// Unassigned from every service principal it applies to, then deleted.
async fn delete_policy(graph: &GraphClient, id: &str) -> Result<(), GraphError> {
    for sp in graph.claims_mapping_applies_to(id).await? {
        graph.unassign_claims_mapping_policy(&sp.id, id).await?;
    }
    graph.delete_claims_mapping_policy(id).await
}

async fn remove_extension(graph: &GraphClient, app: &Application) -> Result<(), Error> {
    let want = fu::extension_attribute(&app.app_id);
    let list = graph.extension_properties(&app.id).await?;
    for e in list.iter().filter(|e| e.name.eq_ignore_ascii_case(&want)) {
        graph
            .delete_extension_property(&app.id, &e.id)
            .await
            .map_err(needs("delete the fhirUser extension property", WRITE_APPS))?;
    }
    Ok(())
}

fn recorded_policy(status: &AppStatus) -> Option<String> {
    status.fhir_user.as_ref()?.claims_mapping_policy_id.clone()
}

fn uid(obj: &FhirResourceApp) -> String {
    obj.metadata.uid.clone().unwrap_or_default()
}

fn set_condition(obj: &FhirResourceApp, status: &mut AppStatus, value: (&str, &str, &str)) {
    let now = Time(Timestamp::now());
    conditions::set(
        &mut status.conditions,
        fu::CONDITION,
        value,
        obj.metadata.generation,
        now,
    );
}
