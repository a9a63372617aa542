//! The access policy enforced from the API's side: what the operator's client service principals
//! hold on this FHIR API (app role assignments, admin consent, users' own consents) and the policy
//! no longer allows is removed here, in the resource app's own reconcile. Nothing a client's owner
//! does to the client (turning `assignAppRoles` off, breaking its spec or its Secret, pointing it
//! elsewhere) can keep it: this step never reads the client's request, only where it lives and
//! what it targets (docs/access-policy.md, "Revocation").

use std::collections::HashMap;

use kube::ResourceExt;

use crate::api::{FhirClientApp, FhirResourceApp};
use crate::controller::revoke::{Holdings, remove};
use crate::controller::{Context, Error};
use crate::desired::resource as b;
use crate::desired::revocation::{self, Resource};
use crate::graph::GraphClient;

use super::identity;

/// Removes what the policy of `obj` no longer allows from every client service principal the
/// operator manages, on `resource_sp` (this API's service principal). No Graph call while no client
/// of this tenant is registered.
///
/// `resource_sp` is `None` before the API's first registration: nothing can be held on it yet, so
/// only the fingerprint is remembered.
pub async fn apply(
    ctx: &Context,
    graph: &GraphClient,
    obj: &FhirResourceApp,
    resource_sp: Option<&str>,
) -> Result<(), Error> {
    let clients = ctx.client_apps().await?;
    let by_sp = client_index(&clients, graph.tenant_id());
    // The API's reconcile runs for many reasons (its own status write, its outputs); the lists are
    // read again only when what could make a grant disallowed changed — the policy or what the API
    // publishes (its generation), a client that stopped targeting it — or once per resync (an
    // assignment made by hand meanwhile). A client newly registered against it holds only what its
    // own admission allowed.
    let key = memo_key(obj);
    let fp = fingerprint(obj, &by_sp);
    if ctx.fresh(&key, &fp).is_some() {
        return Ok(());
    }
    let Some(resource_sp) = resource_sp.filter(|_| !by_sp.is_empty()) else {
        ctx.remember(
            &key,
            fp,
            ctx.drift.resync_for(graph.tenant_id()),
            String::new(),
        );
        return Ok(());
    };
    let Some(held) = Holdings::on_api(graph, resource_sp).await? else {
        return Ok(());
    };
    // After removals the next reconcile reads again, to see them gone.
    if !revoke_each(ctx, graph, obj, resource_sp, &by_sp, &held).await? {
        ctx.remember(
            &key,
            fp,
            ctx.drift.resync_for(graph.tenant_id()),
            String::new(),
        );
    }
    Ok(())
}

/// The memo key of the enforcement step of `obj`.
pub fn memo_key(obj: &FhirResourceApp) -> String {
    let ns = obj.namespace().unwrap_or_default();
    format!("enforce/{ns}/{}", obj.name_any())
}

/// The registered clients of this tenant by their service principal's object ID.
fn client_index<'a>(
    clients: &'a [std::sync::Arc<FhirClientApp>],
    tenant: &str,
) -> HashMap<String, &'a FhirClientApp> {
    clients
        .iter()
        .filter_map(|c| {
            let st = c.status.as_ref()?;
            (st.tenant_id.as_deref() == Some(tenant))
                .then(|| Some((st.service_principal_object_id.clone()?, c.as_ref())))?
        })
        .collect()
}

/// Plans and carries out the removals for each known client that holds anything on the API, with
/// an Event on the client; whether anything was removed.
async fn revoke_each(
    ctx: &Context,
    graph: &GraphClient,
    obj: &FhirResourceApp,
    resource_sp: &str,
    by_sp: &HashMap<String, &FhirClientApp>,
    held: &Holdings,
) -> Result<bool, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let (scopes, roles) = b::published(&obj.spec, &identity(ctx, obj));
    let resource = Resource {
        namespace: &ns,
        policy: obj.spec.access_policy.as_ref(),
        roles: &roles,
        scopes: &scopes,
    };
    let mut holders: Vec<&String> = held
        .assignments
        .iter()
        .map(|a| &a.principal_id)
        .chain(held.grants.iter().map(|g| &g.client_id))
        .filter(|p| by_sp.contains_key(*p))
        .collect();
    holders.sort();
    holders.dedup();
    let mut removed = false;
    for sp in holders {
        let client = by_sp[sp];
        let client_ns = client.namespace().unwrap_or_default();
        let allow = revocation::allowance(&resource, &client_ns, targets(client, obj, &ns));
        let theirs = held.of(sp);
        let plan = revocation::plan(
            &allow,
            &resource,
            resource_sp,
            &theirs.assignments,
            &theirs.grants,
        );
        if plan.is_empty() {
            continue;
        }
        removed = true;
        remove(graph, resource_sp, &plan).await?;
        let note = format!(
            "the access policy of FhirResourceApp {ns}/{} does not allow {}: removed from this client's service principal in Entra",
            obj.name_any(),
            plan.taken.join(", ")
        );
        ctx.event(client, true, "AccessRevoked", note).await;
    }
    Ok(removed)
}

/// What can make a held grant disallowed, besides Graph and time: the policy and what the API
/// publishes (the spec's generation), and the known client service principals that no longer
/// target this API.
fn fingerprint(obj: &FhirResourceApp, by_sp: &HashMap<String, &FhirClientApp>) -> String {
    let ns = obj.namespace().unwrap_or_default();
    let mut elsewhere: Vec<&String> = by_sp
        .iter()
        .filter(|(_, c)| !targets(c, obj, &ns))
        .map(|(sp, _)| sp)
        .collect();
    elsewhere.sort();
    format!(
        "{}/{}/{elsewhere:?}",
        obj.metadata.uid.as_deref().unwrap_or_default(),
        obj.metadata.generation.unwrap_or_default(),
    )
}

/// Whether client `c` targets FhirResourceApp `obj` (in namespace `ns`).
fn targets(c: &FhirClientApp, obj: &FhirResourceApp, ns: &str) -> bool {
    let own = c.namespace().unwrap_or_default();
    c.spec
        .target
        .resource_app_ref
        .as_ref()
        .is_some_and(|r| r.name == obj.name_any() && r.namespace_or(&own) == ns)
}

/// A read the operator is not permitted: it cannot have granted what that permission grants either
/// (assigning roles and consenting need the same permissions), so there is nothing of its own to
/// take away; said in the log, and the resource app's reconcile goes on.
pub fn unless_not_permitted<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ Error::PermissionDenied { .. }) => {
            tracing::info!(error = %e, "access-policy enforcement skipped: the operator may not read what it would remove");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
