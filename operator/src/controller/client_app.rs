//! FhirClientApp reconciler.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::application::{WRITE_APPS, converge_app, delete_app, report_app_change};
use super::{
    Context, DesiredSecret, Error, FINALIZER, Outcome, apply_secret, finish, managed_labels, needs,
};
use crate::api::{
    AppStatus, CredentialStatus, CredentialType, DeletionPolicy, FhirClientApp, FhirClientAppSpec,
    FhirResourceApp, TenantSpec,
};
use crate::build::certificate as cert;
use crate::build::client::{self as b, MANAGED_FHIR_APP_ID, MANAGED_FHIR_AUDIENCE, ResolvedTarget};
use crate::build::conditions::is_ready;
use crate::build::credentials::{self as creds, Held, Listed, Rotation};
use crate::build::duration;
use crate::build::naming::{AppKind, ResourceIdentity, client_secret_name};
use crate::build::resource::{app_roles, entitlements, scopes};
use crate::graph::types::{Application, PasswordCredential};
use crate::graph::{GraphClient, GraphError};

const ANN_KEY_ID: &str = "fhirapps.io/key-id";
const ANN_SECRET_SHA256: &str = "fhirapps.io/secret-sha256";
const ANN_EXPIRES: &str = "fhirapps.io/expires-at";
const ANN_WRITTEN: &str = "fhirapps.io/written-at";
const ANN_PREV_KEY: &str = "fhirapps.io/previous-key-id";
const ANN_PREV_UNTIL: &str = "fhirapps.io/previous-key-valid-until";

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
    let res = finalizer(&api, FINALIZER, obj, |ev| async {
        match ev {
            Finalizer::Apply(o) => apply(o, &ctx, &api).await,
            Finalizer::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile("FhirClientApp", if res.is_ok() { "ok" } else { "error" });
    res
}

async fn apply(
    obj: Arc<FhirClientApp>,
    ctx: &Context,
    api: &Api<FhirClientApp>,
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
    // status or Secret write): no Graph calls until the resync or credential deadline.
    if let Some(rv) = &secret_rv
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
    let mut written = None;
    let result = apply_inner(&obj, ctx, target_app, &mut status, &mut written).await;
    let memo = match (&result, written) {
        (Ok(Outcome::Ready { requeue, message }), Some(rv)) => {
            Some((format!("{base}/{rv}"), *requeue, message.clone()))
        }
        _ => None,
    };
    let action = finish(ctx, api, obj.as_ref(), old.as_ref(), status, result).await?;
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
    let target_app = match &obj.spec.target.resource_app_ref {
        Some(r) => ctx.resource_app(&ns, &r.name).await?,
        None => None,
    };
    let target_rv = match &obj.spec.target.resource_app_ref {
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

/// The target and its service principal object ID (for grants/assignments), or why we must wait.
enum Target {
    Resolved(ResolvedTarget, Option<String>),
    Wait(String),
}

/// The tenant a client is registered in: its own `spec.tenant`, else its resource app's (a FHIR server
/// accepts tokens from its own tenant only, so clients follow the resource app there by default).
fn effective_tenant(
    own: Option<&TenantSpec>,
    target_app: Option<&FhirResourceApp>,
) -> Option<TenantSpec> {
    own.or_else(|| target_app.and_then(|ra| ra.spec.tenant.as_ref()))
        .cloned()
}

async fn resolve_target(
    obj: &FhirClientApp,
    ctx: &Context,
    target_app: Option<FhirResourceApp>,
    graph: &GraphClient,
) -> Result<Target, Error> {
    let ns = obj.namespace().unwrap_or_default();
    if let Some(r) = &obj.spec.target.resource_app_ref {
        let Some(ra) = target_app else {
            return Ok(Target::Wait(format!(
                "waiting for FhirResourceApp {ns}/{} to exist",
                r.name
            )));
        };
        let st = ra.status.clone().unwrap_or_default();
        let (Some(app_id), Some(audience), true) = (
            st.client_id.clone(),
            st.audience.clone(),
            is_ready(&st.conditions, ra.metadata.generation),
        ) else {
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
        let rid = super::resource_app::identity(ctx, &ra);
        return Ok(Target::Resolved(
            ResolvedTarget {
                app_id,
                fhir_url: ra.spec.fhir_url.clone(),
                audience,
                scopes: entitlements(&scopes(&ra.spec, &rid)),
                roles: entitlements(&app_roles(&ra.spec, &rid)),
                managed: false,
            },
            st.service_principal_object_id,
        ));
    }
    let m = obj
        .spec
        .target
        .managed
        .clone()
        .ok_or_else(|| Error::InvalidSpec("target needs resourceAppRef or managed".into()))?;
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
    Ok(Target::Resolved(
        ResolvedTarget {
            app_id: MANAGED_FHIR_APP_ID.into(),
            fhir_url: m.fhir_url.clone(),
            audience: m
                .audience
                .clone()
                .unwrap_or_else(|| MANAGED_FHIR_AUDIENCE.into()),
            scopes,
            roles,
            managed: true,
        },
        Some(sp.id),
    ))
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

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ts_add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// The Secret's data value `key` and the credential metadata its annotations record, if the value is
/// the one the operator wrote (its SHA-256 matches) — i.e. the Secret is intact.
fn read_intact(secret: Option<&Secret>, key: &str) -> Option<(Held, String)> {
    let s = secret?;
    let ann = s.metadata.annotations.as_ref()?;
    let value = String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()?;
    if ann.get(ANN_SECRET_SHA256)? != &sha256_hex(&value) {
        return None;
    }
    let parse = |k: &str| ann.get(k).and_then(|v| v.parse::<Timestamp>().ok());
    Some((
        Held {
            key_id: ann.get(ANN_KEY_ID)?.clone(),
            expires: parse(ANN_EXPIRES),
            written_at: parse(ANN_WRITTEN),
            previous_key_id: ann.get(ANN_PREV_KEY).cloned(),
            previous_until: parse(ANN_PREV_UNTIL),
        },
        value,
    ))
}

/// What an intact output Secret holds: (held, secret value). `None` if absent, edited or incomplete.
fn read_held(secret: Option<&Secret>) -> Option<(Held, String)> {
    read_intact(secret, "AZURE_CLIENT_SECRET")
}

/// What an intact output Secret holds for a Certificate credential: the held key's metadata and its
/// files (key + certificate from the bundle, the previous certificate if any).
fn read_held_certificate(secret: Option<&Secret>) -> Option<(Held, b::CertificateFiles)> {
    let (held, bundle) = read_intact(secret, cert::BUNDLE_KEY)?;
    let split = bundle.find("-----BEGIN CERTIFICATE-----")?;
    let (key_pem, cert_pem) = bundle.split_at(split);
    let previous_cert_pem = secret?
        .data
        .as_ref()?
        .get(cert::PREVIOUS_CERT_KEY)
        .and_then(|v| String::from_utf8(v.0.clone()).ok());
    Some((
        held,
        b::CertificateFiles {
            key_pem: key_pem.to_string(),
            cert_pem: cert_pem.to_string(),
            previous_cert_pem,
            bundle,
        },
    ))
}

async fn apply_inner(
    obj: &FhirClientApp,
    ctx: &Context,
    target_app: Option<FhirResourceApp>,
    status: &mut AppStatus,
    written_secret_rv: &mut Option<String>,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    let tenant = effective_tenant(spec.tenant.as_ref(), target_app.as_ref());
    let graph = ctx.graph_for(&ns, tenant.as_ref()).await?;
    let (target, target_sp) = match resolve_target(obj, ctx, target_app, &graph).await? {
        Target::Resolved(t, sp) => (t, sp),
        Target::Wait(message) => {
            return Ok(Outcome::Waiting {
                reason: "WaitingForResourceApp".into(),
                message,
                requeue: Duration::from_secs(10),
            });
        }
    };
    let rot = rotation(obj)?;
    let cred_type = b::credential_type(spec);
    let id = identity(ctx, obj);
    let unique_name = id.unique_name();
    let desired = b::desired_application(spec, &id, &target)?;

    let (app, change) = converge_app(
        &graph,
        &unique_name,
        &desired,
        &id,
        spec.adopt.unwrap_or(false),
    )
    .await?;
    let parsed: Application = crate::graph::types::parse_application("application", &app)?;
    report_app_change(ctx, obj, status, change, &unique_name, &parsed).await;
    let (sp, sp_is_new) = graph
        .service_principal_for(&parsed.app_id, change == Some("Created"))
        .await
        .map_err(needs("create the service principal", WRITE_APPS))?;

    // App role assignments (admin consent for application permissions), opt-in.
    if spec.assign_app_roles == Some(true) {
        let resource_sp = target_sp.clone().ok_or_else(|| {
            Error::InvalidSpec("the target's service principal is not in this tenant; app roles cannot be assigned".into())
        })?;
        let want: Vec<String> = b::requested_roles(spec)
            .iter()
            .filter_map(|r| {
                target
                    .roles
                    .iter()
                    .find(|e| &e.value == r)
                    .map(|e| e.id.clone())
            })
            .collect();
        const PERM: &str = "AppRoleAssignment.ReadWrite.All and Application.Read.All";
        // A service principal created a moment ago has no assignments yet: no need to list them.
        let have = if sp_is_new {
            vec![]
        } else {
            graph
                .list_app_role_assignments(&sp.id)
                .await
                .map_err(needs("list app role assignments", PERM))?
        };
        let have: Vec<_> = have
            .into_iter()
            .filter(|a| a.resource_id == resource_sp)
            .collect();
        for role in want
            .iter()
            .filter(|r| !have.iter().any(|a| &a.app_role_id == *r))
        {
            graph
                .assign_app_role(&sp.id, &resource_sp, role)
                .await
                .map_err(needs("assign app roles", PERM))?;
        }
        for extra in have.iter().filter(|a| !want.contains(&a.app_role_id)) {
            graph
                .remove_app_role_assignment(&sp.id, &extra.id)
                .await
                .map_err(needs("remove app role assignments", PERM))?;
        }
    }
    // Delegated admin consent, opt-in.
    if spec.grant_admin_consent == Some(true) {
        let resource_sp = target_sp.clone().ok_or_else(|| {
            Error::InvalidSpec("the target's service principal is not in this tenant; admin consent cannot be granted".into())
        })?;
        const PERM: &str = "DelegatedPermissionGrant.ReadWrite.All";
        let scope = b::requested_scopes(spec).join(" ");
        let grants = if sp_is_new {
            vec![]
        } else {
            graph
                .list_grants(&sp.id)
                .await
                .map_err(needs("list delegated permission grants", PERM))?
        };
        match grants.iter().find(|g| {
            g.resource_id == resource_sp && g.consent_type.as_deref() == Some("AllPrincipals")
        }) {
            Some(g)
                if g.scope
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    == scope.split_whitespace().collect::<Vec<_>>() => {}
            Some(g) => graph
                .update_grant(&g.id, &scope)
                .await
                .map_err(needs("update admin consent", PERM))?,
            None if !scope.is_empty() => graph
                .create_grant(&sp.id, &resource_sp, &scope)
                .await
                .map_err(needs("grant admin consent", PERM))?,
            None => {}
        }
    }

    // Credential and output Secret.
    let secret_name = spec
        .secret_name
        .clone()
        .unwrap_or_else(|| client_secret_name(&name));
    let existing = ctx.current_secret(&ns, &secret_name).await?;
    let owner = obj
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("resource has no uid".into()))?;
    let now = Timestamp::now();
    let mut annotations = BTreeMap::new();
    let mut secret_value: Option<String> = None;
    let mut next_check: Option<Duration> = None;
    let mut federated_file: Option<String> = None;
    let mut certificate: Option<b::CertificateFiles> = None;
    status.credential = None;
    match cred_type {
        Some(CredentialType::ClientSecret) => {
            let listed = listed_passwords(&parsed);
            let held = read_held(existing.as_ref());
            let (cur_key, cur_end, value, prev) =
                if creds::keep_current(held.as_ref().map(|h| &h.0), &listed, &rot, now) {
                    let (h, v) = held.expect("keep_current implies held");
                    // The expiry recorded when the key was created: Graph returns it with 7
                    // fractional digits on create and whole seconds later, so re-reading it would
                    // make every resync rewrite the Secret and the status.
                    let end = h.expires.or_else(|| {
                        listed
                            .iter()
                            .find(|l| l.key_id == h.key_id)
                            .and_then(|l| l.end)
                    });
                    let prev = h.previous_key_id.clone().zip(h.previous_until);
                    annotations.insert(
                        ANN_WRITTEN.to_string(),
                        h.written_at
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| now.to_string()),
                    );
                    (h.key_id, end, v, prev)
                } else {
                    let display = creds::credential_name(&ns, &secret_name);
                    let created: PasswordCredential = graph
                        .add_password(&parsed.id, &display, ts_add(now, rot.validity))
                        .await
                        .map_err(needs("add a client secret", WRITE_APPS))?;
                    let value = created.secret_text.clone().ok_or_else(|| {
                        GraphError::Decode("addPassword returned no secretText".into())
                    })?;
                    // Keep the previous key valid for the overlap when it still exists and was a rotation.
                    let prev = held
                        .as_ref()
                        .filter(|(h, _)| listed.iter().any(|l| l.key_id == h.key_id))
                        .map(|(h, _)| (h.key_id.clone(), ts_add(now, rot.overlap)));
                    let reason = new_credential_reason(
                        existing.is_some(),
                        held.is_some(),
                        status.client_id.is_some(),
                    );
                    ctx.event(
                        obj,
                        false,
                        reason,
                        format!(
                            "new client secret {} written to Secret {secret_name}",
                            created.key_id
                        ),
                    )
                    .await;
                    annotations.insert(ANN_WRITTEN.to_string(), now.to_string());
                    (created.key_id.clone(), created.end(), value, prev)
                };
            annotations.insert(ANN_KEY_ID.to_string(), cur_key.clone());
            annotations.insert(ANN_SECRET_SHA256.to_string(), sha256_hex(&value));
            if let Some(e) = cur_end {
                annotations.insert(ANN_EXPIRES.to_string(), e.to_string());
            }
            if let Some((k, until)) = &prev
                && now < *until
            {
                annotations.insert(ANN_PREV_KEY.to_string(), k.clone());
                annotations.insert(ANN_PREV_UNTIL.to_string(), until.to_string());
            }
            // Write the Secret at once, then prune what no Secret holds.
            secret_value = Some(value);
            let data = secret_data(
                ctx,
                &graph,
                spec,
                &parsed,
                &target,
                secret_value.as_deref(),
                cred_type,
                None,
                None,
            );
            let written = apply_secret(
                &ctx.client,
                existing.as_ref(),
                DesiredSecret {
                    namespace: &ns,
                    name: &secret_name,
                    owner: owner.clone(),
                    labels: managed_labels("FhirClientApp", &name),
                    annotations: annotations.clone(),
                    data,
                },
            )
            .await?;
            ctx.saw_secret(&ns, &secret_name, written.clone());
            *written_secret_rv = written;
            let prev_ref = prev.as_ref().map(|(k, u)| (k.as_str(), *u));
            for key in creds::to_prune(&listed, &[cur_key.as_str()], prev_ref, now) {
                graph
                    .remove_password(&parsed.id, &key)
                    .await
                    .map_err(needs("remove a client secret", WRITE_APPS))?;
                tracing::info!(key_id = %key, "removed operator-owned client secret no Secret holds");
            }
            next_check =
                creds::next_check(cur_end, prev.map(|p| p.1).filter(|u| now < *u), &rot, now);
            ctx.metrics
                .set_credential_expiry(&format!("{ns}/{name}"), cur_end.map(|e| e.as_second()));
            status.credential = Some(CredentialStatus {
                r#type: "ClientSecret".into(),
                key_id: Some(cur_key),
                expires_at: cur_end.map(|e| e.to_string()),
            });
        }
        Some(CredentialType::Certificate) => {
            let display = creds::credential_name(&ns, &secret_name);
            let held = read_held_certificate(existing.as_ref());
            let keep = held
                .as_ref()
                .is_some_and(|(h, _)| h.expires.is_none_or(|e| ts_add(now, rot.renew_before) < e));
            let (cur_key, cur_end, mut files, prev) = match held {
                Some((h, files)) if keep => {
                    annotations.insert(
                        ANN_WRITTEN.to_string(),
                        h.written_at.unwrap_or(now).to_string(),
                    );
                    let prev = h
                        .previous_key_id
                        .clone()
                        .zip(h.previous_until)
                        .filter(|(_, until)| now < *until);
                    (h.key_id, h.expires, files, prev)
                }
                held => {
                    let issued = cert::issue(&format!("{ns}/{name}"), rot.validity, now)
                        .map_err(Error::Certificate)?;
                    let key_id = uuid::Uuid::new_v4().to_string();
                    // The certificate being replaced stays registered for the overlap (not past its
                    // own expiry), so pods that still mount it keep signing in.
                    let prev = held.as_ref().map(|(h, _)| {
                        let until = ts_add(now, rot.overlap);
                        (h.key_id.clone(), h.expires.map_or(until, |e| e.min(until)))
                    });
                    let reason = new_credential_reason(
                        existing.is_some(),
                        held.is_some(),
                        status.client_id.is_some(),
                    );
                    ctx.event(
                        obj,
                        false,
                        reason,
                        format!("new client certificate {key_id} written to Secret {secret_name}"),
                    )
                    .await;
                    annotations.insert(ANN_WRITTEN.to_string(), now.to_string());
                    let files = b::CertificateFiles {
                        bundle: issued.bundle(),
                        cert_pem: issued.cert_pem,
                        key_pem: issued.key_pem,
                        previous_cert_pem: held.map(|(_, f)| f.cert_pem),
                    };
                    (key_id, Some(issued.not_after), files, prev)
                }
            };
            let mut want = vec![cert::Registered {
                key_id: cur_key.clone(),
                der: cert::cert_der(&files.cert_pem)
                    .ok_or_else(|| Error::Certificate("the held certificate is not PEM".into()))?,
                display_name: display.clone(),
            }];
            match (
                &prev,
                files.previous_cert_pem.as_deref().and_then(cert::cert_der),
            ) {
                (Some((key_id, until)), Some(der)) if now < *until => {
                    want.push(cert::Registered {
                        key_id: key_id.clone(),
                        der,
                        display_name: display,
                    });
                    annotations.insert(ANN_PREV_KEY.to_string(), key_id.clone());
                    annotations.insert(ANN_PREV_UNTIL.to_string(), until.to_string());
                }
                _ => files.previous_cert_pem = None,
            }
            // Graph first, then the Secret: pods never mount a certificate Entra does not know, and a
            // crash in between leaves a key the next PATCH (built from the Secret) removes.
            let listed: Vec<String> = parsed
                .key_credentials
                .iter()
                .map(|k| k.key_id.clone())
                .collect();
            if cert::needs_patch(&listed, &want) {
                graph
                    .patch_application(&parsed.id, &cert::key_credentials_body(&want))
                    .await
                    .map_err(needs("register the client certificate", WRITE_APPS))?;
            }
            annotations.insert(ANN_KEY_ID.to_string(), cur_key.clone());
            annotations.insert(ANN_SECRET_SHA256.to_string(), sha256_hex(&files.bundle));
            if let Some(e) = cur_end {
                annotations.insert(ANN_EXPIRES.to_string(), e.to_string());
            }
            next_check = creds::next_check(cur_end, want.get(1).and(prev.map(|p| p.1)), &rot, now);
            ctx.metrics
                .set_credential_expiry(&format!("{ns}/{name}"), cur_end.map(|e| e.as_second()));
            status.credential = Some(CredentialStatus {
                r#type: "Certificate".into(),
                key_id: Some(cur_key),
                expires_at: cur_end.map(|e| e.to_string()),
            });
            certificate = Some(files);
        }
        Some(CredentialType::WorkloadIdentity) => {
            let issuer = ctx.config.service_account_issuer.clone().ok_or_else(|| {
                Error::MissingConfig("WorkloadIdentity needs the cluster's service-account issuer: start the operator with --service-account-issuer (FHIR_OP_SERVICE_ACCOUNT_ISSUER)".into())
            })?;
            let sa = spec
                .credential
                .as_ref()
                .and_then(|c| c.service_account_name.clone())
                .unwrap_or_default();
            let fic_name: String = format!("k8s-{ns}-{sa}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .take(120)
                .collect();
            let subject = format!("system:serviceaccount:{ns}:{sa}");
            let have = graph
                .list_federated_credentials(&parsed.id)
                .await
                .map_err(needs("read federated credentials", WRITE_APPS))?;
            if !have
                .iter()
                .any(|f| f.name == fic_name && f.issuer == issuer && f.subject == subject)
            {
                graph
                    .upsert_federated_credential(&parsed.id, &fic_name, &issuer, &subject)
                    .await
                    .map_err(needs("add a federated credential", WRITE_APPS))?;
                ctx.event(
                    obj,
                    false,
                    "FederatedCredentialSet",
                    format!("service account {ns}/{sa} may sign in as this application"),
                )
                .await;
            }
            federated_file = Some("/var/run/secrets/azure/tokens/azure-identity-token".into());
            status.credential = Some(CredentialStatus {
                r#type: "WorkloadIdentity".into(),
                key_id: Some(fic_name),
                expires_at: None,
            });
        }
        None => {}
    }
    prune_other_credential_kinds(&graph, &parsed, cred_type, now).await?;
    if secret_value.is_none() {
        let data = secret_data(
            ctx,
            &graph,
            spec,
            &parsed,
            &target,
            None,
            cred_type,
            federated_file.as_deref(),
            certificate.as_ref(),
        );
        let written = apply_secret(
            &ctx.client,
            existing.as_ref(),
            DesiredSecret {
                namespace: &ns,
                name: &secret_name,
                owner,
                labels: managed_labels("FhirClientApp", &name),
                annotations,
                data,
            },
        )
        .await?;
        ctx.saw_secret(&ns, &secret_name, written.clone());
        *written_secret_rv = written;
    }

    status.client_id = Some(parsed.app_id.clone());
    status.tenant_id = Some(graph.tenant_id().to_string());
    status.application_object_id = Some(parsed.id.clone());
    status.service_principal_object_id = Some(sp.id.clone());
    status.unique_name = Some(unique_name);
    status.audience = Some(target.audience.clone());
    status.output_name = Some(secret_name.clone());
    status.notes = target.managed.then(|| {
        "Target is the managed FHIR service: data-plane access is granted by Azure RBAC (e.g. assign 'FHIR Data Reader' to this client's service principal on the FHIR service); this operator does not grant it.".to_string()
    });
    let requeue = next_check.map_or(ctx.config.resync, |n| n.min(ctx.config.resync));
    Ok(Outcome::Ready {
        message: format!(
            "client {} ready; credentials in Secret {secret_name}",
            parsed.app_id
        ),
        requeue,
    })
}

/// The Event reason for a newly written credential: the first one, a replacement for a Secret a user
/// deleted or edited, or a rotation.
fn new_credential_reason(
    secret_exists: bool,
    secret_intact: bool,
    registered: bool,
) -> &'static str {
    match (secret_exists, secret_intact) {
        (false, _) if registered => "SecretRestored",
        (false, _) => "CredentialCreated",
        (true, false) => "SecretRestored",
        (true, true) => "CredentialRotated",
    }
}

fn listed_passwords(app: &Application) -> Vec<Listed> {
    app.password_credentials
        .iter()
        .map(|p| Listed {
            key_id: p.key_id.clone(),
            display_name: p.display_name.clone(),
            end: p.end(),
        })
        .collect()
}

/// Removes the operator's credentials of kinds the spec no longer uses (e.g. the client secrets after
/// a switch to Certificate or WorkloadIdentity), so no valid credential outlives its Secret.
async fn prune_other_credential_kinds(
    graph: &GraphClient,
    app: &Application,
    kind: Option<CredentialType>,
    now: Timestamp,
) -> Result<(), Error> {
    if kind != Some(CredentialType::ClientSecret) {
        for key in creds::to_prune(&listed_passwords(app), &[], None, now) {
            graph
                .remove_password(&app.id, &key)
                .await
                .map_err(needs("remove a client secret", WRITE_APPS))?;
        }
    }
    // keyCredentials can only be replaced whole, so they are cleared only when all are ours.
    let ours = |k: &crate::graph::types::KeyCredential| {
        k.display_name
            .as_deref()
            .is_some_and(|d| d.starts_with(crate::build::naming::CREDENTIAL_NAME_PREFIX))
    };
    if kind != Some(CredentialType::Certificate)
        && !app.key_credentials.is_empty()
        && app.key_credentials.iter().all(ours)
    {
        graph
            .patch_application(&app.id, &cert::key_credentials_body(&[]))
            .await
            .map_err(needs("remove client certificates", WRITE_APPS))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn secret_data(
    ctx: &Context,
    graph: &GraphClient,
    spec: &FhirClientAppSpec,
    app: &Application,
    target: &ResolvedTarget,
    secret: Option<&str>,
    cred: Option<CredentialType>,
    federated_file: Option<&str>,
    certificate: Option<&b::CertificateFiles>,
) -> BTreeMap<String, String> {
    b::secret_data(&b::SecretInputs {
        client_id: &app.app_id,
        tenant_id: graph.tenant_id(),
        authority_host: &ctx.config.endpoints().authority_host,
        target,
        client_secret: secret,
        federated_token_file: federated_file,
        credential: cred,
        certificate,
        sign_in: b::sign_in(spec),
    })
}

async fn cleanup(obj: Arc<FhirClientApp>, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    ctx.metrics
        .set_credential_expiry(&format!("{ns}/{}", obj.name_any()), None);
    ctx.forget(&format!("FhirClientApp/{ns}/{}", obj.name_any()));
    let secret_name = obj
        .spec
        .secret_name
        .clone()
        .unwrap_or_else(|| client_secret_name(&obj.name_any()));
    ctx.saw_secret(&ns, &secret_name, None);
    if obj.spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Orphan {
        ctx.event(
            obj.as_ref(),
            false,
            "Orphaned",
            "deletionPolicy Orphan: the Entra application is left in place".into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    // The tenant it was registered in: as in apply, else the one its status recorded (the resource
    // app it followed may be gone already).
    let target_app = match &obj.spec.target.resource_app_ref {
        Some(r) => ctx.resource_app(&ns, &r.name).await.ok().flatten(),
        None => None,
    };
    let tenant = effective_tenant(obj.spec.tenant.as_ref(), target_app.as_ref()).or_else(|| {
        let recorded = obj.status.as_ref()?.tenant_id.clone()?;
        Some(TenantSpec {
            tenant_id: Some(recorded),
            credentials_secret_ref: None,
        })
    });
    let graph = match ctx.graph_for(&ns, tenant.as_ref()).await {
        Ok(g) => g,
        Err(Error::TenantCredentials(m)) => {
            tracing::warn!(message = %m, "tenant credentials gone; cannot delete the application, leaving it");
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    };
    let id = identity(ctx, &obj);
    // Deleting the service principal also removes its grants and app role assignments.
    delete_app(&graph, &id.unique_name(), &id).await?;
    Ok(Action::await_change())
}

pub fn error_policy(_obj: Arc<FhirClientApp>, err: &Error, ctx: Arc<Context>) -> Action {
    super::backoff(err, &ctx, "FhirClientApp")
}

/// A published scope or role, as far as a client can request it (one without a value cannot be).
fn entitlement(id: &str, value: &Option<String>) -> Option<crate::build::resource::Entitlement> {
    Some(crate::build::resource::Entitlement {
        id: id.to_string(),
        value: value.clone()?,
    })
}
