//! Drift healed through Graph delta (issue 26 item 2): with the full re-read (`resync`, and the
//! unwatched pace too) set far beyond each test, only the delta watcher can bring a change made in
//! Entra out of band back — an edited redirect URI, a removed password, a deleted application —
//! and it must do so within two poll intervals plus the replication lag (plus the reconcile
//! itself). A quiet tenant costs only the delta polls; a stale delta token starts a new round and
//! heals still.

use std::time::{Duration, Instant};

use fhir_app_operator::api::FhirClientApp;
use fhir_app_operator_tests::operator::*;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);
/// The watcher's poll interval in these tests.
const POLL: Duration = DELTA_POLL;
/// The emulator's replication lag in these tests: a change shows in delta only after it.
const LAG: Duration = Duration::from_millis(1500);
/// Two polls and the lag, plus the reconcile that heals (a few Graph calls, a Secret write).
const HEAL_BOUND: Duration = Duration::from_secs(2 + 2 + 8);

/// The operator with a Ready FhirResourceApp `fhir` and Confidential client `portal`, healing
/// through delta only: no full re-read within an hour, watched or not.
async fn delta_only(prefix: &str) -> Harness {
    let mut h = Harness::with_emulator(prefix, |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        cfg.realism.replication_lag_ms = LAG.as_millis() as u64;
    })
    .await;
    h.start_operator(h.config_delta_only()).await;
    h.resource_app_ready().await;
    h.apply::<FhirClientApp>(client_app(
        "portal",
        json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": ["https://portal.contoso.example/cb"]}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirClientApp>("portal", "Ready", "True", T)
        .await;
    h
}

/// Waits for `what` (true when healed) at most [`HEAL_BOUND`]; returns how long it took.
async fn healed_within_bound<F, Fut>(h: &Harness, what: &str, mut healed: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    h.eventually(what, HEAL_BOUND, || {
        let f = healed();
        async move { Ok::<_, String>(f.await.then_some(())) }
    })
    .await;
    let took = start.elapsed();
    eprintln!("MEASURE {what}: healed in {:.1} s", took.as_secs_f64());
    took
}

/// The Secret's password signs the client in once it has replicated (the lag); returns the
/// Secret's data. `portal` holds no app role of the FHIR API, which requires one, so the token
/// endpoint answers AADSTS501051 ("not assigned to a role") — given only after the client secret
/// was accepted; a wrong or removed secret is AADSTS7000215.
async fn secret_works(h: &Harness) -> std::collections::BTreeMap<String, String> {
    h.eventually("the Secret's password signs in", LAG * 4, || async {
        let data = secret_data(&h.client, &h.ns.name, "portal-fhir-client")
            .await
            .ok_or("no Secret")?;
        match h.token_from_secret(&data).await {
            Ok(_) => Ok(Some(data)),
            Err(e) if e.contains("AADSTS501051") => Ok(Some(data)),
            Err(e) => Err(e),
        }
    })
    .await
}

async fn redirect_uris(h: &Harness, oid: &str) -> Value {
    let (_, app) = h
        .graph(Method::GET, &format!("/applications/{oid}"), None)
        .await;
    app["web"]["redirectUris"].clone()
}

/// Waits until the operator's watcher has ended a round for the tenant (the metric), so an edit
/// made now is one a later round sees.
async fn watched(h: &Harness) {
    h.eventually("the tenant watched through delta", T, || async {
        let ok = h
            .metrics
            .counter_sum("fhir_operator_delta_rounds_total", "outcome=\"ok\"");
        Ok::<_, String>((ok > 0.0).then_some(()))
    })
    .await;
}

/// [`delta_only`] once the tenant is watched, with `portal`'s application object ID.
async fn watched_portal(prefix: &str) -> (Harness, String) {
    let h = delta_only(prefix).await;
    watched(&h).await;
    let st = h.client_status("portal").await;
    let oid = st["applicationObjectId"].as_str().unwrap().to_string();
    (h, oid)
}

/// Deletes an application as an admin does in the portal (soft: restorable 30 days).
async fn delete_in_portal(h: &Harness, oid: &str) {
    let (code, body) = h
        .graph(Method::DELETE, &format!("/applications/{oid}"), None)
        .await;
    assert_eq!(code, 204, "{body}");
}

async fn edit_redirect_and_wait_restored(h: &Harness, oid: &str) {
    let (code, body) = h
        .graph(
            Method::PATCH,
            &format!("/applications/{oid}"),
            Some(json!({"web": {"redirectUris": ["https://evil.example/cb"]}})),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    healed_within_bound(h, "redirect URI restored", || async {
        redirect_uris(h, oid).await == json!(["https://portal.contoso.example/cb"])
    })
    .await;
}

#[tokio::test]
async fn out_of_band_changes_are_healed_through_delta_without_a_resync() {
    let (mut h, oid) = watched_portal("drift-delta").await;

    // (a) A redirect URI edited in the portal.
    edit_redirect_and_wait_restored(&h, &oid).await;

    // (c) The application deleted in the portal (soft): restored, the same object.
    delete_in_portal(&h, &oid).await;
    healed_within_bound(&h, "deleted application restored", || async {
        let (code, _) = h
            .graph(Method::GET, &format!("/applications/{oid}"), None)
            .await;
        code == 200 && h.client_status("portal").await["applicationObjectId"] == oid.as_str()
    })
    .await;
    // … and deleted for good (purged): recreated as a new application, the Secret follows it.
    delete_in_portal(&h, &oid).await;
    h.purge_deleted(&oid).await;
    healed_within_bound(&h, "purged application recreated", || async {
        let st = h.client_status("portal").await;
        let new = st["applicationObjectId"].as_str().unwrap_or(&oid);
        let ready = condition(&json!({"status": st}), "Ready")["status"] == "True";
        new != oid && ready
    })
    .await;
    let st = h.client_status("portal").await;
    let data = secret_works(&h).await;
    assert_eq!(data["AZURE_CLIENT_ID"], st["clientId"].as_str().unwrap());
    let changes = h
        .metrics
        .counter_sum("fhir_operator_delta_requeues_total", "reason=\"change\"");
    assert!(changes >= 3.0, "each heal came through delta: {changes}");
    h.stop_operator().await;
}

/// (b) The client's password removed in the portal: a new one is issued and the Secret works. A
/// password written less than the replication grace (120 s) ago and not listed is taken for one
/// Graph has not replicated yet; the reconcile delta triggers keeps it and looks again when the
/// grace ends, so the bound counts from then.
#[tokio::test]
async fn a_password_removed_out_of_band_is_issued_again() {
    let (mut h, _) = watched_portal("drift-password").await;
    let grace = Duration::from_secs(120);
    let removed = Instant::now();
    let key_id = h.remove_password_in_portal("portal").await;
    h.eventually("password re-issued", grace + HEAL_BOUND, || async {
        Ok::<_, String>(reissued(&h, &key_id).await.then_some(()))
    })
    .await;
    eprintln!(
        "MEASURE password removed within the grace: re-issued after {:.1} s",
        removed.elapsed().as_secs_f64()
    );
    secret_works(&h).await;
    // And once more, now that the grace is over: within the bound.
    tokio::time::sleep(grace).await;
    let key_id = h.remove_password_in_portal("portal").await;
    healed_within_bound(&h, "password removed after the grace re-issued", || {
        reissued(&h, &key_id)
    })
    .await;
    secret_works(&h).await;
    h.stop_operator().await;
}

/// Whether `portal`'s status names a credential other than `old`.
async fn reissued(h: &Harness, old: &str) -> bool {
    let st = h.client_status("portal").await;
    st["credential"]["keyId"].as_str().is_some_and(|k| k != old)
}

/// Graph calls in the emulator's log after `from` that are not delta polls or token requests.
fn per_client_calls(h: &Harness, from: usize) -> Vec<String> {
    h.emu.calls()[from..]
        .iter()
        .filter(|c| !c.operation.ends_with(".delta") && !c.operation.contains("token"))
        .map(|c| format!("{} {} {}", c.method, c.path, c.operation))
        .collect()
}

#[tokio::test]
async fn a_quiet_tenant_costs_only_the_delta_polls() {
    const CLIENTS: usize = 4;
    let mut h = delta_only("drift-quiet").await;
    for i in 0..CLIENTS {
        h.apply::<FhirClientApp>(client_app(&format!("svc-{i}"), service_spec(json!({}))))
            .await
            .unwrap();
    }
    for i in 0..CLIENTS {
        h.wait_condition::<FhirClientApp>(&format!("svc-{i}"), "Ready", "True", T)
            .await;
    }
    // The operator's own writes show in delta too; the watcher compares each entry with what the
    // reconcile left and re-reads nothing for them. A reconcile that kept writing (or a watcher that
    // took its own writes for drift) would never get quiet.
    h.eventually("quiet after the own writes' echo", T, || async {
        let from = h.emu.calls().len();
        tokio::time::sleep(POLL * 3 + LAG).await;
        Ok::<_, String>(per_client_calls(&h, from).is_empty().then_some(()))
    })
    .await;
    let window = Duration::from_secs(12);
    let from = h.emu.calls().len();
    tokio::time::sleep(window).await;
    let calls = h.emu.calls()[from..].to_vec();
    let other = per_client_calls(&h, from);
    let polls = calls
        .iter()
        .filter(|c| c.operation.ends_with(".delta"))
        .count();
    let clients = CLIENTS + 1;
    let echoes = h
        .metrics
        .counter_sum("fhir_operator_delta_requeues_total", "reason=\"change\"");
    let named = h
        .metrics
        .counter_sum("fhir_operator_delta_changes_total", "");
    eprintln!(
        "MEASURE creating {clients} clients: delta named {} objects, {} reconciles triggered (own writes are no drift)",
        named as u64, echoes as u64
    );
    assert_eq!(echoes, 0.0, "the operator's own writes are not drift");
    // The own tenant is watched before the controllers read Graph (its first round ends first), so
    // no owner's first read predates the round and none is read a second time for it.
    let reread = h
        .metrics
        .counter_sum("fhir_operator_delta_requeues_total", "reason=\"baseline\"");
    assert_eq!(reread, 0.0, "owners re-read after the first round");
    eprintln!(
        "MEASURE quiet window {} s, {clients} clients + 1 resource app: {polls} delta polls, {} other Graph calls",
        window.as_secs(),
        other.len()
    );
    assert!(other.is_empty(), "no per-client reads: {other:?}");
    let rounds = window.as_secs_f64() / POLL.as_secs_f64();
    assert!(
        polls as f64 <= 2.0 * (rounds + 2.0),
        "two requests a round (one per collection): {polls} in {rounds} rounds"
    );
    assert!(
        polls >= 2 * (rounds as usize / 2),
        "the watcher polls: {polls}"
    );
    h.stop_operator().await;
}

async fn expire_delta_tokens(h: &Harness, body: Option<Value>) {
    let mut rb = h
        .http
        .post(format!("{}/_emulator/delta/expire", h.emu.base_url()));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    assert_eq!(rb.send().await.unwrap().status().as_u16(), 204);
}

#[tokio::test]
async fn a_stale_delta_token_starts_a_new_round_and_drift_still_heals() {
    let (mut h, oid) = watched_portal("drift-stale").await;
    // An expired token (400 syncStateNotFound), then Graph's synchronization reset (410).
    for body in [None, Some(json!({"reset": true}))] {
        let stale_before = h
            .metrics
            .counter_sum("fhir_operator_delta_rounds_total", "outcome=\"stale\"");
        expire_delta_tokens(&h, body).await;
        h.eventually("the stale link seen", T, || async {
            let stale = h
                .metrics
                .counter_sum("fhir_operator_delta_rounds_total", "outcome=\"stale\"");
            Ok::<_, String>((stale > stale_before).then_some(()))
        })
        .await;
        edit_redirect_and_wait_restored(&h, &oid).await;
    }
    let requeued = h
        .metrics
        .counter_sum("fhir_operator_delta_requeues_total", "reason=\"stale\"");
    assert!(
        requeued >= 4.0,
        "every owner (the API and its client) re-read after each new round: {requeued}"
    );
    h.stop_operator().await;
}
