//! The hold on tenant credentials Secrets (`spec.tenant.credentialsSecretRef`): while a
//! FhirResourceApp or FhirClientApp may still need a Secret to delete its application in that tenant,
//! the Secret keeps the operator's finalizer, so deleting the namespace (everything at once), or a
//! Helm uninstall or Argo CD prune that deletes the Secret first, can no longer strand live
//! applications in Entra (issue 23 item 2). The hold goes once no resource of the namespace that
//! uses the Secret is left with its own cleanup to do.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::client_app::target::tenant_for;
use super::{Context, Error, FINALIZER};
use crate::api::{FhirClientApp, FhirResourceApp, TenantSpec};

/// The finalizer the operator puts on a credentials Secret it uses.
pub const HOLD_FINALIZER: &str = "fhirapps.io/credentials-in-use";
/// The label that selects held Secrets for the operator's (label-selected) watch.
pub const HOLD_LABEL: &str = "fhirapps.io/credentials-hold";
pub const HOLD_SELECTOR: &str = "fhirapps.io/credentials-hold=true";
/// The field manager of the hold (server-side apply).
const HOLD_MANAGER: &str = "fhirapps.io/credentials-hold";

/// Puts the hold on `secret` unless it is there; returns the Secret's resourceVersion afterwards. A
/// Secret already being deleted cannot take a new finalizer (the API server refuses it); its users
/// then clean up while it lasts.
pub async fn hold(client: &Client, secret: &Secret) -> Option<String> {
    let has = secret.finalizers().iter().any(|f| f == HOLD_FINALIZER);
    if has || secret.metadata.deletion_timestamp.is_some() {
        return secret.resource_version();
    }
    let ns = secret.namespace().unwrap_or_default();
    match apply_hold(client, &ns, &secret.name_any(), true).await {
        Ok(held) => held.resource_version(),
        Err(e) => {
            // Retried at the next use (every reconcile reads the Secret); anything lasting (say,
            // RBAC without patch) leaves the Secret unheld, as before this hold existed.
            tracing::warn!(secret = %format!("{ns}/{}", secret.name_any()), error = %e, "could not hold the tenant credentials Secret");
            secret.resource_version()
        }
    }
}

/// Server-side apply of the hold (finalizer and label) under a field manager of its own: the
/// finalizers list is a set, so this never conflicts with other writers, and applying without them
/// (`on = false`) removes exactly what this manager added.
async fn apply_hold(
    client: &Client,
    ns: &str,
    name: &str,
    on: bool,
) -> Result<Secret, kube::Error> {
    let metadata = if on {
        json!({"name": name, "finalizers": [HOLD_FINALIZER], "labels": {HOLD_LABEL: "true"}})
    } else {
        json!({"name": name})
    };
    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata});
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(HOLD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
}

/// The credentials Secret `tenant` names, if any.
fn secret_of(tenant: Option<&TenantSpec>) -> Option<&str> {
    Some(tenant?.credentials_secret_ref.as_ref()?.name.as_str())
}

/// Still needed: not being deleted, or its own cleanup not done (our finalizer still on it).
fn needs_it<K: kube::Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_none() || obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// The resources of namespace `ns` that use Secret `name` for their tenant and still need it.
pub fn users(
    resource_apps: &[Arc<FhirResourceApp>],
    clients: &[Arc<FhirClientApp>],
    ns: &str,
    name: &str,
) -> Vec<String> {
    let here = |o: &dyn Fn() -> Option<String>| o().as_deref() == Some(ns);
    let mut out: Vec<String> = resource_apps
        .iter()
        .filter(|ra| here(&|| ra.namespace()))
        .filter(|ra| secret_of(ra.spec.tenant.as_ref()) == Some(name) && needs_it(ra.as_ref()))
        .map(|ra| format!("FhirResourceApp {ns}/{}", ra.name_any()))
        .collect();
    for c in clients.iter().filter(|c| here(&|| c.namespace())) {
        let target = c.spec.target.resource_app_ref.as_ref().and_then(|r| {
            resource_apps.iter().find(|ra| {
                ra.name_any() == r.name && ra.namespace().as_deref() == Some(r.namespace_or(ns))
            })
        });
        // Its FhirResourceApp may be gone already: the status remembers the Secret it used.
        let tenant = tenant_for(c, target.map(|a| a.as_ref()));
        let recorded = c
            .status
            .as_ref()
            .and_then(|s| s.tenant_credentials_secret.as_deref());
        let uses = secret_of(tenant.as_ref()) == Some(name) || recorded == Some(name);
        if uses && needs_it(c.as_ref()) {
            out.push(format!("FhirClientApp {ns}/{}", c.name_any()));
        }
    }
    out
}

/// Keeps the hold while a resource needs the Secret (looking again every few seconds while the
/// Secret is being deleted: the watch caches may lag the last cleanup); else releases it.
pub async fn reconcile(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let (apps, clients) = (ctx.resource_apps().await?, ctx.client_apps().await?);
    let users = users(&apps, &clients, &ns, &name);
    let deleting = secret.metadata.deletion_timestamp.is_some();
    if !users.is_empty() {
        if deleting {
            tracing::info!(secret = %format!("{ns}/{name}"), users = ?users, "tenant credentials Secret deleted; kept until these have deleted their applications");
            return Ok(Action::requeue(Duration::from_secs(3)));
        }
        // A check of the watch caches only (no Graph call): kept at the pace before delta.
        let again = ctx.config.resync.min(ctx.config.resync_unwatched);
        return Ok(Action::requeue(again));
    }
    release(&ctx.client, &secret).await?;
    Ok(Action::await_change())
}

async fn release(client: &Client, secret: &Secret) -> Result<(), Error> {
    if !secret.finalizers().iter().any(|f| f == HOLD_FINALIZER) {
        return Ok(());
    }
    let ns = secret.namespace().unwrap_or_default();
    match apply_hold(client, &ns, &secret.name_any(), false).await {
        Ok(_) => Ok(()),
        // Gone already (its last finalizer was ours).
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The held Secret a FhirResourceApp's or FhirClientApp's tenant names (triggers the hold's
/// reconcile when one of them changes or goes).
pub fn secret_ref_of(ns: Option<String>, tenant: Option<&TenantSpec>) -> Option<ObjectRef<Secret>> {
    Some(ObjectRef::new(secret_of(tenant)?).within(&ns?))
}

pub fn error_policy(_s: Arc<Secret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "tenant credentials hold");
    Action::requeue(Duration::from_secs(5))
}
