//! FhirResourceApp reconciler.

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
use crate::graph::{GraphClient, GraphError};

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
    let result = apply_inner(&obj, ctx, &mut status).await;
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
            tags.iter()
                .find_map(|t| t.strip_prefix(OWNER_TAG_PREFIX))
                .and_then(|owner| {
                    // cluster/kind/namespace/name
                    let parts: Vec<&str> = owner.splitn(4, '/').collect();
                    (parts.len() == 4).then(|| {
                        format!(
                            "FhirResourceApp {}/{} of cluster {}",
                            parts[2], parts[3], parts[0]
                        )
                    })
                })
                .unwrap_or_else(|| "an application not managed by this operator".into()),
        ),
        _ => None,
    };
    Error::IdentifierUriTaken { uri, holder }
}

async fn apply_inner(
    obj: &FhirResourceApp,
    ctx: &Context,
    status: &mut AppStatus,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    if let Some(v) = spec.requested_access_token_version
        && v != 1
        && v != 2
    {
        return Err(Error::InvalidSpec(
            "requestedAccessTokenVersion must be 1 or 2".into(),
        ));
    }
    let graph = ctx.graph_for(&ns, spec.tenant.as_ref()).await?;
    let id = identity(ctx, obj);
    let unique_name = id.unique_name();
    let known_app_id = status.client_id.clone();
    let desired = b::desired_application(spec, &id, known_app_id.as_deref());
    // Our ConfigMap and Secret names are checked before anything is registered in Entra.
    let owner = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("resource has no uid".into()))?;
    let output = spec.output.clone().unwrap_or_default();
    let cm_name = output
        .config_map_name
        .clone()
        .unwrap_or_else(|| resource_config_map_name(&name));
    let cm_current = super::outputs::current_config_map(&ctx.client, &ns, &cm_name, &owner).await?;
    let secret_current = match &output.secret_name {
        Some(secret_name) => output_secret(ctx, &ns, secret_name, &owner).await?,
        None => None,
    };
    let (app, change) = match converge_app(
        &graph,
        &unique_name,
        &desired,
        &id,
        spec.adopt.unwrap_or(false),
    )
    .await
    {
        Ok(done) => done,
        Err(e) => {
            return Err(identifier_uri_conflict(&graph, b::identifier_uri(spec, None), e).await);
        }
    };
    let parsed: Application = crate::graph::types::parse_application("application", &app)?;
    status.client_id = Some(parsed.app_id.clone());
    status.tenant_id = Some(graph.tenant_id().to_string());
    status.application_object_id = Some(parsed.id.clone());
    status.unique_name = Some(unique_name.clone());
    // The app-ID form of the identifier URI needs the app ID, known only after create.
    if known_app_id.is_none() && b::identifier_uri(spec, None).is_none() {
        let desired = b::desired_application(spec, &id, Some(&parsed.app_id));
        if let Some(patch) = diff::patch_body(&desired, &app) {
            graph
                .patch_application(&parsed.id, &patch)
                .await
                .map_err(needs("update the application", WRITE_APPS))?;
        }
    }
    report_app_change(ctx, obj, status, change, &unique_name, &parsed).await;
    let sp = graph
        .ensure_service_principal(&parsed.app_id)
        .await
        .map_err(needs("create the service principal", WRITE_APPS))?;

    let identifier_uri = b::identifier_uri(spec, Some(&parsed.app_id)).unwrap_or_default();
    let mut ts = b::token_settings(
        b::token_version(spec),
        &ctx.config.endpoints().authority_host,
        graph.tenant_id(),
        &identifier_uri,
        &parsed.app_id,
    );
    if let Some((issuer, jwks_uri)) = ctx.discover(&ts.authority).await {
        ts.issuer = issuer;
        ts.jwks_uri = jwks_uri;
    }
    let data = b::config_map_data(&ts, graph.tenant_id(), &parsed.app_id);
    apply_config_map(
        &ctx.client,
        cm_current.as_ref(),
        &cm_name,
        &ns,
        owner.clone(),
        managed_labels("FhirResourceApp", &name),
        data.clone(),
    )
    .await?;
    if let Some(secret_name) = &output.secret_name {
        apply_secret(
            &ctx.client,
            secret_current.as_ref(),
            DesiredSecret {
                namespace: &ns,
                name: secret_name,
                owner,
                labels: managed_labels("FhirResourceApp", &name),
                annotations: Default::default(),
                data,
                field: "spec.output.secretName",
            },
        )
        .await?;
    }

    status.service_principal_object_id = Some(sp.id.clone());
    status.audience = Some(ts.audience.clone());
    status.output_name = Some(cm_name.clone());
    Ok(Outcome::Ready {
        message: format!(
            "application {} registered; token settings in ConfigMap {cm_name}",
            parsed.app_id
        ),
        requeue: ctx.config.resync,
    })
}

/// The resource app's token-settings Secret as it is now: from the watch cache of our own Secrets
/// (token settings only, no credential, so a cached copy is good enough to skip a no-op write), else
/// live, because a Secret that is not ours is not in that label-selected cache. Refused if not ours.
async fn output_secret(
    ctx: &Context,
    ns: &str,
    name: &str,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<Option<k8s_openapi::api::core::v1::Secret>, Error> {
    let current = match ctx.cached_secret(ns, name) {
        Some(cached) => Some(cached.as_ref().clone()),
        None => {
            kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(ctx.client.clone(), ns)
                .get_opt(name)
                .await?
        }
    };
    if let Some(s) = &current {
        super::outputs::check_owned("Secret", "spec.output.secretName", &s.metadata, owner)?;
    }
    Ok(current)
}

async fn cleanup(obj: Arc<FhirResourceApp>, ctx: &Context) -> Result<Action, Error> {
    ctx.metrics.set_stalled(
        "FhirResourceApp",
        &format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        None,
    );
    let id = identity(ctx, &obj);
    let policy = obj.spec.deletion_policy.unwrap_or_default();
    remove_application(ctx, obj.as_ref(), policy, obj.spec.tenant.as_ref(), &id).await
}

pub fn error_policy(_obj: Arc<FhirResourceApp>, err: &Error, ctx: Arc<Context>) -> Action {
    super::backoff(err, &ctx, "FhirResourceApp")
}
