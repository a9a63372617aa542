//! Taking away what an access policy no longer allows, in Entra: the removals
//! ([`desired::revocation`](crate::desired::revocation) plans them) and the client's side of it —
//! the FhirResourceApps it no longer targets, its cross-namespace target's policy, and what an
//! orphaned client must not keep. The API's own side is `resource_app::enforce`.

use kube::ResourceExt;

use crate::api::{AppStatus, FhirClientApp, GrantHolder};
use crate::controller::{Context, Error, needs};
use crate::desired::resource::Entitlement;
use crate::desired::revocation::{self, Allowance, GrantChange, Resource, Revocation};
use crate::graph::GraphClient;

use super::resource_app::unless_not_permitted;

/// The Graph permissions revocation needs (docs/permissions.md).
pub const ROLES_PERM: &str = "AppRoleAssignment.ReadWrite.All";
pub const GRANT_PERM: &str = "DelegatedPermissionGrant.ReadWrite.All";

/// Carries out `plan` on the API's service principal `resource_sp`.
pub async fn remove(
    graph: &GraphClient,
    resource_sp: &str,
    plan: &Revocation,
) -> Result<(), Error> {
    for id in &plan.assignments {
        graph
            .remove_assigned_to(resource_sp, id)
            .await
            .map_err(needs("remove app role assignments", ROLES_PERM))?;
    }
    for change in &plan.grants {
        match change {
            GrantChange::Narrow { id, scope } => graph
                .update_grant(id, scope)
                .await
                .map_err(needs("narrow delegated permission grants", GRANT_PERM))?,
            GrantChange::Delete(id) => graph
                .delete_grant(id)
                .await
                .map_err(needs("remove delegated permission grants", GRANT_PERM))?,
        }
    }
    Ok(())
}

/// `namespace/name` of the FhirResourceApp `obj` targets, if any.
pub fn current_target(obj: &FhirClientApp) -> Option<String> {
    let (ns, name) = super::client_app::target::resource_app_of(obj)?;
    Some(format!("{ns}/{name}"))
}

fn split(reference: &str) -> (&str, &str) {
    reference.split_once('/').unwrap_or(("", reference))
}

/// The client's revoke step, before any step its owner can make fail: what it holds on APIs it no
/// longer targets is removed (and they leave `status.grantedOn`), and on a target in another
/// namespace whatever that target's policy does not allow. A client in its target's namespace is
/// left to the API's own enforcement (same owner), which keeps its reconcile free of extra reads.
pub async fn apply(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    status: &mut AppStatus,
) -> Result<(), Error> {
    let Some(sp) = status.service_principal_object_id.clone() else {
        return Ok(());
    };
    let own = obj.namespace().unwrap_or_default();
    let current = current_target(obj);
    let cross = current.as_deref().is_some_and(|c| split(c).0 != own);
    let former: Vec<GrantHolder> = status
        .granted_on
        .iter()
        .filter(|h| Some(&h.resource_app) != current.as_ref())
        .cloned()
        .collect();
    if former.is_empty() && !cross {
        return Ok(());
    }
    let Some(holdings) = Holdings::read(graph, &sp).await? else {
        return Ok(());
    };
    for h in &former {
        take_all(ctx, obj, graph, &holdings, h).await?;
        status.granted_on.retain(|g| g != h);
    }
    if let Some(c) = current.filter(|_| cross) {
        enforce_target(ctx, obj, graph, &holdings, &c).await?;
    }
    Ok(())
}

/// App role assignments and delegated grants, read once: a client service principal's (on every
/// API), or an API's (of every principal).
pub struct Holdings {
    pub assignments: Vec<crate::graph::types::AppRoleAssignment>,
    pub grants: Vec<crate::graph::types::PermissionGrant>,
}

impl Holdings {
    /// What client service principal `sp` holds. `None` when the operator may not read it (then it
    /// cannot have granted it either).
    pub async fn read(graph: &GraphClient, sp: &str) -> Result<Option<Self>, Error> {
        let assignments = graph.list_app_role_assignments(sp).await;
        let grants = graph.list_grants(sp).await;
        Self::from_reads(assignments, grants)
    }

    /// What every principal holds on the API whose service principal is `resource_sp`.
    pub async fn on_api(graph: &GraphClient, resource_sp: &str) -> Result<Option<Self>, Error> {
        let assignments = graph.list_assigned_to_known(resource_sp).await;
        let grants = graph.list_grants_on(resource_sp).await;
        Self::from_reads(assignments, grants)
    }

    /// `None` when the principal is gone (a 404: nothing is held by or on it; the register step
    /// recreates what must exist) or the operator may not read the lists.
    fn from_reads(
        assignments: Result<Vec<crate::graph::types::AppRoleAssignment>, crate::graph::GraphError>,
        grants: Result<Vec<crate::graph::types::PermissionGrant>, crate::graph::GraphError>,
    ) -> Result<Option<Self>, Error> {
        let gone = |e: Option<&crate::graph::GraphError>| {
            matches!(e, Some(crate::graph::GraphError::NotFound { .. }))
        };
        if gone(assignments.as_ref().err()) || gone(grants.as_ref().err()) {
            return Ok(None);
        }
        let assignments = assignments.map_err(needs("list app role assignments", ROLES_PERM));
        let grants = grants.map_err(needs("list delegated permission grants", GRANT_PERM));
        let (Some(assignments), Some(grants)) = (
            unless_not_permitted(assignments)?,
            unless_not_permitted(grants)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Self {
            assignments,
            grants,
        }))
    }

    /// The part held by client service principal `sp`.
    pub fn of(&self, sp: &str) -> Self {
        Self {
            assignments: self
                .assignments
                .iter()
                .filter(|a| a.principal_id == sp)
                .cloned()
                .collect(),
            grants: self
                .grants
                .iter()
                .filter(|g| g.client_id == sp)
                .cloned()
                .collect(),
        }
    }
}

/// Removes everything the client holds on `holder`'s API.
pub async fn take_all(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    holdings: &Holdings,
    holder: &GrantHolder,
) -> Result<(), Error> {
    let (roles, scopes) = published(ctx, &holder.resource_app).await?;
    let (ns, _) = split(&holder.resource_app);
    let resource = Resource {
        namespace: ns,
        policy: None,
        roles: &roles,
        scopes: &scopes,
    };
    let plan = plan_for(&Allowance::default(), &resource, holder, holdings);
    carry_out(
        ctx,
        obj,
        graph,
        holder,
        &plan,
        "this client no longer targets it",
    )
    .await
}

/// Removes what the policy of the (cross-namespace) target `reference` does not allow.
async fn enforce_target(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    holdings: &Holdings,
    reference: &str,
) -> Result<(), Error> {
    let (ns, name) = split(reference);
    let Some(ra) = ctx.resource_app(ns, name).await? else {
        return Ok(());
    };
    let Some(sp) = ra
        .status
        .as_ref()
        .and_then(|s| s.service_principal_object_id.clone())
    else {
        return Ok(());
    };
    let rid = crate::controller::resource_app::identity(ctx, &ra);
    let (scopes, roles) = crate::desired::resource::published(&ra.spec, &rid);
    let resource = Resource {
        namespace: ns,
        policy: ra.spec.access_policy.as_ref(),
        roles: &roles,
        scopes: &scopes,
    };
    let own = obj.namespace().unwrap_or_default();
    let allow = revocation::allowance(&resource, &own, true);
    let holder = GrantHolder {
        resource_app: reference.to_string(),
        service_principal_object_id: sp,
    };
    let plan = plan_for(&allow, &resource, &holder, holdings);
    carry_out(
        ctx,
        obj,
        graph,
        &holder,
        &plan,
        "its access policy does not allow it",
    )
    .await
}

fn plan_for(
    allow: &Allowance,
    resource: &Resource<'_>,
    holder: &GrantHolder,
    holdings: &Holdings,
) -> Revocation {
    revocation::plan(
        allow,
        resource,
        &holder.service_principal_object_id,
        &holdings.assignments,
        &holdings.grants,
    )
}

async fn carry_out(
    ctx: &Context,
    obj: &FhirClientApp,
    graph: &GraphClient,
    holder: &GrantHolder,
    plan: &Revocation,
    why: &str,
) -> Result<(), Error> {
    if plan.is_empty() {
        return Ok(());
    }
    remove(graph, &holder.service_principal_object_id, plan).await?;
    let note = format!(
        "removed {} on FhirResourceApp {} from this client's service principal in Entra: {why}",
        plan.taken.join(", "),
        holder.resource_app
    );
    ctx.event(obj, true, "AccessRevoked", note).await;
    Ok(())
}

/// The roles and scopes `reference` publishes (its status, else its spec), to name them; empty when
/// it is gone (its API is deleted or orphaned with it: the role IDs name what is removed).
async fn published(
    ctx: &Context,
    reference: &str,
) -> Result<(Vec<Entitlement>, Vec<Entitlement>), Error> {
    let (ns, name) = split(reference);
    let Some(ra) = ctx.resource_app(ns, name).await? else {
        return Ok((vec![], vec![]));
    };
    let rid = crate::controller::resource_app::identity(ctx, &ra);
    let (scopes, roles) = crate::desired::resource::published(&ra.spec, &rid);
    Ok((roles, scopes))
}

/// Records that the client's service principal may now hold grants on its target's API.
pub fn record(status: &mut AppStatus, reference: String, resource_sp: &str) {
    let holder = GrantHolder {
        resource_app: reference,
        service_principal_object_id: resource_sp.to_string(),
    };
    if !status.granted_on.contains(&holder) {
        status
            .granted_on
            .retain(|h| h.resource_app != holder.resource_app);
        status.granted_on.push(holder);
    }
}

/// An orphaned client keeps its application, but nothing on APIs of other namespaces: their owners'
/// policies could no longer take it away. Runs before the finalizer goes.
pub async fn orphan(ctx: &Context, obj: &FhirClientApp, graph: &GraphClient) -> Result<(), Error> {
    let Some(st) = obj.status.as_ref() else {
        return Ok(());
    };
    let Some(sp) = st.service_principal_object_id.clone() else {
        return Ok(());
    };
    let own = obj.namespace().unwrap_or_default();
    let foreign: Vec<&GrantHolder> = st
        .granted_on
        .iter()
        .filter(|h| split(&h.resource_app).0 != own)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let Some(holdings) = Holdings::read(graph, &sp).await? else {
        return Ok(());
    };
    for h in foreign {
        take_all(ctx, obj, graph, &holdings, h).await?;
    }
    Ok(())
}
