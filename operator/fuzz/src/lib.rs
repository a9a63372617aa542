//! Bodies of the fuzz targets, shared with the seeded property test (`tests/seeded.rs`) so the same
//! code runs under libFuzzer and under plain `cargo test` on a stable toolchain.
//!
//! Both must never panic, whatever the input; a few cheap properties are asserted on the way.

use fhir_app_operator::api::{FhirClientAppSpec, FhirResourceAppSpec};
use fhir_app_operator::desired::client::{self as cb, ResolvedTarget, SecretInputs};
use fhir_app_operator::desired::naming::{AppKind, ResourceIdentity};
use fhir_app_operator::desired::resource::{self as rb, Entitlement};
use fhir_app_operator::desired::{diff, duration, smart};
use fhir_app_operator::graph::GraphError;
use fhir_app_operator::graph::client::parse_json_body;
use fhir_app_operator::graph::error::{
    classify, classify_token_error, odata_error, parse_retry_after,
};
use fhir_app_operator::graph::types::*;
use serde_json::{Value, json};

const APP_ID: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn id(kind: AppKind) -> ResourceIdentity<'static> {
    ResourceIdentity {
        cluster: "fuzz",
        kind,
        namespace: "ns",
        name: "app",
    }
}

fn touch(e: &GraphError) {
    let _ = (
        e.category(),
        e.is_permanent(),
        e.retry_after(),
        e.code(),
        e.to_string(),
    );
}

/// Input: 2 bytes HTTP status, 1 selector byte, then the body (optionally `retry-after\nbody`).
pub fn graph_responses(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 600;
    let text = String::from_utf8_lossy(&data[3..]);
    let (retry_after, body) = match text.split_once('\n') {
        Some((ra, b)) if data[2] & 1 == 1 => (Some(ra), b),
        _ => (None, &*text),
    };
    let e = classify(status, retry_after, body);
    touch(&e);
    if status == 429 {
        assert_eq!(e.category(), "Throttled");
    }
    touch(&classify_token_error(status, body));
    let _ = odata_error(body);
    let _ = parse_retry_after(retry_after.unwrap_or(body));
    graph_json(body);
}

/// A successful body as the client and the controllers parse it.
pub fn graph_json(body: &str) {
    let v = match parse_json_body("fuzz", "application/json", body) {
        Ok(v) => v,
        Err(e) => {
            assert_eq!(e.category(), "Decode");
            return;
        }
    };
    if let Ok(app) = parse_application("fuzz", &v) {
        assert!(!app.id.is_empty() && !app.app_id.is_empty());
        for p in &app.password_credentials {
            let _ = p.end();
        }
        let _ = format!("{app:?}");
    }
    if let Ok(sp) = parse_service_principal("fuzz", v.clone()) {
        assert!(!sp.id.is_empty() && !sp.app_id.is_empty());
    }
    let _ = serde_json::from_value::<Page<Application>>(v.clone());
    let _ = serde_json::from_value::<Page<ServicePrincipal>>(v.clone());
    let _ = serde_json::from_value::<Page<PermissionGrant>>(v.clone());
    let _ = serde_json::from_value::<Page<AppRoleAssignment>>(v.clone());
    let _ = serde_json::from_value::<Page<FederatedIdentityCredential>>(v.clone());
    if let Ok(p) = serde_json::from_value::<PasswordCredential>(v.clone()) {
        let _ = p.end();
        let _ = format!("{p:?}");
    }
    let _ = serde_json::from_value::<TokenResponse>(v.clone());
    // The actual application against the desired one: drift and disable-before-change.
    let spec: FhirResourceAppSpec = serde_json::from_value(
        json!({"fhirUrl": "https://fhir.contoso.example", "smart": {"enabled": true}}),
    )
    .unwrap();
    let desired = rb::desired_application(&spec, &id(AppKind::Resource), Some(APP_ID)).body();
    let _ = diff::covers(&desired, Some(&v));
    let _ = diff::patch_body(&desired, &v);
    let _ = diff::disable_phase(&desired, &v);
}

/// Input: JSON, read as a FhirResourceAppSpec and as a FhirClientAppSpec.
pub fn spec_builders(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    spec_value(&v);
}

/// Arbitrary JSON through serde into both specs and every builder.
pub fn spec_value(v: &Value) {
    if let Ok(spec) = serde_json::from_value::<FhirResourceAppSpec>(v.clone()) {
        resource(&spec);
    }
    if let Ok(spec) = serde_json::from_value::<FhirClientAppSpec>(v.clone()) {
        client(&spec);
    }
}

fn resource(spec: &FhirResourceAppSpec) -> Vec<Entitlement> {
    let rid = id(AppKind::Resource);
    let _ = rb::identifier_uri(spec, None);
    let uri = rb::identifier_uri(spec, Some(APP_ID)).unwrap_or_default();
    let app = rb::desired_application(spec, &rid, Some(APP_ID)).body();
    let _ = rb::desired_application(spec, &rid, None);
    // Desired state compared with itself: nothing to patch, nothing to disable. Only for specs the API
    // server admits: appRoles and scopes are list-maps keyed by `value`, so values are unique.
    let unique = |values: Vec<&str>| {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == values.len()
    };
    let role_values = spec.app_roles.iter().flatten().map(|r| r.value.as_str());
    let scope_values = spec.scopes.iter().flatten().map(|s| s.value.as_str());
    let changed = (
        diff::covers(&app, Some(&app)),
        diff::patch_body(&app, &app),
        diff::disable_phase(&app, &app),
    );
    if unique(role_values.collect()) && unique(scope_values.collect()) {
        assert!(changed.0, "{app}");
        assert_eq!(changed.1, None, "{app}");
        assert_eq!(changed.2, None, "{app}");
    }
    let (scopes, roles) = rb::published(spec, &rid);
    let ts = rb::token_settings(
        rb::token_version(spec),
        "https://login.microsoftonline.com/",
        TENANT,
        &uri,
        APP_ID,
    );
    let _ = rb::config_map_data(&ts, TENANT, APP_ID);
    if let Some(s) = &spec.smart {
        for x in s.scopes.iter().flatten() {
            if let Some(e) = smart::to_entra(x) {
                let _ = smart::to_smart(&e);
                let _ = smart::is_valid_entra_value(&e);
            }
        }
    }
    roles.into_iter().chain(scopes).collect()
}

fn client(spec: &FhirClientAppSpec) {
    let cid = id(AppKind::Client);
    let scopes = cb::requested_scopes(spec);
    let roles = cb::requested_roles(spec);
    let ent = |v: &[String]| -> Vec<Entitlement> {
        v.iter()
            .enumerate()
            .map(|(i, s)| Entitlement {
                id: format!("00000000-0000-0000-0000-{i:012}"),
                value: s.clone(),
            })
            .collect()
    };
    let managed = spec.target.managed.as_ref();
    let full = ResolvedTarget {
        app_id: APP_ID.into(),
        fhir_url: managed
            .and_then(|m| m.fhir_url.clone())
            .unwrap_or_else(|| "https://fhir.contoso.example".into()),
        audience: managed
            .and_then(|m| m.audience.clone())
            .unwrap_or_else(|| "https://fhir.contoso.example".into()),
        scopes: ent(&scopes),
        roles: ent(&roles),
        managed: managed.is_some(),
    };
    // Everything requested is published: the builders must succeed.
    let app = cb::desired_application(spec, &cid, &full)
        .expect("all entitlements published")
        .body();
    assert!(diff::covers(&app, Some(&app)));
    assert!(cb::resource_access(spec, &full).1.is_empty(), "all entitlements published");
    // Nothing published: an error naming the entitlement, or nothing requested.
    let empty = ResolvedTarget {
        scopes: vec![],
        roles: vec![],
        ..full.clone()
    };
    let _ = cb::desired_application(spec, &cid, &empty);
    let cred = cb::credential_type(spec);
    let _ = cb::secret_data(&SecretInputs {
        client_id: APP_ID,
        tenant_id: TENANT,
        authority_host: "https://login.microsoftonline.com/",
        target: &full,
        client_secret: Some("fuzz-secret"),
        federated_token_file: None,
        credential: cred,
        certificate: None,
        sign_in: cb::sign_in(spec),
    });
    for u in spec.redirect_uris.iter().flatten() {
        let _ = cb::smart_proxy_callback(&full.fhir_url, u);
    }
    if let Some(r) = spec.credential.as_ref().and_then(|c| c.rotation.as_ref()) {
        for d in [&r.validity, &r.renew_before, &r.overlap]
            .into_iter()
            .flatten()
        {
            let _ = duration::parse(d);
        }
    }
}
