//! The Entra application behind either kind: converge it to the desired body (creating it by
//! `uniqueName` upsert), tell the user what changed, and delete it when the resource goes.

use kube::Resource;
use kube::runtime::controller::Action;

use super::{Context, Error, needs, restore};
use crate::api::{AppStatus, DeletionPolicy, TenantSpec};
use crate::desired::naming::{ResourceIdentity, owned_by};
use crate::desired::{self, diff};
use crate::graph::GraphClient;
use crate::graph::types::Application;

pub const WRITE_APPS: &str = "Application.ReadWrite.OwnedBy (or Application.ReadWrite.All)";
/// Listing Entra's deleted items: Learn `directory-deleteditems-list` names Application.Read.All as
/// the least privilege and is silent on OwnedBy (docs/permissions.md).
pub const READ_DELETED: &str = "Application.Read.All";

/// Creates or converges the application (with the disable-first phase), returns it. A create that
/// a deleted application of ours refuses restores that one instead ([`restore`]).
pub async fn converge_app(
    graph: &GraphClient,
    unique_name: &str,
    desired: &desired::application::Application,
    id: &ResourceIdentity<'_>,
    adopt: bool,
) -> Result<(serde_json::Value, Option<&'static str>), Error> {
    let existing = graph
        .get_application_by_unique_name(unique_name)
        .await
        .map_err(needs("read applications", WRITE_APPS))?;
    let Some(actual) = existing else {
        return create_or_restore(graph, unique_name, desired, id, adopt).await;
    };
    let tags: Vec<String> = serde_json::from_value(actual["tags"].clone()).unwrap_or_default();
    if !owned_by(&tags, id) && !adopt {
        return Err(Error::NotOwned {
            unique_name: unique_name.to_string(),
        });
    }
    let (app, changed) = converge_existing(graph, desired, actual).await?;
    Ok((app, changed.then_some("Updated")))
}

/// The upsert by `uniqueName`; refused because a deleted application holds the name or the
/// identifier URI, the one holding the name restored (if ours) and converged. When none holds the
/// name, the refusal stands (the resource app's register step names the URI's holder).
async fn create_or_restore(
    graph: &GraphClient,
    unique_name: &str,
    desired: &desired::application::Application,
    id: &ResourceIdentity<'_>,
    adopt: bool,
) -> Result<(serde_json::Value, Option<&'static str>), Error> {
    let body = desired::application::Application {
        unique_name: Some(unique_name.to_string()),
        ..desired.clone()
    }
    .body();
    match graph.upsert_application(unique_name, &body).await {
        Ok((app, created)) => Ok((app, Some(if created { "Created" } else { "Updated" }))),
        Err(e) if restore::unique_name_held(&e) || restore::identifier_uri_held(&e) => {
            let restored = restore::restore_held_name(graph, unique_name, id, adopt, e).await?;
            let (app, _) = converge_existing(graph, desired, restored).await?;
            Ok((app, Some("Restored")))
        }
        Err(e) => Err(needs("create the application", WRITE_APPS)(e)),
    }
}

/// Patches `actual` to `desired` (disable-first, then the rest); returns it as it now is and
/// whether anything changed.
async fn converge_existing(
    graph: &GraphClient,
    desired: &desired::application::Application,
    actual: serde_json::Value,
) -> Result<(serde_json::Value, bool), Error> {
    let oid = actual["id"].as_str().unwrap_or_default().to_string();
    let desired = desired.body();
    let mut changed = false;
    if let Some(phase1) = diff::disable_phase(&desired, &actual) {
        graph
            .patch_application(&oid, &phase1)
            .await
            .map_err(needs("update the application", WRITE_APPS))?;
        changed = true;
    }
    if let Some(patch) = diff::patch_body(&desired, &actual) {
        graph
            .patch_application(&oid, &patch)
            .await
            .map_err(needs("update the application", WRITE_APPS))?;
        changed = true;
    }
    let mut app = actual;
    if changed && let Some(o) = desired.as_object() {
        for (k, v) in o {
            app[k] = v.clone();
        }
    }
    Ok((app, changed))
}

/// An Event for what [`converge_app`] changed; a create for a resource whose status already names
/// another object ID means the application was deleted out of band and has been recreated.
pub async fn report_app_change<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    status: &AppStatus,
    change: Option<&str>,
    unique_name: &str,
    parsed: &Application,
) {
    let Some(c) = change else { return };
    let recreated = c == "Created"
        && status
            .application_object_id
            .as_deref()
            .is_some_and(|o| o != parsed.id);
    let (reason, note) = if recreated {
        (
            "Recreated",
            format!("application {unique_name} was missing in Entra ID and was recreated"),
        )
    } else if c == "Restored" {
        (
            "Restored",
            format!(
                "restored application {unique_name} (appId {}) from Entra ID's deleted items; its credentials from before the deletion were removed",
                parsed.app_id
            ),
        )
    } else if c == "Created" {
        (
            "Created",
            format!(
                "created application {unique_name} (appId {})",
                parsed.app_id
            ),
        )
    } else {
        (
            "Updated",
            format!("updated application {unique_name} to match the spec"),
        )
    };
    ctx.event(obj, recreated, reason, note).await;
}

/// The cleanup of either kind: `deletionPolicy: Orphan` leaves the application (an Event says so);
/// otherwise it is deleted in `tenant` with its service principal (and so its grants and
/// assignments). The tenant's credentials Secret is held while in use (`credentials_hold`); when it
/// is gone all the same, the operator's own credentials are tried in that tenant, and if they may
/// not either the finalizer stays with a `CleanupBlocked` Event saying what to do: nothing is left
/// live in Entra silently.
pub async fn remove_application<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    policy: DeletionPolicy,
    tenant: Option<&TenantSpec>,
    id: &ResourceIdentity<'_>,
) -> Result<Action, Error> {
    if policy == DeletionPolicy::Orphan {
        let note = "deletionPolicy Orphan: the Entra application is left in place".to_string();
        ctx.event(obj, false, "Orphaned", note).await;
        return Ok(Action::await_change());
    }
    let graph = match ctx.graph_for(id.namespace, tenant).await {
        Ok(g) => g,
        Err(Error::TenantCredentials(m)) => {
            return delete_without_credentials(ctx, obj, policy, tenant, id, m).await;
        }
        Err(e) => return Err(e),
    };
    delete_app(
        &graph,
        &id.unique_name(),
        id,
        policy == DeletionPolicy::Purge,
    )
    .await?;
    Ok(Action::await_change())
}

/// The tenant's credentials Secret is unusable: the operator's own credentials in that tenant (a
/// multi-tenant operator application) may still delete it; else the deletion waits, reported.
async fn delete_without_credentials<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    policy: DeletionPolicy,
    tenant: Option<&TenantSpec>,
    id: &ResourceIdentity<'_>,
    why: String,
) -> Result<Action, Error> {
    let own = TenantSpec {
        tenant_id: tenant.and_then(|t| t.tenant_id.clone()),
        credentials_secret_ref: None,
    };
    let tried = match ctx.graph_for(id.namespace, Some(&own)).await {
        Ok(graph) => {
            delete_app(
                &graph,
                &id.unique_name(),
                id,
                policy == DeletionPolicy::Purge,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let Err(e) = tried else {
        tracing::info!(unique_name = %id.unique_name(), "deleted with the operator's own credentials (the tenant credentials Secret was unusable)");
        return Ok(Action::await_change());
    };
    let kind = K::kind(&()).to_string();
    let name = obj.meta().name.clone().unwrap_or_default();
    let blocked = Error::CleanupBlocked(format!(
        "the application {} in tenant {} cannot be deleted: {why}; the operator's own credentials may not either ({}). Recreate that Secret (outside a terminating namespace) and the deletion finishes; or, to leave the application in Entra, remove the finalizer: kubectl -n {} patch {kind} {name} --type=json -p '[{{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}}]'",
        id.unique_name(),
        own.tenant_id.as_deref().unwrap_or("(the operator's)"),
        crate::controller::shorten(&e.to_string(), 200),
        id.namespace,
    ));
    ctx.event(obj, true, "CleanupBlocked", blocked.to_string())
        .await;
    Err(blocked)
}

/// Deletes the application with `unique_name` and its service principal if this operator owns it;
/// Entra keeps both in its deleted items for 30 days, unless `purge` deletes them for good there
/// too (the service principal first: purging an application leaves its service principal deleted,
/// Learn `howto-restore-app`).
pub async fn delete_app(
    graph: &GraphClient,
    unique_name: &str,
    id: &ResourceIdentity<'_>,
    purge: bool,
) -> Result<(), Error> {
    let Some(app) = graph
        .find_application_to_delete(unique_name)
        .await
        .map_err(needs("read applications", WRITE_APPS))?
    else {
        return match purge {
            true => purge_deleted_leftovers(graph, unique_name, id).await,
            false => Ok(()),
        };
    };
    let parsed: Application = crate::graph::types::parse_application("application", &app)?;
    if !owned_by(&parsed.tags, id) {
        tracing::info!(
            unique_name,
            "application not owned by this resource; leaving it"
        );
        return Ok(());
    }
    let sp = graph
        .get_service_principal_by_app_id(&parsed.app_id)
        .await?;
    if let Some(sp) = &sp {
        graph
            .delete_service_principal(&sp.id)
            .await
            .map_err(needs("delete the service principal", WRITE_APPS))?;
    }
    graph
        .delete_application(&parsed.id)
        .await
        .map_err(needs("delete the application", WRITE_APPS))?;
    if purge {
        if let Some(sp) = &sp {
            purge_one(graph, &sp.id).await?;
        }
        purge_one(graph, &parsed.id).await?;
    }
    Ok(())
}

/// A Purge whose delete went through before (a cleanup cut short): what of ours is still in the
/// deleted items goes.
async fn purge_deleted_leftovers(
    graph: &GraphClient,
    unique_name: &str,
    id: &ResourceIdentity<'_>,
) -> Result<(), Error> {
    let deleted = graph
        .find_deleted_application(unique_name)
        .await
        .map_err(needs("read the deleted applications", READ_DELETED))?;
    let Some(app) = deleted.filter(|a| owned_by(&a.tags, id)) else {
        return Ok(());
    };
    let sp = graph
        .find_deleted_service_principal(&app.app_id)
        .await
        .map_err(needs("read the deleted service principals", READ_DELETED))?;
    if let Some(sp) = sp {
        purge_one(graph, &sp.id).await?;
    }
    purge_one(graph, &app.id).await
}

async fn purge_one(graph: &GraphClient, object_id: &str) -> Result<(), Error> {
    graph
        .purge_deleted(object_id)
        .await
        .map_err(needs("purge a deleted item", WRITE_APPS))
}
