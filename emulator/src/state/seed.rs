//! Filling the store from the config (at start, and `POST /_emulator/tenants`): tenants, their
//! bootstrap applications with credentials, service principals and Graph permissions, users and
//! groups, trusted issuers.
use super::basics::random_guid;
use super::changes::Collection::{Applications, ServicePrincipals};
use super::directory;
use super::store::{self, AppRec, SpRec, Store, Tenant, fmt_secs};
use crate::config::{BootstrapApp, Config, FederatedTrust, TenantConfig};
use crate::crypto;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The store at start: the state file's (if there is one), with the configured tenants and
/// trusted issuers added.
pub fn initial_store(config: &Config) -> anyhow::Result<Store> {
    let mut store = Store::default();
    if let Some(p) = &config.state_file
        && p.exists()
    {
        let bytes = std::fs::read(p)?;
        store = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("state file {}: {e}", p.display()))?;
        tracing::info!(path = %p.display(), "loaded state");
    }
    for tc in &config.tenants {
        add_tenant(&mut store, tc, &config.default_sign_in_audience)?;
    }
    for ti in &config.trusted_issuers {
        if let Some(j) = &ti.jwks {
            store.trusted_issuers.insert(ti.issuer.clone(), j.clone());
        } else {
            store
                .trusted_issuers
                .entry(ti.issuer.clone())
                .or_insert(Value::Null);
        }
    }
    Ok(store)
}

pub fn add_tenant(store: &mut Store, tc: &TenantConfig, default_aud: &str) -> anyhow::Result<()> {
    if uuid::Uuid::parse_str(&tc.tenant_id).is_err() {
        anyhow::bail!("tenant id '{}' is not a GUID", tc.tenant_id);
    }
    let t = store
        .tenants
        .entry(tc.tenant_id.to_ascii_lowercase())
        .or_insert_with(|| {
            Tenant::new(
                &tc.tenant_id.to_ascii_lowercase(),
                tc.verified_domains.clone(),
                tc.healthcare_service_principal,
            )
        });
    t.quota = super::quota::Quota {
        directory: tc.directory_quota,
        creator: tc.creator_quota,
        creator_applies_to_apps: tc.creator_quota_applies_to_apps,
    };
    for d in &tc.verified_domains {
        if !t.domains.iter().any(|x| x.eq_ignore_ascii_case(d)) {
            t.domains.push(d.to_ascii_lowercase());
        }
    }
    for a in &tc.apps {
        bootstrap_app(t, a, default_aud)?;
    }
    for g in &tc.groups {
        directory::add_group(t, g)?;
    }
    for u in &tc.users {
        directory::add_user(t, u)?;
    }
    Ok(())
}

/// Creates (or refreshes) a bootstrap application, its SP and its Graph app role assignments.
pub fn bootstrap_app(
    tenant: &mut Tenant,
    b: &BootstrapApp,
    default_aud: &str,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let before = tenant
        .app_idx_by_app_id(&b.client_id)
        .map(|i| tenant.apps[i].body.clone());
    let idx = app_record(tenant, b, default_aud, now);
    let app = &mut tenant.apps[idx];
    if let Some(secret) = &b.client_secret {
        add_secret(app, secret, now);
    }
    if let Some(pem) = &b.certificate_pem {
        add_certificate(app, pem, now)?;
    }
    for (i, f) in b.federated.iter().enumerate() {
        add_federated(app, i, f);
    }
    let app_body = app.body.clone();
    // Delta queries see what the admin API adds to a running tenant (state::changes).
    let (id, at) = (store::s(&app_body, "id"), now.timestamp_millis());
    match before {
        None => tenant.changes.created(Applications, &id, at),
        Some(old) => tenant
            .changes
            .updated(Applications, &id, &old, &app_body, at),
    }
    let sp_id = service_principal(tenant, &b.client_id, &app_body, now);
    grant_graph_permissions(tenant, &sp_id, b, now)
}

/// The index of the bootstrap app's registration, created when missing.
fn app_record(
    tenant: &mut Tenant,
    b: &BootstrapApp,
    default_aud: &str,
    now: DateTime<Utc>,
) -> usize {
    if let Some(i) = tenant.app_idx_by_app_id(&b.client_id) {
        return i;
    }
    let mut body = store::new_application(&tenant.publisher_domain(), now);
    body["appId"] = json!(b.client_id);
    body["displayName"] = json!(b.display_name);
    body["signInAudience"] = json!(default_aud);
    tenant.apps.push(AppRec {
        body,
        ..Default::default()
    });
    tenant.apps.len() - 1
}

fn add_secret(app: &mut AppRec, secret: &str, now: DateTime<Utc>) {
    if app.secrets.iter().any(|s| s.text == secret) {
        return;
    }
    let key_id = random_guid();
    let cred = json!({"customKeyIdentifier": null, "displayName": "bootstrap", "endDateTime": fmt_secs(now + chrono::Duration::days(730)),
            "hint": secret.chars().take(3).collect::<String>(), "keyId": key_id, "secretText": null, "startDateTime": fmt_secs(now)});
    app.add_secret(cred, key_id, secret.to_string(), 0);
}

fn add_certificate(app: &mut AppRec, pem: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    let der = crypto::cert_der_from_pem(pem)?;
    let thumb = crypto::sha1(&der);
    if app
        .cert_keys
        .values()
        .any(|k| crypto::b64_any(k).as_deref() == Some(der.as_slice()))
    {
        return Ok(());
    }
    let (nb, na) =
        crypto::cert_validity(&der).unwrap_or((now.timestamp(), now.timestamp() + 365 * 86400));
    let key_id = random_guid();
    let cred = json!({"customKeyIdentifier": crypto::b64(&thumb), "displayName": "CN=bootstrap",
        "endDateTime": fmt_secs(DateTime::from_timestamp(na, 0).unwrap_or(now)), "key": null, "keyId": key_id,
        "startDateTime": fmt_secs(DateTime::from_timestamp(nb, 0).unwrap_or(now)), "type": "AsymmetricX509Cert", "usage": "Verify"});
    app.body["keyCredentials"]
        .as_array_mut()
        .unwrap()
        .push(cred);
    app.cert_keys.insert(key_id, crypto::b64(&der));
    Ok(())
}

/// Federated credential `bootstrap-{i}`, unless one with that issuer and subject exists.
fn add_federated(app: &mut AppRec, i: usize, f: &FederatedTrust) {
    if app
        .fics
        .iter()
        .any(|x| store::s(x, "issuer") == f.issuer && store::s(x, "subject") == f.subject)
    {
        return;
    }
    let aud = if f.audience.is_empty() {
        "api://AzureADTokenExchange".to_string()
    } else {
        f.audience.clone()
    };
    app.fics.push(
        json!({"id": random_guid(), "name": format!("bootstrap-{i}"),
        "issuer": f.issuer, "subject": f.subject, "description": null, "audiences": [aud]}),
    );
}

/// The object id of the app's service principal in `tenant`, created when missing.
fn service_principal(
    tenant: &mut Tenant,
    app_id: &str,
    app_body: &Value,
    now: DateTime<Utc>,
) -> String {
    if let Some(i) = tenant.sp_idx_by_app_id(app_id) {
        return store::s(&tenant.sps[i].body, "id");
    }
    let sp = store::new_service_principal(app_body, &tenant.id, now);
    let id = store::s(&sp, "id");
    tenant.sps.push(SpRec {
        body: sp,
        owners: vec![],
        visible_from_ms: 0,
        secrets: vec![],
    });
    tenant
        .changes
        .created(ServicePrincipals, &id, now.timestamp_millis());
    id
}

/// Assigns the Graph app roles named in `b.permissions` to the service principal `sp_id`.
fn grant_graph_permissions(
    tenant: &mut Tenant,
    sp_id: &str,
    b: &BootstrapApp,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let graph_idx = tenant.sp_idx_by_app_id(store::GRAPH_APP_ID).unwrap();
    let graph = tenant.sps[graph_idx].body.clone();
    for p in &b.permissions {
        let role = graph["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| store::s(r, "value").eq_ignore_ascii_case(p))
            .ok_or_else(|| anyhow::anyhow!("unknown Graph permission '{p}'"))?;
        let role_id = store::s(role, "id");
        if !tenant
            .assignments
            .iter()
            .any(|a| a.principal_id == sp_id && a.app_role_id == role_id)
        {
            tenant.assignments.push(store::Assignment::new(
                sp_id,
                "ServicePrincipal",
                &b.display_name,
                &role_id,
                &graph,
                now,
            ));
        }
    }
    Ok(())
}
