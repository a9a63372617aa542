//! Graph realities: replication lag, random 5xx and throttling do not produce duplicates or
//! extra credentials, and everything still converges.

use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::invariants::directory;
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

/// A resource deleted a moment after its application was created: Graph may still answer 404 for
/// the new application (replication lag), and taking that 404 as "already gone" would leave the
/// application behind. The failure suite's SIGKILL scenario found this: an operator killed right
/// after creating an application, the resource deleted before the next one started.
#[tokio::test]
async fn deleting_right_after_the_app_was_created_leaves_nothing_under_replication_lag() {
    let mut h = Harness::new("op-lagdel", full_permissions()).await;
    let mut r = h.emu.realism();
    r.replication_lag_ms = 3000;
    h.emu.set_realism(r);
    h.start_operator(h.config()).await;
    let t = Duration::from_secs(60);
    h.apply::<FhirClientApp>(client_app(
        "web",
        json!({"type": "Public", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}},
               "redirectUris": ["http://localhost:3000/cb"], "scopes": ["user_impersonation"]}),
    ))
    .await
    .unwrap();
    // As soon as the application exists (the emulator's own view, which has no lag), delete.
    let prefix = "fao-c-";
    let in_directory = |dir: &serde_json::Value| {
        dir["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["uniqueName"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(prefix))
            })
            .count()
    };
    h.eventually("the application is created", t, || {
        let h = &h;
        async move {
            let dir = directory(h).await?;
            Ok::<_, String>((in_directory(&dir) == 1).then_some(()))
        }
    })
    .await;
    // The operator stops mid-reconcile (still waiting for the new application to replicate) and
    // the resource is deleted meanwhile; the next operator's first look at Graph is within the lag.
    h.kill_operator().await;
    h.delete::<FhirClientApp>("web").await.unwrap();
    h.start_operator(h.config()).await;
    h.eventually("the FhirClientApp is gone", t, || {
        let h = &h;
        async move {
            let gone = h
                .api::<FhirClientApp>()
                .get_opt("web")
                .await
                .map_err(|e| e.to_string())?
                .is_none();
            Ok::<_, String>(gone.then_some(()))
        }
    })
    .await;
    let dir = directory(&h).await.unwrap();
    assert_eq!(
        in_directory(&dir),
        0,
        "the application created just before the delete was deleted too: {}",
        dir["applications"]
    );
}
