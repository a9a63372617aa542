//! Graph realities: replication lag, random 5xx and throttling do not produce duplicates or
//! extra credentials, and everything still converges.

use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{
    Harness, client_app, full_permissions, resource_app, secret_data,
};
use serde_json::json;

#[tokio::test]
async fn converges_without_duplicates_under_replication_lag_and_faults() {
    let mut h = Harness::new("op-real", full_permissions()).await;
    let mut r = h.emu.realism();
    r.replication_lag_ms = 1500;
    r.error_rate = 0.1;
    r.latency_ms = 20;
    r.seed = 42;
    h.emu.set_realism(r);
    h.start_operator(h.config()).await;
    let t = Duration::from_secs(120);
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    for i in 0..3 {
        h.apply::<FhirClientApp>(client_app(&format!("svc-{i}"), json!({
            "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"], "assignAppRoles": true
        })))
        .await
        .unwrap();
    }
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", t)
        .await;
    for i in 0..3 {
        h.wait_condition::<FhirClientApp>(&format!("svc-{i}"), "Ready", "True", t)
            .await;
    }
    // Let resyncs run under lag and faults, then check the directory.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let clients = h.apps_with_unique_name_prefix("fao-c-").await;
    assert_eq!(clients.len(), 3, "one app per client");
    assert_eq!(
        h.apps_with_unique_name_prefix("fao-r-").await.len(),
        1,
        "one resource app"
    );
    h.eventually("one credential per client app", t, || {
        let h = &h;
        async move {
            let apps = h.apps_with_unique_name_prefix("fao-c-").await;
            let n: Vec<usize> = apps
                .iter()
                .map(|a| a["passwordCredentials"].as_array().map_or(0, |p| p.len()))
                .collect();
            Ok::<_, String>(
                n.iter()
                    .all(|c| *c == 1)
                    .then_some(())
                    .ok_or(format!("{n:?}"))
                    .ok(),
            )
        }
    })
    .await;
    // Turn faults off, then the Secrets work.
    let mut r = h.emu.realism();
    r.error_rate = 0.0;
    h.emu.set_realism(r);
    for i in 0..3 {
        let data = secret_data(&h.client, &h.ns.name, &format!("svc-{i}-fhir-client"))
            .await
            .unwrap();
        let claims = h
            .eventually("token", t, || {
                let (h, data) = (&h, &data);
                async move { h.token_from_secret(data).await.map(Some) }
            })
            .await;
        assert_eq!(claims["aud"], "https://fhir.contoso.example");
    }
    h.stop_operator().await;
}
