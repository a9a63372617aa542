//! Realism knobs: replication lag, throttling, faults (deterministic by seed), latency, persistence.
mod common;
use common::*;
use entra_emulator::Realism;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn replication_lag_hides_new_objects_and_secrets() {
    let mut cfg = config();
    cfg.realism.replication_lag_ms = 1500;
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let app = op
        .post("/applications", json!({"displayName": "lagged"}))
        .await;
    assert_eq!(app.status, 201, "the creating request sees the object");
    let id = app.body["id"].as_str().unwrap();
    let app_id = app.body["appId"].as_str().unwrap();
    assert_eq!(op.get(&format!("/applications/{id}")).await.status, 404);
    assert_eq!(
        op.get(&format!("/applications?$filter=appId eq '{app_id}'"))
            .await
            .body["value"],
        json!([])
    );
    let sp = op
        .post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    assert_eq!(sp.status, 400);
    assert_eq!(
        sp.body["error"]["details"][0]["code"],
        "NoBackingApplicationObject"
    );
    assert!(
        sp.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not reference a valid application object")
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(op.get(&format!("/applications/{id}")).await.status, 200);
    assert_eq!(
        op.post("/servicePrincipals", json!({"appId": app_id}))
            .await
            .status,
        201
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // A new secret is refused until it has replicated.
    let pw = op
        .post(&format!("/applications/{id}/addPassword"), json!({}))
        .await;
    let secret = pw.body["secretText"].as_str().unwrap();
    let (st, v) = secret_token(
        &c,
        &emu,
        app_id,
        secret,
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 401);
    assert_eq!(v["error_codes"], json!([7000215]));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (st, _) = secret_token(
        &c,
        &emu,
        app_id,
        secret,
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_returns_429_with_retry_after() {
    let mut cfg = config();
    cfg.realism.throttling = true;
    cfg.throttle_limits.throttle_resource_units_per_10s = 5;
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let mut throttled = None;
    for _ in 0..10 {
        let r = op
            .get(&format!("/applications(appId='{}')", emu.client_id()))
            .await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.status, 200);
    }
    let r = throttled.expect("throttled within 10 calls");
    assert_eq!(err_code(&r), "TooManyRequests");
    assert_eq!(r.body["error"]["message"], "Please retry again later.");
    assert_eq!(r.body["error"]["innerError"]["code"], "429");
    let ra: f64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(ra >= 1.0);
    assert!(
        r.headers["x-ms-throttle-scope"]
            .to_str()
            .unwrap()
            .starts_with("Tenant_Application/")
    );
    assert_eq!(
        r.headers["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
    // The bucket refills.
    tokio::time::sleep(Duration::from_secs_f64(ra)).await;
    assert_eq!(
        op.get(&format!("/applications(appId='{}')", emu.client_id()))
            .await
            .status,
        200
    );
    // Writes have their own bucket.
    let put = c
        .put(format!("{}/_emulator/realism", emu.base_url()))
        .json(&json!({"throttle_resource_units_per_10s": 1000, "throttle_writes_per_150s": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut statuses = vec![];
    for i in 0..3 {
        statuses.push(
            op.post("/applications", json!({"displayName": format!("w{i}")}))
                .await
                .status,
        );
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    emu.shutdown().await;
}

async fn fault_run(seed: u64) -> (Vec<String>, Vec<String>) {
    let (emu, _) = start(config()).await;
    let c = {
        let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let token = operator_token(&c, &emu).await;
    emu.set_realism(Realism {
        error_rate: 0.25,
        drop_rate: 0.15,
        seed,
        ..Realism::default()
    });
    let mut outcomes = vec![];
    for _ in 0..40 {
        let r = c
            .get(format!(
                "{}/applications(appId='{}')",
                emu.graph_url(),
                emu.client_id()
            ))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        outcomes.push(match r {
            Ok(r) => r.status().as_u16().to_string(),
            Err(_) => "dropped".to_string(),
        });
    }
    let log: Vec<String> = emu
        .calls()
        .iter()
        .skip(1)
        .map(|c| format!("{}:{}", c.operation, c.status))
        .collect();
    emu.shutdown().await;
    (outcomes, log)
}

#[tokio::test]
async fn faults_are_deterministic_per_seed() {
    let (a, la) = fault_run(7).await;
    let (b, lb) = fault_run(7).await;
    let (c, _) = fault_run(8).await;
    assert_eq!(a, b, "same seed, same faults");
    assert_eq!(la, lb);
    assert_ne!(a, c, "another seed, other faults");
    assert!(a.iter().any(|x| x == "dropped"), "{a:?}");
    assert!(a.iter().any(|x| x.starts_with('5')), "{a:?}");
    assert!(a.iter().any(|x| x == "200"), "{a:?}");
}

#[tokio::test]
async fn latency_and_runtime_realism_api() {
    let (emu, c) = start(config()).await;
    let r: Value = c
        .get(format!("{}/_emulator/realism", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["latency_ms"], 0);
    let r: Value = c
        .put(format!("{}/_emulator/realism", emu.base_url()))
        .json(&json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["latency_ms"], 300);
    let t = Instant::now();
    let _ = operator_token(&c, &emu).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.shutdown().await;
}

#[tokio::test]
async fn persistence_round_trip() {
    let dir = std::env::temp_dir().join(format!("entra-emu-test-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let mut cfg = config();
    cfg.state_file = Some(state.clone());
    let (emu, c) = start(cfg.clone()).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let app = op
        .post(
            "/applications",
            json!({"displayName": "persisted", "identifierUris": ["api://contoso.example/persisted"]}),
        )
        .await;
    let id = app.body["id"].as_str().unwrap().to_string();
    let app_id = app.body["appId"].as_str().unwrap().to_string();
    op.post("/servicePrincipals", json!({"appId": app_id}))
        .await;
    let pw = op
        .post(&format!("/applications/{id}/addPassword"), json!({}))
        .await;
    let secret = pw.body["secretText"].as_str().unwrap().to_string();
    emu.shutdown().await;
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("persisted")
    );

    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let g = op.get(&format!("/applications/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(
        g.body["identifierUris"],
        json!(["api://contoso.example/persisted"])
    );
    // The operator still owns it and its secret still works.
    assert_eq!(
        op.patch(
            &format!("/applications/{id}"),
            json!({"notes": "after restart"})
        )
        .await
        .status,
        204
    );
    let (st, v) = secret_token(
        &c,
        &emu,
        &app_id,
        &secret,
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
