//! The operator's HTTP endpoints: /healthz, /readyz, Prometheus /metrics.

use std::time::Duration;

use fhir_app_operator::api::FhirResourceApp;
use fhir_app_operator_tests::operator::{Harness, full_permissions, resource_app};
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let mut h = Harness::new("op-http", full_permissions()).await;
    let (cfg, port) = h.config_with_http();
    h.start_operator(cfg).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", Duration::from_secs(60))
        .await;
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (code, body) = get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("fhir_operator_reconciles_total{kind=\"FhirResourceApp\",result=\"ok\"}"),
        "{body}"
    );
    assert!(
        body.contains(
            "fhir_operator_graph_calls_total{operation=\"upsertApplication\",status=\"201\"} 1"
        ),
        "{body}"
    );
    // Typed for Prometheus (a family with no series yet, such as the throttled counter before any
    // 429, is not listed: Prometheus would store nothing for it either).
    assert!(
        body.contains("# TYPE fhir_operator_graph_calls_total counter"),
        "{body}"
    );
    h.stop_operator().await;
}
