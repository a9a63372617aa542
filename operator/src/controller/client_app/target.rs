//! The target step: what the client's FhirResourceApp (or the managed FHIR service) publishes, in
//! the tenant the client is registered in, or why the client must wait for it.

use kube::ResourceExt;

use crate::api::{AppStatus, FhirClientApp, FhirResourceApp, TenantSpec};
use crate::controller::application::WRITE_APPS;
use crate::controller::{Context, Error, needs};
use crate::desired::client::{MANAGED_FHIR_APP_ID, MANAGED_FHIR_AUDIENCE, ResolvedTarget};
use crate::desired::conditions::is_ready;
use crate::desired::resource::{self, Entitlement};
use crate::graph::GraphClient;

/// The target and its service principal object ID (for grants/assignments), or why we must wait.
pub enum Target {
    Resolved(ResolvedTarget, Option<String>),
    Wait(String),
}

/// The tenant a client is registered in: its own `spec.tenant`, else its resource app's (a FHIR server
/// accepts tokens from its own tenant only, so clients follow the resource app there by default).
pub fn effective_tenant(
    own: Option<&TenantSpec>,
    target_app: Option<&FhirResourceApp>,
) -> Option<TenantSpec> {
    own.or_else(|| target_app.and_then(|ra| ra.spec.tenant.as_ref()))
        .cloned()
}

/// [`effective_tenant`] for `obj`. A client in another namespace than its resource app follows
/// that app's tenant ID but never its `credentialsSecretRef`: a Secret of the FHIR server's owner is
/// not used on behalf of another namespace (its own `spec.tenant`, or the operator's credentials).
pub fn tenant_for(obj: &FhirClientApp, target_app: Option<&FhirResourceApp>) -> Option<TenantSpec> {
    let mut t = effective_tenant(obj.spec.tenant.as_ref(), target_app)?;
    let own_ns = obj.namespace().unwrap_or_default();
    let cross = obj
        .spec
        .target
        .resource_app_ref
        .as_ref()
        .is_some_and(|r| r.namespace_or(&own_ns) != own_ns);
    if cross && obj.spec.tenant.is_none() {
        t.credentials_secret_ref = None;
    }
    Some(t)
}

/// In single-namespace mode (`FHIR_OP_WATCH_NAMESPACE`) a FhirResourceApp in another namespace is out
/// of the operator's reach (no watch there, and the chart grants no rights there): a spec error, not
/// something a retry can mend.
pub fn out_of_reach(obj: &FhirClientApp, watched: Option<&str>) -> Option<Error> {
    let watched = watched?;
    let own_ns = obj.namespace().unwrap_or_default();
    let r = obj.spec.target.resource_app_ref.as_ref()?;
    let ns = r.namespace_or(&own_ns);
    (ns != watched).then(|| {
        Error::InvalidSpec(format!(
            "target.resourceAppRef names FhirResourceApp {ns}/{}, but this operator watches namespace {watched} only: install it cluster-wide (no watchNamespaces) for cross-namespace references, or target a FhirResourceApp in {watched}",
            r.name
        ))
    })
}

/// The credentials Secret `tenant` names, if any.
pub fn credentials_secret(tenant: Option<&TenantSpec>) -> Option<String> {
    Some(tenant?.credentials_secret_ref.as_ref()?.name.clone())
}

/// The tenant the status says the client was registered in, with the credentials Secret it was
/// reached with (for a deletion after the FhirResourceApp it followed is gone).
pub fn recorded_tenant(status: &AppStatus) -> Option<TenantSpec> {
    Some(TenantSpec {
        tenant_id: Some(status.tenant_id.clone()?),
        credentials_secret_ref: status
            .tenant_credentials_secret
            .as_ref()
            .map(|name| crate::api::LocalObjectReference { name: name.clone() }),
    })
}

/// `(namespace, name)` of the FhirResourceApp the client's tokens are for: `resourceAppRef`, or
/// for the managed service the one standing for its audience (`audienceResourceAppRef`, in the
/// client's namespace).
pub fn resource_app_of(obj: &FhirClientApp) -> Option<(String, String)> {
    let own_ns = obj.namespace().unwrap_or_default();
    let t = &obj.spec.target;
    if let Some(r) = &t.resource_app_ref {
        return Some((r.namespace_or(&own_ns).to_string(), r.name.clone()));
    }
    let r = t.managed.as_ref()?.audience_resource_app_ref.as_ref()?;
    Some((own_ns, r.name.clone()))
}

/// `namespace/name` of the client's FhirResourceApp ([`resource_app_of`]; empty for the managed
/// service without one).
pub fn reference(obj: &FhirClientApp) -> String {
    resource_app_of(obj)
        .map(|(ns, name)| format!("{ns}/{name}"))
        .unwrap_or_default()
}

pub async fn resolve(
    obj: &FhirClientApp,
    ctx: &Context,
    target_app: Option<FhirResourceApp>,
    graph: &GraphClient,
) -> Result<Target, Error> {
    let own_ns = obj.namespace().unwrap_or_default();
    if let Some(r) = &obj.spec.target.resource_app_ref {
        let ns = r.namespace_or(&own_ns);
        let Some(ra) = target_app else {
            return Ok(Target::Wait(format!(
                "waiting for FhirResourceApp {ns}/{} to exist",
                r.name
            )));
        };
        let Some((app_id, audience, st)) = ready(&ra) else {
            return Ok(Target::Wait(format!(
                "waiting for FhirResourceApp {ns}/{} to become Ready",
                r.name
            )));
        };
        if let Some(resource_tenant) = st.tenant_id.as_deref()
            && resource_tenant != graph.tenant_id()
        {
            return Err(Error::TenantMismatch(format!(
                "this client would be registered in tenant {} but FhirResourceApp {ns}/{} is in tenant {resource_tenant}, and the FHIR server accepts tokens from its own tenant only: remove spec.tenant to follow the resource app, or set spec.tenant.tenantId to {resource_tenant}",
                graph.tenant_id(),
                r.name
            )));
        }
        let (scopes, roles) = published(&ra, &st, ctx);
        return Ok(Target::Resolved(
            ResolvedTarget {
                app_id,
                fhir_url: ra.spec.fhir_url.clone(),
                audience,
                scopes,
                roles,
                managed: false,
            },
            st.service_principal_object_id,
        ));
    }
    resolve_managed(obj, target_app, graph).await
}

/// A Ready resource app's application ID, audience and status; `None` until it is Ready.
fn ready(ra: &FhirResourceApp) -> Option<(String, String, AppStatus)> {
    let st = ra.status.clone().unwrap_or_default();
    if !is_ready(&st.conditions, ra.metadata.generation) {
        return None;
    }
    Some((st.client_id.clone()?, st.audience.clone()?, st))
}

/// The scopes and roles a Ready resource app publishes, from its status (a status written before the
/// operator recorded them there is computed from the spec, as the resource app's reconcile does).
fn published(
    ra: &FhirResourceApp,
    st: &AppStatus,
    ctx: &Context,
) -> (Vec<Entitlement>, Vec<Entitlement>) {
    match &st.published {
        Some(p) => (entitlements(&p.scopes), entitlements(&p.app_roles)),
        None => {
            let rid = crate::controller::resource_app::identity(ctx, ra);
            resource::published(&ra.spec, &rid)
        }
    }
}

/// The managed FHIR service: Microsoft's first-party application, as its service principal in this
/// tenant publishes it, or the FhirResourceApp that stands for its audience.
async fn resolve_managed(
    obj: &FhirClientApp,
    audience_app: Option<FhirResourceApp>,
    graph: &GraphClient,
) -> Result<Target, Error> {
    let m = obj
        .spec
        .target
        .managed
        .clone()
        .ok_or_else(|| Error::InvalidSpec("target needs resourceAppRef or managed".into()))?;
    if let Some(r) = &m.audience_resource_app_ref {
        return managed_with_audience_app(&m, &r.name, audience_app);
    }
    // The first-party app's service principal in this tenant tells us its scope and role IDs.
    let sp = graph
        .get_service_principal_by_app_id(MANAGED_FHIR_APP_ID)
        .await
        .map_err(needs("read service principals", WRITE_APPS))?;
    // Without it no token for the service can be issued in this tenant (AADSTS500011), so a
    // registration would look Ready and not work: say what to do instead.
    let Some(sp) = sp else {
        return Err(Error::ManagedServicePrincipalMissing {
            tenant: graph.tenant_id().to_string(),
        });
    };
    let scopes = sp
        .oauth2_permission_scopes
        .iter()
        .filter_map(|s| entitlement(&s.id, &s.value))
        .collect();
    let roles = sp
        .app_roles
        .iter()
        .filter_map(|s| entitlement(&s.id, &s.value))
        .collect();
    let (fhir_url, audience) = managed_endpoints(&m)?;
    Ok(Target::Resolved(
        ResolvedTarget {
            app_id: MANAGED_FHIR_APP_ID.into(),
            fhir_url,
            audience,
            scopes,
            roles,
            managed: true,
        },
        Some(sp.id),
    ))
}

/// The managed service whose audience a FhirResourceApp stands for: that application's ID, audience
/// and what it publishes, the service's URL; wait until it is Ready.
fn managed_with_audience_app(
    m: &crate::api::ManagedTarget,
    name: &str,
    audience_app: Option<FhirResourceApp>,
) -> Result<Target, Error> {
    let waiting = || {
        Target::Wait(format!(
            "waiting for FhirResourceApp {name} (target.managed.audienceResourceAppRef) to become Ready"
        ))
    };
    let Some(ra) = audience_app else {
        return Ok(waiting());
    };
    let Some((app_id, audience, st)) = ready(&ra) else {
        return Ok(waiting());
    };
    let (fhir_url, _) = managed_endpoints(m)?;
    let (scopes, roles) = match &st.published {
        Some(p) => (entitlements(&p.scopes), entitlements(&p.app_roles)),
        None => return Ok(waiting()),
    };
    let target = ResolvedTarget {
        app_id,
        fhir_url,
        audience,
        scopes,
        roles,
        managed: true,
    };
    Ok(Target::Resolved(target, st.service_principal_object_id))
}

fn entitlements(list: &[crate::api::PublishedEntitlement]) -> Vec<Entitlement> {
    let one = |e: &crate::api::PublishedEntitlement| Entitlement {
        id: e.id.clone(),
        value: e.value.clone(),
    };
    list.iter().map(one).collect()
}

/// The managed service's URL and audience: as the spec gives them, else derived from its resource id.
fn managed_endpoints(m: &crate::api::ManagedTarget) -> Result<(String, String), Error> {
    let id = match m.resource_id.as_deref() {
        Some(r) => Some(
            crate::desired::managed::parse_resource_id(r).ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "target.managed.resourceId is not a FHIR service's resource id: {r}"
                ))
            })?,
        ),
        None => None,
    };
    let fhir_url = m
        .fhir_url
        .clone()
        .or_else(|| id.as_ref().map(|i| i.fhir_url()))
        .ok_or_else(|| Error::InvalidSpec("target.managed needs resourceId or fhirUrl".into()))?;
    let audience = m
        .audience
        .clone()
        .or_else(|| id.as_ref().and_then(|i| i.audience()))
        .or_else(|| crate::desired::managed::audience_of_url(&fhir_url))
        .unwrap_or_else(|| MANAGED_FHIR_AUDIENCE.into());
    Ok((fhir_url, audience))
}

/// A published scope or role, as far as a client can request it (one without a value cannot be).
fn entitlement(id: &str, value: &Option<String>) -> Option<crate::desired::resource::Entitlement> {
    Some(crate::desired::resource::Entitlement {
        id: id.to_string(),
        value: value.clone()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(target: serde_json::Value) -> FhirClientApp {
        serde_json::from_value(
            json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"type": "Public", "target": target}}),
        )
        .unwrap()
    }

    #[test]
    fn the_resource_app_is_the_ref_or_the_managed_services_audience_app_in_the_clients_namespace() {
        let pair = |ns: &str, n: &str| Some((ns.to_string(), n.to_string()));
        let own = client(json!({"resourceAppRef": {"name": "fhir"}}));
        assert_eq!(resource_app_of(&own), pair("team", "fhir"));
        let other = client(json!({"resourceAppRef": {"name": "fhir", "namespace": "platform"}}));
        assert_eq!(resource_app_of(&other), pair("platform", "fhir"));
        assert_eq!(reference(&other), "platform/fhir");
        let audience = client(
            json!({"managed": {"fhirUrl": "https://ws-f.fhir.azurehealthcareapis.com",
            "audienceResourceAppRef": {"name": "ahds"}}}),
        );
        assert_eq!(resource_app_of(&audience), pair("team", "ahds"));
        let plain =
            client(json!({"managed": {"fhirUrl": "https://ws-f.fhir.azurehealthcareapis.com"}}));
        assert_eq!(resource_app_of(&plain), None);
        assert_eq!(reference(&plain), "");
    }
}
