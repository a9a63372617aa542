//! FhirClientApp reconciler: a pipeline of named steps.
//!
//! dereference (tenant, target, the output Secret) → build (the desired application, what the
//! target does not publish) → register (application, service principal) → access (role
//! assignments, admin consent) → credential (per kind, [`credential`]) → outputs (the Secret, then
//! pruning) → status. The status collects what exists as the steps go, so a step that fails still
//! reports what the ones before it registered.

mod access;
mod admission;
mod app_policy;
mod credential;
mod fhir_user;
mod rbac;
pub(crate) mod target;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::application::{converge_app, remove_application, report_app_change};
use super::finalizer::{Event as Finalizer, with_finalizer};
use super::outputs::check_owned;
use super::{
    Context, DesiredSecret, Error, FINALIZER, Outcome, Verdict, apply_secret, finish,
    managed_labels,
};
use crate::api::{AccessEntry, AppStatus, FhirClientApp, FhirResourceApp};
use crate::desired::client::{self as b, ResolvedTarget};
use crate::desired::credentials::Rotation;
use crate::desired::duration;
use crate::desired::naming::{AppKind, ResourceIdentity, client_secret_name};
use crate::graph::GraphClient;
use crate::graph::types::{Application, ServicePrincipal};
use target::Target;

pub fn identity<'a>(ctx: &'a Context, obj: &'a FhirClientApp) -> ResourceIdentity<'a> {
    ResourceIdentity {
        cluster: &ctx.config.cluster_name,
        kind: AppKind::Client,
        namespace: obj.metadata.namespace.as_deref().unwrap_or_default(),
        name: obj.metadata.name.as_deref().unwrap_or_default(),
    }
}

pub async fn reconcile(obj: Arc<FhirClientApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<FhirClientApp> = Api::namespaced(ctx.client.clone(), &ns);
    let verdict = Verdict::default();
    let res = with_finalizer(&api, FINALIZER, obj, |ev| async {
        match ev {
            Finalizer::Apply(o) => apply(o, &ctx, &api, &verdict).await,
            Finalizer::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await;
    ctx.metrics.reconcile("FhirClientApp", verdict.result(&res));
    res
}

async fn apply(
    obj: Arc<FhirClientApp>,
    ctx: &Context,
    api: &Api<FhirClientApp>,
    verdict: &Verdict,
) -> Result<Action, Error> {
    let old = obj.status.clone();
    let mut status = old.clone().unwrap_or_default();
    let key = format!(
        "FhirClientApp/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    );
    let (base, secret_rv, target_app) = inputs(&obj, ctx).await?;
    // Nothing this reconcile depends on changed since the last full one (e.g. the event is our own
    // status or Secret write): no Graph calls until the resync or credential deadline — unless the
    // delta watcher saw its application or service principal change.
    let owner = super::drift::Owner::client(&obj.namespace().unwrap_or_default(), &obj.name_any());
    let drifted = ctx.drift.take_dirty(&owner);
    if !drifted
        && let Some(rv) = &secret_rv
        && let Some((requeue, message)) = ctx.fresh(&key, &format!("{base}/{rv}"))
    {
        // The full reconcile already wrote the status; the cached object may predate that write, so
        // no status is written from it here.
        tracing::debug!(
            key,
            message,
            "inputs unchanged since the last full reconcile"
        );
        return Ok(Action::requeue(requeue));
    }
    ctx.forget(&key);
    ctx.drift.reading(&owner);
    let result = converge(&obj, ctx, target_app, &mut status).await;
    let memo = match &result {
        Ok(Converged {
            outcome: Outcome::Ready { requeue, message },
            secret_version: Some(rv),
        }) => Some((format!("{base}/{rv}"), *requeue, message.clone())),
        _ => None,
    };
    let result = result.map(|c| c.outcome);
    // What it holds in Graph, for the delta watcher (even when a later step failed: a registered
    // application can drift while the rest waits).
    let tenant = target::recorded_tenant(&status);
    let ns = obj.namespace().unwrap_or_default();
    ctx.drift.track(owner, &ns, tenant.as_ref(), &status);
    let action = finish(
        ctx,
        api,
        obj.as_ref(),
        old.as_ref(),
        status,
        result,
        verdict,
    )
    .await?;
    // Remembered only once the Ready status is written: if that write fails (say, the API server
    // restarts), the retry must be a full reconcile that writes it, not a skip.
    if let Some((fingerprint, valid, message)) = memo {
        ctx.remember(&key, fingerprint, valid, message);
    }
    Ok(action)
}

/// What a full reconcile reads besides Graph — the object's identity and generation, the target
/// FhirResourceApp — as a fingerprint, plus the output Secret's resourceVersion (if it exists) and
/// the target FhirResourceApp itself (read once, for the fingerprint and the reconcile).
async fn inputs(
    obj: &FhirClientApp,
    ctx: &Context,
) -> Result<(String, Option<String>, Option<FhirResourceApp>), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let reachable = target::out_of_reach(obj, ctx.config.watch_namespace.as_deref()).is_none();
    let target_ref = target::resource_app_of(obj);
    let target_app = match &target_ref {
        Some((ns, name)) if reachable => ctx.resource_app(ns, name).await?,
        _ => None,
    };
    let target_rv = match &target_ref {
        Some(_) => target_app
            .as_ref()
            .and_then(|ra| ra.metadata.resource_version.clone())
            .unwrap_or_else(|| "absent".into()),
        None => "managed".into(),
    };
    let base = format!(
        "{}/{}/{target_rv}",
        obj.metadata.uid.as_deref().unwrap_or_default(),
        obj.metadata.generation.unwrap_or_default()
    );
    let secret_name = obj
        .spec
        .secret_name
        .clone()
        .unwrap_or_else(|| client_secret_name(&obj.name_any()));
    let secret_rv = ctx.output_secret_version(&ns, &secret_name).await?;
    Ok((base, secret_rv, target_app))
}

fn rotation(obj: &FhirClientApp) -> Result<Rotation, Error> {
    let mut r = Rotation::default();
    if let Some(spec) = obj
        .spec
        .credential
        .as_ref()
        .and_then(|c| c.rotation.as_ref())
    {
        let p = |field: &str, v: &Option<String>, d: Duration| -> Result<Duration, Error> {
            match v {
                None => Ok(d),
                Some(s) => duration::parse(s).ok_or_else(|| {
                    Error::InvalidSpec(format!("credential.rotation.{field}: not a duration: {s}"))
                }),
            }
        };
        r.validity = p("validity", &spec.validity, r.validity)?;
        r.renew_before = p("renewBefore", &spec.renew_before, r.renew_before)?;
        r.overlap = p("overlap", &spec.overlap, r.overlap)?;
    }
    if r.renew_before >= r.validity {
        return Err(Error::InvalidSpec(
            "credential.rotation.renewBefore must be shorter than validity".into(),
        ));
    }
    Ok(r)
}

/// What a full reconcile ends with: the outcome, and the output Secret's resourceVersion after the
/// write (for the "nothing changed since" memo).
struct Converged {
    outcome: Outcome,
    secret_version: Option<String>,
}

/// The output Secret: its name, the owner reference the operator writes, and the object as it is
/// now (ours, or absent: someone else's stops the reconcile before anything is registered).
struct OutputSecret {
    name: String,
    owner: OwnerReference,
    existing: Option<Secret>,
}

async fn output_secret(obj: &FhirClientApp, ctx: &Context) -> Result<OutputSecret, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj
        .spec
        .secret_name
        .clone()
        .unwrap_or_else(|| client_secret_name(&obj.name_any()));
    let owner = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("resource has no uid".into()))?;
    let existing = ctx.current_secret(&ns, &name).await?;
    if let Some(s) = &existing {
        check_owned("Secret", "spec.secretName", &s.metadata, &owner)?;
    }
    Ok(OutputSecret {
        name,
        owner,
        existing,
    })
}

/// What the admission step lets through: the client narrowed to what its target's access policy
/// allows, what the policy refused, and the revocation message when its namespace is no longer
/// admitted at all.
struct Admitted {
    client: Box<FhirClientApp>,
    refused: Vec<AccessEntry>,
    revoked: Option<String>,
}

/// The admission step; `Err` before any Graph call when nothing may be registered.
fn admit(
    obj: &FhirClientApp,
    target_app: Option<&FhirResourceApp>,
    status: &mut AppStatus,
) -> Result<Admitted, Error> {
    let registered = status.client_id.is_some();
    match admission::admit(obj, target_app, registered) {
        admission::Admission::Go {
            client,
            refused,
            revoked,
        } => Ok(Admitted {
            client,
            refused,
            revoked,
        }),
        admission::Admission::Stop(e, refused) => {
            // A registered client keeps its account until the revocation has actually run.
            if !registered {
                status.access = Some(admission::stopped(refused));
            }
            Err(e)
        }
    }
}

/// What was granted and refused, into the status; an Event for what was revoked; `NotPermitted`
/// when the policy refused anything (the allowed part is in place by now).
async fn report_access(
    ctx: &Context,
    obj: &FhirClientApp,
    target: &ResolvedTarget,
    status: &mut AppStatus,
    refused: &[AccessEntry],
    revoked: Option<String>,
) -> Result<(), Error> {
    let access = admission::status(obj, target, refused);
    if let Some(note) = admission::revoked_note(status.access.as_ref(), &access) {
        ctx.event(obj, true, "AccessRevoked", note).await;
    }
    status.access = Some(access);
    if let Some(message) = revoked {
        return Err(Error::NotPermitted(message));
    }
    if !refused.is_empty() {
        return Err(admission::refusal(&target::reference(obj), refused));
    }
    Ok(())
}

async fn converge(
    obj: &FhirClientApp,
    ctx: &Context,
    target_app: Option<FhirResourceApp>,
    status: &mut AppStatus,
) -> Result<Converged, Error> {
    revoke_first(ctx, obj, target_app.as_ref(), status).await?;
    // Admission: the rest of the pipeline sees only what the target's access policy allows.
    let Admitted {
        client,
        refused,
        revoked,
    } = admit(obj, target_app.as_ref(), status)?;
    let obj = client.as_ref();
    // Dereference.
    let ns = obj.namespace().unwrap_or_default();
    let tenant = target::tenant_for(obj, target_app.as_ref());
    let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
    status.tenant_credentials_secret = target::credentials_secret(tenant.as_ref());
    // What the target offers of the fhirUser claim; what it no longer offers is taken off first.
    let offer = fhir_user::offer(obj, target_app.as_ref());
    if !matches!(offer, fhir_user::Offer::Ready(_)) {
        fhir_user::release(&graph, obj, &offer, status).await?;
    }
    let (target, target_sp) = match target::resolve(obj, ctx, target_app, &graph).await? {
        Target::Resolved(t, sp) => (t, sp),
        Target::Wait(message) => return Ok(waiting_for_resource_app(message)),
    };
    // Validate and build.
    let rotation = rotation(obj)?;
    let kind = b::credential_type(&obj.spec);
    let id = identity(ctx, obj);
    let (desired, unknown) = b::desired_application_partial(&obj.spec, &id, &target);
    let out = output_secret(obj, ctx).await?;
    // A client never registered meets the tenant's default app management policy before anything
    // exists in Entra: a credential type it blocks stalls here.
    if status.application_object_id.is_none() {
        let policy = app_policy::apply(ctx, obj, &graph, None, kind, rotation, status).await?;
        if let Some(k) = kind {
            app_policy::check(policy.rules.as_ref(), k)?;
        }
    }
    // Register, grant access.
    let registered_before = status.client_id.is_some();
    let (app, sp, sp_is_new, restored) =
        register(ctx, obj, &graph, &id, &desired, &target, status).await?;
    // The policy that applies to the registered application (its own, else the default) caps the
    // credential's lifetime; a type it blocks stalls when a new credential is due.
    let policy = app_policy::apply(ctx, obj, &graph, Some(&app), kind, rotation, status).await?;
    if let (Some(reference), Some(resource_sp)) =
        (super::revoke::current_target(obj), target_sp.as_deref())
    {
        super::revoke::record(status, reference, resource_sp);
    }
    let principal = access::Principal {
        id: &sp.id,
        is_new: sp_is_new,
    };
    access::apply(&graph, &obj.spec, &target, target_sp.as_deref(), principal).await?;
    rbac::apply(ctx, &graph, &obj.spec, &sp.id, status).await?;
    if let fhir_user::Offer::Ready(offered) = &offer {
        fhir_user::apply(&graph, obj, &app, &sp.id, offered, status).await?;
    }
    let owner = super::drift::Owner::client(&obj.namespace().unwrap_or_default(), &obj.name_any());
    ctx.drift
        .expect_mapped_claims(&owner, status.fhir_user.is_some());
    // Credential, outputs.
    let now = Timestamp::now();
    let inputs = credential::Inputs {
        ctx,
        obj,
        graph: &graph,
        app: &app,
        // Only a Secret written for this very resource holds a credential worth keeping.
        existing: (out.existing.as_ref()).filter(|s| credential::written_for(s, obj)),
        secret_name: &out.name,
        registered_before,
        restored,
        rotation: policy.rotation,
        policy: policy.rules.as_ref(),
        now,
    };
    let prepared = credential::prepare(kind, &inputs).await?;
    let secret_version =
        write_secret(ctx, obj, &graph, &app, &target, &out, kind, &prepared).await?;
    credential::prune(&graph, &app, kind, &prepared, now).await?;
    // Status.
    let key = format!("{ns}/{}", obj.name_any());
    ctx.metrics.set_credential_expiry(&key, prepared.expires);
    ctx.metrics.set_credential_schedule(
        &key,
        prepared.renew_at,
        policy.rotation.max_lifetime.map(|m| m.as_secs()),
    );
    status.credential = prepared.status.clone();
    status.output_name = Some(out.name.clone());
    status.notes = target.managed.then(|| rbac::note(obj, &target, status));
    report_access(ctx, obj, &target, status, &refused, revoked).await?;
    // The registration and grants hold what the target publishes; what it does not is reported.
    if !unknown.is_empty() {
        return Err(Error::UnknownEntitlement(b::UnknownEntitlements(unknown)));
    }
    Ok(ready(
        ctx,
        graph.tenant_id(),
        kind.is_some(),
        &app.app_id,
        &out.name,
        &prepared,
        secret_version,
    ))
}

/// The revoke step: what a registered client holds where it no longer may is taken away first,
/// before any step the client's owner can make fail (its spec, its Secret, its target). A target
/// out of the operator's reach stops the reconcile here.
async fn revoke_first(
    ctx: &Context,
    obj: &FhirClientApp,
    target_app: Option<&FhirResourceApp>,
    status: &mut AppStatus,
) -> Result<(), Error> {
    if let Some(e) = target::out_of_reach(obj, ctx.config.watch_namespace.as_deref()) {
        return Err(e);
    }
    if status.service_principal_object_id.is_none() {
        return Ok(());
    }
    let ns = obj.namespace().unwrap_or_default();
    let tenant = target::tenant_for(obj, target_app);
    let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
    super::revoke::apply(ctx, obj, &graph, status).await
}

fn waiting_for_resource_app(message: String) -> Converged {
    let outcome = Outcome::Waiting {
        reason: "WaitingForResourceApp".into(),
        message,
        requeue: Duration::from_secs(10),
    };
    Converged {
        outcome,
        secret_version: None,
    }
}

/// Ready: what the Secret holds, and when to look again (the credential's next check, at the
/// latest the resync: the long one while Graph delta watches the tenant, see `controller::drift`).
fn ready(
    ctx: &Context,
    tenant: &str,
    has_credential: bool,
    app_id: &str,
    secret_name: &str,
    prepared: &credential::Prepared,
    secret_version: Option<String>,
) -> Converged {
    let holds = if has_credential {
        "credentials and endpoints"
    } else {
        "client ID and endpoints (a public client has no credential)"
    };
    let outcome = Outcome::Ready {
        message: format!("client {app_id} ready; {holds} in Secret {secret_name}"),
        requeue: {
            let resync = ctx.drift.resync_for(tenant);
            prepared.next_check.map_or(resync, |n| n.min(resync))
        },
    };
    Converged {
        outcome,
        secret_version,
    }
}

/// The register step: the application converged to `desired` and its service principal (and
/// whether that was created now, and whether the application was restored from the deleted items). What exists goes into the status at once, whatever the later
/// steps meet (an admin who must assign a role by hand finds the application from Kubernetes).
async fn register(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    id: &ResourceIdentity<'_>,
    desired: &crate::desired::application::Application,
    target: &ResolvedTarget,
    status: &mut AppStatus,
) -> Result<(Application, ServicePrincipal, bool, bool), Error> {
    let unique_name = id.unique_name();
    let adopt = obj.spec.adopt.unwrap_or(false);
    // What the delta watcher compares its entries with (its own writes are no drift); a client
    // converges nothing on its service principal.
    let owner = super::drift::Owner::client(id.namespace, id.name);
    ctx.drift
        .expect(&owner, super::drift::Part::Application, &desired.body());
    let nothing = serde_json::json!({});
    ctx.drift
        .expect(&owner, super::drift::Part::ServicePrincipal, &nothing);
    let (app, change) = converge_app(graph, &unique_name, desired, id, adopt).await?;
    let app: Application = crate::graph::types::parse_application("application", &app)?;
    report_app_change(ctx, obj, status, change, &unique_name, &app).await;
    status.client_id = Some(app.app_id.clone());
    status.tenant_id = Some(graph.tenant_id().to_string());
    status.application_object_id = Some(app.id.clone());
    status.unique_name = Some(unique_name);
    status.audience = Some(target.audience.clone());
    let (sp, sp_is_new) =
        super::restore::service_principal(graph, &app.app_id, change == Some("Created")).await?;
    status.service_principal_object_id = Some(sp.id.clone());
    Ok((app, sp, sp_is_new, change == Some("Restored")))
}

/// The outputs step: the Secret with the prepared credential. A client secret issued for a write
/// the API server refuses is removed again, so a write that keeps failing never piles up valid
/// credentials in Entra; a written credential is announced. Returns the Secret's resourceVersion.
#[allow(clippy::too_many_arguments)]
async fn write_secret(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    app: &Application,
    target: &ResolvedTarget,
    out: &OutputSecret,
    kind: Option<crate::api::CredentialType>,
    prepared: &credential::Prepared,
) -> Result<Option<String>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let data = b::secret_data(&b::SecretInputs {
        client_id: &app.app_id,
        tenant_id: graph.tenant_id(),
        authority_host: &ctx.config.endpoints().authority_host,
        target,
        client_secret: prepared.client_secret.as_deref(),
        federated_token_file: prepared.federated_token_file.as_deref(),
        credential: kind,
        certificate: prepared.certificate.as_ref(),
        sign_in: b::sign_in(&obj.spec),
    });
    let desired = DesiredSecret {
        namespace: &ns,
        name: &out.name,
        owner: out.owner.clone(),
        labels: managed_labels("FhirClientApp", &obj.name_any()),
        annotations: prepared.annotations.clone(),
        data,
        field: "spec.secretName",
    };
    let written = match apply_secret(&ctx.client, out.existing.as_ref(), desired).await {
        Ok(w) => w,
        Err(e) => {
            if let Some(issued) = prepared.issued.as_ref().filter(|i| i.undo_on_failure)
                && let Err(undo) = graph.remove_password(&app.id, &issued.key_id).await
            {
                // The next successful write prunes it (no Secret holds it).
                tracing::warn!(key_id = %issued.key_id, error = %undo, "could not remove the client secret the failed Secret write would have held");
            }
            return Err(e);
        }
    };
    if let Some(issued) = &prepared.issued {
        let note = format!(
            "new {} {} written to Secret {}",
            issued.what, issued.key_id, out.name
        );
        ctx.event(obj, false, issued.reason, note).await;
    }
    Ok(written)
}

async fn cleanup(obj: Arc<FhirClientApp>, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    ctx.metrics
        .set_credential_expiry(&format!("{ns}/{}", obj.name_any()), None);
    ctx.metrics
        .set_credential_schedule(&format!("{ns}/{}", obj.name_any()), None, None);
    ctx.metrics
        .set_stalled("FhirClientApp", &format!("{ns}/{}", obj.name_any()), None);
    ctx.forget(&format!("FhirClientApp/{ns}/{}", obj.name_any()));
    ctx.drift
        .untrack(&super::drift::Owner::client(&ns, &obj.name_any()));
    // The tenant it was registered in: as in apply, else the one its status recorded (the resource
    // app it followed may be gone already).
    let target_app = match target::resource_app_of(&obj) {
        Some((ns, name)) => ctx.resource_app(&ns, &name).await.ok().flatten(),
        None => None,
    };
    let tenant = target::tenant_for(&obj, target_app.as_ref())
        .or_else(|| target::recorded_tenant(obj.status.as_ref()?));
    let id = identity(ctx, &obj);
    let policy = (obj.spec.deletion_policy).unwrap_or(ctx.config.default_deletion_policy);
    // Role assignments first: once the service principal is gone ARM shows them as "Identity not
    // found" and nobody can tell whose they were.
    if policy != crate::api::DeletionPolicy::Orphan && obj.spec.target.managed.is_some() {
        let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
        rbac::remove_all(ctx, &graph, &obj).await?;
    }
    if policy == crate::api::DeletionPolicy::Orphan {
        let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
        super::revoke::orphan(ctx, &obj, &graph).await?;
    }
    // The fhirUser claim's policy is the target's: unassigned, whatever becomes of the application.
    if obj.status.as_ref().is_some_and(|s| s.fhir_user.is_some()) {
        let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
        let mut status = obj.status.clone().unwrap_or_default();
        fhir_user::take_off(&graph, &mut status).await?;
    }
    remove_application(ctx, obj.as_ref(), policy, tenant.as_ref(), &id).await
}

pub fn error_policy(_obj: Arc<FhirClientApp>, err: &Error, ctx: Arc<Context>) -> Action {
    super::backoff(err, &ctx, "FhirClientApp")
}
