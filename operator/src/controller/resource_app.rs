//! FhirResourceApp reconciler.

mod directory;
mod enforce;
pub(crate) mod fhir_user;
pub use enforce::unless_not_permitted;

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::application::{WRITE_APPS, converge_app, remove_application, report_app_change};
use super::finalizer::{Event as Finalizer, with_finalizer};
use super::{
    Context, DesiredSecret, Error, FINALIZER, Outcome, Verdict, apply_config_map, apply_secret,
    finish, managed_labels, needs,
};
use crate::api::{AppStatus, FhirResourceApp};
use crate::desired::diff;
use crate::desired::naming::OWNER_TAG_PREFIX;
use crate::desired::naming::{AppKind, ResourceIdentity, resource_config_map_name};
use crate::desired::resource as b;
use crate::graph::types::Application;
use crate::graph::types::ServicePrincipal;
use crate::graph::{GraphClient, GraphError};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub fn identity<'a>(ctx: &'a Context, obj: &'a FhirResourceApp) -> ResourceIdentity<'a> {
    ResourceIdentity {
        cluster: &ctx.config.cluster_name,
        kind: AppKind::Resource,
        namespace: obj.metadata.namespace.as_deref().unwrap_or_default(),
        name: obj.metadata.name.as_deref().unwrap_or_default(),
    }
}

pub async fn reconcile(obj: Arc<FhirResourceApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<FhirResourceApp> = Api::namespaced(ctx.client.clone(), &ns);
    let started = std::time::Instant::now();
    let verdict = Verdict::default();
    let res = with_finalizer(&api, FINALIZER, obj, |ev| async {
        match ev {
            Finalizer::Apply(o) => apply(o, &ctx, &api, &verdict).await,
            Finalizer::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await;
    ctx.metrics
        .reconcile("FhirResourceApp", verdict.result(&res));
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconciled FhirResourceApp"
    );
    res
}

async fn apply(
    obj: Arc<FhirResourceApp>,
    ctx: &Context,
    api: &Api<FhirResourceApp>,
    verdict: &Verdict,
) -> Result<Action, Error> {
    let old = obj.status.clone();
    let mut status = old.clone().unwrap_or_default();
    let ns = obj.namespace().unwrap_or_default();
    let owner = super::drift::Owner::resource(&ns, &obj.name_any());
    // Delta saw its application or service principal change: what is held on its API is read
    // again too (delta does not see assignments).
    if ctx.drift.take_dirty(&owner) {
        ctx.forget(&enforce::memo_key(&obj));
    }
    ctx.drift.reading(&owner);
    let result = apply_inner(&obj, ctx, &mut status).await;
    // What it holds in Graph, for the delta watcher.
    ctx.drift
        .track(owner, &ns, obj.spec.tenant.as_ref(), &status);
    finish(
        ctx,
        api,
        obj.as_ref(),
        old.as_ref(),
        status,
        result,
        verdict,
    )
    .await
}

/// A create refused because another application holds the identifier URI is Stalled, naming the
/// holder when it is one of ours: retrying cannot help until someone changes one of the two.
async fn identifier_uri_conflict(graph: &GraphClient, uri: Option<String>, e: Error) -> Error {
    let (Error::Graph(GraphError::Conflict { message, .. }), Some(uri)) = (&e, uri) else {
        return e;
    };
    if !message.contains("identifierUris") {
        return e;
    }
    let holder = match graph.application_tags_with_identifier_uri(&uri).await {
        Ok(Some(tags)) => Some(
            owner_of(&tags).unwrap_or_else(|| "an application not managed by this operator".into()),
        ),
        Ok(None) => deleted_holder(graph, &uri).await,
        Err(_) => None,
    };
    Error::IdentifierUriTaken { uri, holder }
}

/// A create or update the tenant's app-management policy refused for the identifier URI is Stalled,
/// naming the URI and the forms the policy allows. Entra refuses the whole request, so nothing was
/// created; an application that existed already keeps its URIs and is converged on the next try.
fn refused_by_policy(uri: Option<&str>, token_version: i32, e: Error) -> Error {
    let Error::Graph(GraphError::IdentifierUriNotAllowedByPolicy { message, .. }) = &e else {
        return e;
    };
    let (restriction, named) = refused_uri(message);
    let Some(uri) = uri.or(named) else { return e };
    Error::IdentifierUriNotAllowedByPolicy {
        uri: uri.to_string(),
        restriction,
        token_version,
    }
}

/// The restriction and the URI Graph's refusal names: "Failed to add identifier URI {uri}. All
/// newly added URIs must contain a tenant verified domain, …" (Learn `identifier-uri-restrictions`)
/// or "The newly added URI {uri} must comply with the format 'api://{appId}' …"
/// (microsoft/entra-apps-identifier-uri-protection).
fn refused_uri(message: &str) -> (b::UriRestriction, Option<&str>) {
    if let Some(rest) = message.strip_prefix("The newly added URI ") {
        let uri = rest.split_once(" must comply").map(|(u, _)| u);
        return (b::UriRestriction::NonDefault, uri);
    }
    let uri = message
        .strip_prefix("Failed to add identifier URI ")
        .and_then(|rest| rest.split_once(". All newly"))
        .map(|(u, _)| u);
    (b::UriRestriction::WithoutUniqueTenantIdentifier, uri)
}

/// "FhirResourceApp ns/name of cluster c", from an application's owner tag.
fn owner_of(tags: &[String]) -> Option<String> {
    let owner = tags.iter().find_map(|t| t.strip_prefix(OWNER_TAG_PREFIX))?;
    // cluster/kind/namespace/name
    let parts: Vec<&str> = owner.splitn(4, '/').collect();
    (parts.len() == 4).then(|| {
        format!(
            "FhirResourceApp {}/{} of cluster {}",
            parts[2], parts[3], parts[0]
        )
    })
}

/// No live application holds the URI: a deleted one does (Entra keeps it 30 days), named with the
/// command that purges it.
async fn deleted_holder(graph: &GraphClient, uri: &str) -> Option<String> {
    let app = graph
        .find_deleted_application_with_identifier_uri(uri)
        .await
        .ok()??;
    let whose = owner_of(&app.tags)
        .map(|o| format!(" of {o}"))
        .unwrap_or_default();
    Some(format!(
        "a deleted application{whose}, object ID {}, which Entra ID keeps with its identifier URIs for 30 days; purge it to free the URI: az rest --method DELETE --url {}",
        app.id,
        graph.deleted_item_url(&app.id)
    ))
}

/// The objects the resource app writes — its ConfigMap and optional Secret — as they are now,
/// checked to be ours before anything is registered in Entra.
struct Outputs {
    owner: OwnerReference,
    config_map: String,
    config_map_now: Option<ConfigMap>,
    secret: Option<(String, Option<Secret>)>,
}

async fn outputs(obj: &FhirResourceApp, ctx: &Context) -> Result<Outputs, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let owner = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("resource has no uid".into()))?;
    let output = obj.spec.output.clone().unwrap_or_default();
    let config_map = output
        .config_map_name
        .clone()
        .unwrap_or_else(|| resource_config_map_name(&obj.name_any()));
    let config_map_now =
        super::outputs::current_config_map(&ctx.client, &ns, &config_map, &owner).await?;
    let secret = match output.secret_name {
        Some(name) => {
            let now = output_secret(ctx, &ns, &name, &owner).await?;
            Some((name, now))
        }
        None => None,
    };
    Ok(Outputs {
        owner,
        config_map,
        config_map_now,
        secret,
    })
}

async fn apply_inner(
    obj: &FhirResourceApp,
    ctx: &Context,
    status: &mut AppStatus,
) -> Result<Outcome, Error> {
    let spec = &obj.spec;
    if let Some(v) = spec.requested_access_token_version
        && v != 1
        && v != 2
    {
        return Err(Error::InvalidSpec(
            "requestedAccessTokenVersion must be 1 or 2".into(),
        ));
    }
    let ns = obj.namespace().unwrap_or_default();
    let graph = ctx.graph_for(&ns, spec.tenant.as_ref()).await?;
    // The access policy first: what it no longer allows is taken away before any later step
    // (outputs, registration, user assignments) can fail this reconcile.
    let known_sp = status.service_principal_object_id.clone();
    enforce::apply(ctx, &graph, obj, known_sp.as_deref()).await?;
    // After the enforcement: a spec Entra would refuse must not keep the policy from taking access away.
    let both = b::values_in_both(spec, &identity(ctx, obj));
    if !both.is_empty() {
        return Err(Error::InvalidSpec(format!(
            "{} published both as an app role and as a scope: Entra refuses one value under two \
             ids; rename the role or the scope",
            both.join(", ")
        )));
    }
    let out = outputs(obj, ctx).await?;
    let (app, sp) = register(obj, ctx, &graph, status).await?;
    // Who may get tokens for the API, and the users and groups assigned its roles.
    let (scopes, roles) = b::published(spec, &identity(ctx, obj));
    directory::apply(&graph, spec, &sp, &roles).await?;
    // The identifier URI (the audience), derived once the app ID is known.
    let identifier_uri = b::identifier_uri(spec, Some(&app.app_id)).unwrap_or_default();
    let mut ts = b::token_settings(
        b::token_version(spec),
        &ctx.config.endpoints().authority_host,
        graph.tenant_id(),
        &identifier_uri,
        &app.app_id,
    );
    if let Some((issuer, jwks_uri)) = ctx.discover(&ts.authority).await {
        ts.issuer = issuer;
        ts.jwks_uri = jwks_uri;
    }
    // The fhirUser claim: its keys are written only while tokens carry it.
    let claim = fhir_user::apply(&graph, obj, &app, &sp, &identifier_uri, status).await?;
    let owner =
        super::drift::Owner::resource(&obj.namespace().unwrap_or_default(), &obj.name_any());
    ctx.drift.expect_mapped_claims(&owner, claim.is_some());
    let mut data = b::config_map_data(&ts, graph.tenant_id(), &app.app_id);
    data.extend(claim.as_deref().map(fhir_user_keys).into_iter().flatten());
    write_outputs(ctx, obj, &out, data).await?;
    status.service_principal_object_id = Some(sp.id.clone());
    status.published = Some(published(scopes, roles));
    status.audience = Some(ts.audience.clone());
    status.output_name = Some(out.config_map.clone());
    status.notes = crate::desired::fhir_user::managed_service_note(&spec.fhir_url, &ts.audience);
    Ok(Outcome::Ready {
        message: format!(
            "application {} registered; token settings in ConfigMap {}",
            app.app_id, out.config_map
        ),
        requeue: ctx.drift.resync_for(graph.tenant_id()),
    })
}

fn fhir_user_keys(extension: &str) -> [(String, String); 2] {
    crate::desired::fhir_user::output_keys(extension)
}

/// What this resource app publishes, as the status tells its clients.
fn published(scopes: Vec<b::Entitlement>, app_roles: Vec<b::Entitlement>) -> crate::api::Published {
    let list = |e: Vec<b::Entitlement>| {
        e.into_iter()
            .map(|e| crate::api::PublishedEntitlement {
                value: e.value,
                id: e.id,
            })
            .collect()
    };
    crate::api::Published {
        scopes: list(scopes),
        app_roles: list(app_roles),
    }
}

/// The register step: the application converged (a taken identifier URI is Stalled, naming who
/// holds it; the app-ID form of the identifier URI is set once the app ID exists) and its service
/// principal. What exists goes into the status at once.
async fn register(
    obj: &FhirResourceApp,
    ctx: &Context,
    graph: &GraphClient,
    status: &mut AppStatus,
) -> Result<(Application, ServicePrincipal), Error> {
    let spec = &obj.spec;
    let id = identity(ctx, obj);
    let unique_name = id.unique_name();
    let known_app_id = status.client_id.clone();
    // `None` for the `api://{appId}` form, which needs the app ID.
    let literal_uri = b::identifier_uri(spec, None);
    let desired = b::desired_application(spec, &id, known_app_id.as_deref());
    let adopt = spec.adopt.unwrap_or(false);
    // What the delta watcher compares its entries with (its own writes are no drift).
    let owner = super::drift::Owner::resource(id.namespace, id.name);
    ctx.drift
        .expect(&owner, super::drift::Part::Application, &desired.body());
    let required = spec.app_role_assignment_required.unwrap_or(true);
    let sp_body = serde_json::json!({"appRoleAssignmentRequired": required});
    ctx.drift
        .expect(&owner, super::drift::Part::ServicePrincipal, &sp_body);
    let (raw, change) = match converge_app(graph, &unique_name, &desired, &id, adopt).await {
        Ok(done) => done,
        Err(e) => {
            let e = refused_by_policy(literal_uri.as_deref(), b::token_version(spec), e);
            return Err(identifier_uri_conflict(graph, literal_uri, e).await);
        }
    };
    let app: Application = crate::graph::types::parse_application("application", &raw)?;
    status.client_id = Some(app.app_id.clone());
    status.tenant_id = Some(graph.tenant_id().to_string());
    status.application_object_id = Some(app.id.clone());
    status.unique_name = Some(unique_name.clone());
    if known_app_id.is_none() && literal_uri.is_none() {
        let desired = b::desired_application(spec, &id, Some(&app.app_id));
        if let Some(patch) = diff::patch_body(&desired.body(), &raw) {
            graph
                .patch_application(&app.id, &patch)
                .await
                .map_err(needs("update the application", WRITE_APPS))?;
        }
    }
    report_app_change(ctx, obj, status, change, &unique_name, &app).await;
    let (sp, _) =
        super::restore::service_principal(graph, &app.app_id, change == Some("Created")).await?;
    Ok((app, sp))
}

/// The outputs step: the ConfigMap, and the Secret when asked for, each written only if it changed.
async fn write_outputs(
    ctx: &Context,
    obj: &FhirResourceApp,
    out: &Outputs,
    data: std::collections::BTreeMap<String, String>,
) -> Result<(), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let labels = managed_labels("FhirResourceApp", &obj.name_any());
    let cm = out.config_map_now.as_ref();
    apply_config_map(
        &ctx.client,
        cm,
        &out.config_map,
        &ns,
        out.owner.clone(),
        labels.clone(),
        data.clone(),
    )
    .await?;
    if let Some((name, now)) = &out.secret {
        let desired = DesiredSecret {
            namespace: &ns,
            name,
            owner: out.owner.clone(),
            labels,
            annotations: Default::default(),
            data,
            field: "spec.output.secretName",
        };
        apply_secret(&ctx.client, now.as_ref(), desired).await?;
    }
    Ok(())
}

/// The resource app's token-settings Secret as it is now (live: the watch cache keeps Secrets'
/// metadata only). Refused if not ours.
async fn output_secret(
    ctx: &Context,
    ns: &str,
    name: &str,
    owner: &OwnerReference,
) -> Result<Option<Secret>, Error> {
    let current = ctx.current_secret(ns, name).await?;
    if let Some(s) = &current {
        super::outputs::check_owned("Secret", "spec.output.secretName", &s.metadata, owner)?;
    }
    Ok(current)
}

async fn cleanup(obj: Arc<FhirResourceApp>, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    ctx.drift
        .untrack(&super::drift::Owner::resource(&ns, &obj.name_any()));
    ctx.metrics.set_stalled(
        "FhirResourceApp",
        &format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        None,
    );
    let id = identity(ctx, &obj);
    remove_fhir_user_claim(&obj, ctx, &id).await?;
    let policy = (obj.spec.deletion_policy).unwrap_or(ctx.config.default_deletion_policy);
    remove_application(ctx, obj.as_ref(), policy, obj.spec.tenant.as_ref(), &id).await
}

/// Whatever the deletion policy says about the application, the fhirUser claim's policy, its
/// assignments and the extension go (a policy left behind keeps shaping its clients' tokens).
async fn remove_fhir_user_claim(
    obj: &FhirResourceApp,
    ctx: &Context,
    id: &ResourceIdentity<'_>,
) -> Result<(), Error> {
    let mut status = obj.status.clone().unwrap_or_default();
    if !fhir_user::traced(&status) && !crate::desired::fhir_user::wanted(&obj.spec) {
        return Ok(());
    }
    let ns = obj.namespace().unwrap_or_default();
    let graph = ctx.graph_for(&ns, obj.spec.tenant.as_ref()).await?;
    let raw = graph.find_application_to_delete(&id.unique_name()).await?;
    let app = match raw {
        Some(v) => Some(crate::graph::types::parse_application("application", &v)?),
        None => None,
    };
    fhir_user::undo(&graph, obj, app.as_ref(), &mut status).await
}

pub fn error_policy(_obj: Arc<FhirResourceApp>, err: &Error, ctx: Arc<Context>) -> Action {
    super::backoff(err, &ctx, "FhirResourceApp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_refusal_names_its_restriction_and_uri() {
        let documented = "Failed to add identifier URI api://fhir. All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, as per the default tenant policy of your organization. See https://aka.ms/identifier-uri-addition-error for more information on this error.";
        assert_eq!(
            refused_uri(documented),
            (
                b::UriRestriction::WithoutUniqueTenantIdentifier,
                Some("api://fhir")
            )
        );
        let non_default = "The newly added URI https://fhir.contoso.example must comply with the format 'api://{appId}' or 'api://{tenantId}/{appId}' as per the default app management policy of your organization.";
        assert_eq!(
            refused_uri(non_default),
            (
                b::UriRestriction::NonDefault,
                Some("https://fhir.contoso.example")
            )
        );
        // The URI the operator sent wins; a refusal of another kind passes through.
        let refused = |m: &str| {
            Error::Graph(GraphError::IdentifierUriNotAllowedByPolicy {
                code: "InvalidUniqueTenantIdentifierAsPerAppPolicy".into(),
                message: m.into(),
            })
        };
        let e = refused_by_policy(None, 2, refused(documented));
        assert_eq!(e.category(), "IdentifierUriNotAllowedByPolicy");
        assert!(e.to_string().contains("api://fhir:"), "{e}");
        let other = refused_by_policy(Some("api://x"), 1, Error::InvalidSpec("x".into()));
        assert_eq!(other.category(), "InvalidSpec");
    }
}
