//! The write budget follows Graph: under a write quota far below the documented one, the operator
//! lowers its per-tenant write rate on the first 429s and waits out `Retry-After` for the whole
//! tenant, so few requests are refused, and every client still becomes Ready.

use std::time::{Duration, Instant};

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{Harness, client_app, full_permissions, resource_app};
use serde_json::json;

const CLIENTS: usize = 60;

/// The lowest value of the write-budget gauge across tenants, if the operator has set it.
fn write_budget(h: &Harness) -> Option<f64> {
    let text = h.metrics.render(0);
    (text.lines())
        .filter(|l| l.starts_with("fhir_operator_write_budget_per_second{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::min)
}

#[tokio::test]
async fn a_shrunk_write_quota_lowers_the_budget_and_everything_converges() {
    let mut h = Harness::new("op-budget", full_permissions()).await;
    // 150 writes per 150 s (Graph allows 3,000): a burst of 150, then 1 write/s, for about 200 writes.
    h.emu.set_throttle_limits(entra_emulator::ThrottleLimits {
        throttle_writes_per_150s: 150,
        ..Default::default()
    });
    let mut r = h.emu.realism();
    r.throttling = true;
    h.emu.set_realism(r);
    h.start_operator(h.config()).await;
    let t = Duration::from_secs(150);
    let started = Instant::now();
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    for i in 0..CLIENTS {
        h.apply::<FhirClientApp>(client_app(&format!("svc-{i}"), json!({
            "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"]
        })))
        .await
        .unwrap();
    }
    let mut lowest = f64::INFINITY;
    h.eventually("every client Ready under the shrunk write quota", t, || {
        let h = &h;
        if let Some(b) = write_budget(h) {
            lowest = lowest.min(b);
        }
        async move {
            let clients = h
                .list_everywhere::<FhirClientApp>()
                .await
                .map_err(|e| e.to_string())?;
            let ready = (clients.iter())
                .map(|c| serde_json::to_value(c).unwrap_or_default())
                .filter(|c| {
                    (c["status"]["conditions"].as_array().into_iter().flatten())
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
                .count();
            Ok::<_, String>((ready == CLIENTS).then_some(()))
        }
    })
    .await;
    let took = started.elapsed();
    let calls = h.emu.calls();
    let throttled = calls.iter().filter(|c| c.status == 429).count();
    let writes = (calls.iter())
        .filter(|c| c.method != "GET" && c.operation != "token")
        .count();
    h.stop_operator().await;
    println!(
        "write budget: {CLIENTS} clients Ready in {:.1}s, {writes} write calls, {throttled} × 429 \
         ({:.2} per client), lowest write budget {lowest}/s",
        took.as_secs_f64(),
        throttled as f64 / CLIENTS as f64
    );
    assert!(
        throttled > 0,
        "the shrunk quota never throttled: the test proves nothing"
    );
    assert!(
        throttled <= CLIENTS / 2,
        "{throttled} × 429 for {CLIENTS} clients: the operator did not back off \
         (without the budget, pausing only the refused request: 197 × 429 here)"
    );
    assert!(lowest < 19.0, "the gauge never showed a decrease: {lowest}");
}
