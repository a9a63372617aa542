//! Several replicas: only the Lease holder reconciles; another takes over when it stops.

use std::sync::Arc;
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator::metrics::Metrics;
use fhir_app_operator_tests::operator::{Harness, client_app, full_permissions, resource_app};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let mut h = Harness::new("op-lead", full_permissions()).await;
    let mut a = h.config();
    a.leader_election = true;
    a.lease_namespace = h.ns.name.clone();
    a.identity = "replica-a".into();
    h.start_operator(a.clone()).await;
    let t = Duration::from_secs(60);
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", t)
        .await;
    let lease = h.api::<Lease>().get("fhir-app-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );

    // Replica b starts as standby.
    let mut b = a.clone();
    b.identity = "replica-b".into();
    let b_metrics = Arc::new(Metrics::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(fhir_app_operator::run_with(
        h.client.clone(),
        b,
        b_metrics.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        b_metrics.counter_sum("fhir_operator_reconciles_total", ""),
        0.0,
        "standby does not reconcile"
    );

    // Leader stops (releases the Lease); b takes over and reconciles new resources.
    h.stop_operator().await;
    h.apply::<FhirClientApp>(client_app("etl", json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"]})))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", t)
        .await;
    let lease = h.api::<Lease>().get("fhir-app-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    assert!(b_metrics.counter_sum("fhir_operator_reconciles_total", "") > 0.0);
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), b_task).await;
}
