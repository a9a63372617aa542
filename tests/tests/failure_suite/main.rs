//! Failure suite: the operator binary, run as a real process, is SIGKILLed at random points of its
//! reconciles, faced with Graph throttling storms, 5xx, dropped connections and replication lag, an
//! API server that crashes and comes back, and a leader that dies. After each scenario the invariants
//! in `fhir_app_operator_tests::invariants` must hold: one application per resource, no credential
//! beyond the rotation logic's bound, working Secrets, nothing left after deletion, no secret in logs,
//! Events or status, everything Ready.
//!
//! Randomness comes from one printed seed; `FAILURE_SUITE_SEED=<n>` repeats a run's choices (timing
//! on a busy machine still varies). Each scenario prints one `failure_suite:` summary line.

mod scenario;
mod specs;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use entra_emulator::Realism;
use fhir_app_operator_tests::invariants::{self, Converged};
use fhir_app_operator_tests::operator::client_app;
use k8s_openapi::api::coordination::v1::Lease;
use rand::Rng;
use serde_json::{Value, json};
use testenv::{ControlPlane, OperatorProcess};

use scenario::{FHIR_SCOPE, GRACE, Kills, Registration, Scenario, start_operator};
use specs::{client, clients, resource, resource_for_team, team_clients};

/// 50 lives of the operator, each SIGKILLed after a random 50–800 ms, while resources are created,
/// changed, deleted and rotated; then 10 more during the deletion of everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_reconciles() {
    let mut s = Scenario::new("fs-kill").await;
    s.stretch_reconciles();
    let first: Vec<Value> = [resource("fhir-a"), resource("fhir-b")]
        .into_iter()
        .chain(clients(0..10, "fhir-a"))
        .chain(clients(10..20, "fhir-b"))
        .collect();
    s.apply_all(&first).await;

    let mut kills = Kills::default();
    s.kill_lives(&mut kills, 20).await;
    // Between lives: some clients changed (new generation), some deleted, then a few added.
    for i in [0, 1, 5] {
        let mut c = client(i, "fhir-a");
        c["spec"]["displayName"] = json!(format!("changed {i}"));
        s.apply_all(&[c]).await;
    }
    s.delete_clients(&["c2-fhir-a".into(), "c13-fhir-b".into(), "c14-fhir-b".into()])
        .await;
    s.kill_lives(&mut kills, 15).await;
    s.apply_all(&clients(20..24, "fhir-b")).await;
    s.kill_lives(&mut kills, 15).await;

    let op = s.operator("final");
    let (c, took) = s.converge("converged after 50 SIGKILLs").await;
    op.sigterm(GRACE).await.unwrap();
    // Stopped: the same must hold on the state it left behind.
    let (c2, _) = s.converge("still converged after a graceful stop").await;
    assert_eq!(c.apps, c2.apps);

    let held = s.delete_everything().await;
    let mut deletion_kills = Kills::default();
    s.kill_lives(&mut deletion_kills, 10).await;
    let op = s.operator("cleanup");
    let t = Instant::now();
    let soft = s.all_gone(&held).await;
    let cleanup = t.elapsed();
    op.sigterm(GRACE).await.unwrap();
    let summary = format!(
        "{}; {} resources → {} apps, {} credentials, {} tokens; converged {:.1}s after the last kill; \
         all deleted during {} more kills: nothing left ({soft} soft-deleted apps) {:.1}s after the last kill",
        kills.describe(),
        c.resources,
        c.apps,
        c.credentials,
        c.tokens,
        took.as_secs_f64(),
        deletion_kills.count,
        cleanup.as_secs_f64()
    );
    s.finish(summary).await;
}

/// Everything deleted and applied again under the same names (an Argo CD prune and re-sync, a
/// namespace re-created), with the operator SIGKILLed through each step. Entra keeps soft-deleted
/// applications and their uniqueName for 30 days: each resource with `deletionPolicy: Delete` must
/// get its own application back (same client ID and object ID), each with `Purge` a new one, without
/// duplicates, without any credential from before the deletion working again, and without a loop
/// over the deleted items once converged (issue 24 item 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_created_again_under_sigkills() {
    let mut s = Scenario::new("fs-recreate").await;
    s.stretch_reconciles();
    // Clients 5..10 purge on deletion; the resource app and clients 0..5 soft-delete.
    let objects: Vec<Value> = std::iter::once(resource("fhir-r"))
        .chain(
            clients(0..10, "fhir-r")
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    if i >= 5 {
                        c["spec"]["deletionPolicy"] = json!("Purge");
                    }
                    c
                }),
        )
        .collect();
    s.apply_all(&objects).await;
    let mut kills = Kills::default();
    s.kill_lives(&mut kills, 10).await;
    let op = s.operator("first");
    s.converge("converged before the deletion").await;
    op.sigterm(GRACE).await.unwrap();
    let first = s.registrations().await;

    let held = s.delete_everything().await;
    s.kill_lives(&mut kills, 10).await;
    let op = s.operator("deletion");
    let soft = s.all_gone(&held).await;
    op.sigterm(GRACE).await.unwrap();
    for (key, reg) in &first {
        let (code, _) = s.deleted_item(&reg.object_id).await;
        let expected = if reg.purge { 404 } else { 200 };
        assert_eq!(code, expected, "{key}: deleted item {}", reg.object_id);
    }

    s.apply_all(&objects).await;
    s.kill_lives(&mut kills, 15).await;
    let op = s.operator("final");
    let (c, took) = s.converge("converged after delete and re-create").await;
    let again = s.registrations().await;
    let restored = assert_identities(&first, &again);
    for (key, reg) in &again {
        let (code, _) = s.deleted_item(&reg.object_id).await;
        assert_eq!(
            code, 404,
            "{key}: still in the deleted items after convergence"
        );
    }
    for data in &held {
        assert!(
            invariants::token_for(&s.h, data).await.is_err(),
            "client {}: a credential issued before the deletion works again after the re-create",
            data["AZURE_CLIENT_ID"]
        );
    }
    // Converged means quiet over the deleted items: no restore or purge loop.
    let before = s.calls_with(|c| c.operation.starts_with("deletedItems."));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let looped = s.calls_with(|c| c.operation.starts_with("deletedItems.")) - before;
    assert_eq!(looped, 0, "deleted-items calls after convergence");
    let restores = s.calls_with(|c| c.operation == "deletedItems.restore" && c.status == 200);

    let held = s.delete_everything().await;
    let soft_end = s.all_gone(&held).await;
    op.sigterm(GRACE).await.unwrap();
    let summary = format!(
        "{}; {} resources deleted ({soft} soft-deleted apps) and created again: {restored} got their \
         application back ({restores} restores of apps and service principals), {} new after Purge; \
         {} apps, {} credentials, {} tokens; converged {:.1}s after the last kill; \
         deleted again: nothing left ({soft_end} soft-deleted apps)",
        kills.describe(),
        c.resources,
        first.len() - restored,
        c.apps,
        c.credentials,
        c.tokens,
        took.as_secs_f64()
    );
    s.finish(summary).await;
}

/// After a delete and re-create: every soft-deleted resource has its application and service
/// principal back (same client and object IDs), every purged one a new one. Returns how many came back.
fn assert_identities(
    first: &BTreeMap<String, Registration>,
    again: &BTreeMap<String, Registration>,
) -> usize {
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        again.keys().collect::<Vec<_>>()
    );
    let mut restored = 0;
    for (key, before) in first {
        let after = &again[key];
        if before.purge {
            assert_ne!(
                before.client_id, after.client_id,
                "{key}: purged, yet the same application"
            );
        } else {
            assert_eq!(
                (&before.client_id, &before.object_id),
                (&after.client_id, &after.object_id),
                "{key}: not its own application back after a soft delete"
            );
            assert_eq!(
                before.service_principal_id, after.service_principal_id,
                "{key}: not its own service principal back after a soft delete"
            );
            restored += 1;
        }
    }
    restored
}

/// One operator through four fault phases, each while resources are added, changed or deleted: a 429
/// storm (Graph's token bucket shrunk to 2 resource units/s), random 5xx, dropped connections, and
/// replication lag; then changes made out of band (a removed client secret, a deleted service
/// principal) healed under 5xx and drops through Graph delta alone; then deletion of everything
/// under 5xx and drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_throttling_5xx_drops_and_replication_lag() {
    let mut s = Scenario::new("fs-faults").await;
    let seed: u64 = s.rng.r#gen();
    let faults = |r: Realism| s.h.emu.set_realism(Realism { seed, ..r });
    let phase = Duration::from_secs(8);
    // Delta polled every 2 s and no full re-read within the scenario (an hour, watched or not): an
    // out-of-band change is found through Graph delta or not at all.
    let mut env = s.env();
    env.extend([
        ("FHIR_OP_DELTA_POLL", "2s".to_string()),
        ("FHIR_OP_RESYNC", "1h".to_string()),
        ("FHIR_OP_RESYNC_UNWATCHED", "1h".to_string()),
    ]);
    let op = start_operator(&env, "faults", &s.log());

    s.h.emu.set_throttle_limits(entra_emulator::ThrottleLimits {
        throttle_resource_units_per_10s: 10,
        ..Default::default()
    });
    faults(Realism {
        throttling: true,
        ..Default::default()
    });
    s.apply_all(&[resource("fhir")]).await;
    s.apply_all(&clients(0..5, "fhir")).await;
    tokio::time::sleep(phase).await;

    faults(Realism {
        error_rate: 0.3,
        ..Default::default()
    });
    s.apply_all(&clients(5..10, "fhir")).await;
    let mut changed = client(0, "fhir");
    changed["spec"]["roles"] = json!(["globalReader", "globalExporter"]);
    s.apply_all(&[changed]).await;
    tokio::time::sleep(phase).await;

    faults(Realism {
        drop_rate: 0.25,
        ..Default::default()
    });
    s.apply_all(&clients(10..15, "fhir")).await;
    s.delete_clients(&["c1-fhir".into(), "c2-fhir".into()])
        .await;
    tokio::time::sleep(phase).await;

    faults(Realism {
        replication_lag_ms: 3000,
        ..Default::default()
    });
    s.apply_all(&clients(15..20, "fhir")).await;
    s.delete_clients(&["c3-fhir".into()]).await;
    tokio::time::sleep(phase).await;

    faults(Realism::default());
    let (c, took) = s.converge("converged after the faults stopped").await;

    // As an admin in the portal: c6's client secret removed, c7's service principal deleted; then
    // 5xx and dropped connections, on the delta polls too, while the operator heals them.
    let removed = s.h.remove_password_in_portal("c6-fhir").await;
    delete_service_principal_out_of_band(&s, "c7-fhir").await;
    faults(Realism {
        error_rate: 0.2,
        drop_rate: 0.1,
        ..Default::default()
    });
    tokio::time::sleep(phase).await;
    faults(Realism::default());
    let (_, healed) = s
        .converge("a removed secret and a deleted service principal healed through delta")
        .await;
    let now = s.h.client_status("c6-fhir").await;
    assert_ne!(
        now["credential"]["keyId"].as_str(),
        Some(removed.as_str()),
        "c6's Secret still names the removed secret"
    );

    faults(Realism {
        error_rate: 0.2,
        drop_rate: 0.1,
        ..Default::default()
    });
    let held = s.delete_everything().await;
    tokio::time::sleep(phase).await;
    faults(Realism::default());
    let t = Instant::now();
    let soft = s.all_gone(&held).await;
    let cleanup = t.elapsed();
    op.sigterm(GRACE).await.unwrap();
    // The scenario proves something only if the faults really hit the operator's calls.
    let (throttled, errors, drops) = (
        s.calls_with(|c| c.status == 429),
        s.calls_with(|c| c.operation == "fault.error"),
        s.calls_with(|c| c.operation == "fault.drop"),
    );
    assert!(
        throttled > 0 && errors > 0 && drops > 0,
        "faults not injected: {throttled} × 429, {errors} × 5xx, {drops} drops"
    );
    let summary = format!(
        "faults injected: {} × 429, {} × 5xx, {} dropped connections, 3 s replication lag for {}s; \
         {} resources → {} apps, {} credentials, {} tokens; converged {:.1}s after the faults stopped; \
         a removed secret and a deleted service principal healed through delta {:.1}s after the faults stopped; \
         deletion under 5xx and drops: nothing left ({soft} soft-deleted apps) {:.1}s after they stopped",
        s.calls_with(|c| c.status == 429),
        s.calls_with(|c| c.operation == "fault.error"),
        s.calls_with(|c| c.operation == "fault.drop"),
        phase.as_secs(),
        c.resources,
        c.apps,
        c.credentials,
        c.tokens,
        took.as_secs_f64(),
        healed.as_secs_f64(),
        cleanup.as_secs_f64()
    );
    s.finish(summary).await;
}

/// A control plane of this test's own, so restarting its API server disturbs no other test; stopped
/// on drop (its files kept when the test failed).
/// Deletes `name`'s service principal as an admin does in the portal.
async fn delete_service_principal_out_of_band(s: &Scenario, name: &str) {
    let st = s.h.client_status(name).await;
    let sp = st["servicePrincipalObjectId"].as_str().unwrap();
    let path = format!("/servicePrincipals/{sp}");
    let (code, body) = s.h.graph(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(code, 204, "{body}");
}

async fn private_plane() -> ControlPlane {
    let dir = std::env::temp_dir().join(format!("fs-plane-{}", std::process::id()));
    let opts = testenv::plane::Options {
        die_with_parent: true,
        audit_log: false,
    };
    ControlPlane::start(&dir, opts)
        .await
        .expect("a private control plane")
}

/// The API server crashes (SIGKILL) mid-reconcile and again mid-deletion, and comes back at the same
/// address: the operator keeps running, resumes its watches and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_crash_and_restart() {
    let mut plane = private_plane().await;
    // Its own control plane: the only scenario whose operator may watch every namespace, so a team's
    // clients referencing the resource app across namespaces are in its mix.
    let mut s = Scenario::on_cluster(
        "fs-apiserver",
        plane.client().await.unwrap(),
        plane.kubeconfig().to_path_buf(),
        true,
    )
    .await;
    let team = s.team.as_ref().unwrap().name.clone();
    let ns = s.h.ns.name.clone();
    s.h.emu.set_realism(Realism {
        latency_ms: 20,
        ..Default::default()
    });
    let mut op = s.operator("apiserver");
    s.apply_all(&[resource_for_team("fhir", &team)]).await;
    s.apply_all(&clients(0..8, "fhir")).await;
    s.apply_all(&team_clients(20..25, "fhir", &ns, &team)).await;
    let wait = s.rng.gen_range(300..=1500);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let first = plane.restart_apiserver().await.unwrap();
    s.apply_all(&clients(8..12, "fhir")).await;
    s.delete_clients(&["c1-fhir".into()]).await;
    let (c, took) = s.converge("converged after an API server restart").await;
    let alive = |op: &mut OperatorProcess| {
        if let Some(status) = op.exited() {
            panic!(
                "the operator exited ({status}) after the API server restart; log: {}",
                s.log().display()
            );
        }
    };
    alive(&mut op);

    let held = s.delete_everything().await;
    let second = plane.restart_apiserver().await.unwrap();
    let t = Instant::now();
    let soft = s.all_gone(&held).await;
    let cleanup = t.elapsed();
    alive(&mut op);
    op.sigterm(GRACE).await.unwrap();
    let summary = format!(
        "API server SIGKILLed {wait} ms into the first reconciles (down {:.1}s) and during deletion (down {:.1}s), \
         operator kept running; {} resources → {} apps, {} credentials, {} tokens; converged {:.1}s after the restart; \
         nothing left after deletion ({soft} soft-deleted apps) {:.1}s after the second restart",
        first.as_secs_f64(),
        second.as_secs_f64(),
        c.resources,
        c.apps,
        c.credentials,
        c.tokens,
        took.as_secs_f64(),
        cleanup.as_secs_f64()
    );
    s.finish(summary).await;
}

/// The API server refuses every Secret write for a while (an admission policy) while clients are
/// created and rotate: each retry must reuse or remove the credential it issued, so at most the
/// current and the previous credential exist when writes are allowed again, and all converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_writes_refused_for_a_while() {
    let mut s = Scenario::new("fs-secrets").await;
    let mut env = s.env();
    env.push(("FHIR_OP_STALLED_RETRY", "2s".into()));
    let op = start_operator(&env, "secrets", &s.log());
    s.apply_all(&[resource("fhir")]).await;
    s.apply_all(&clients(0..5, "fhir")).await;
    let (before, _) = s
        .converge("converged before Secret writes are refused")
        .await;
    let policy = s.h.refuse_secret_writes().await;
    // New clients, and the rotating ones (every ~10 s) try to write while it is refused.
    s.apply_all(&clients(5..10, "fhir")).await;
    let refused = Duration::from_secs(s.rng.gen_range(12..=20));
    let mut most = 0;
    let t = Instant::now();
    while t.elapsed() < refused {
        let dir = invariants::directory(&s.h).await.unwrap_or_default();
        for app in dir["applications"].as_array().into_iter().flatten() {
            most = most.max(app["passwordCredentials"].as_array().map_or(0, Vec::len));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Current + previous (during a rotation's overlap) + the one a retry is trying to write, which it
    // removes again when the write is refused; without that, every 2 s retry would add one more.
    assert!(
        most <= 3,
        "{most} client secrets on one application while Secret writes were refused"
    );
    s.h.allow_secret_writes(&policy).await;
    let (c, took) = s
        .converge("converged after Secret writes are allowed again")
        .await;
    op.sigterm(GRACE).await.unwrap();
    let summary = format!(
        "{} resources converged, then Secret writes refused for {:.0}s while 5 clients were added and rotations fell due: \
         at most {most} client secrets on any application meanwhile; {} resources → {} apps, {} credentials, {} tokens; \
         converged {:.1}s after writes were allowed",
        before.resources,
        refused.as_secs_f64(),
        c.resources,
        c.apps,
        c.credentials,
        c.tokens,
        took.as_secs_f64()
    );
    s.finish(summary).await;
}

/// Two replicas with leader election; the Lease holder is SIGKILLed twice (the killed one comes back as
/// standby): the standby never reconciles while the leader lives, takes the Lease within the lease
/// duration plus one retry period, and reconciles what changed meanwhile, without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_standby_takes_over() {
    let s = Scenario::new("fs-leader").await;
    let lease = "fs-leader";
    let mut env = s.env();
    env.extend([
        ("FHIR_OP_LEADER_ELECTION", "true".to_string()),
        ("FHIR_OP_LEASE_NAME", lease.into()),
        ("POD_NAMESPACE", s.h.ns.name.clone()),
    ]);
    let leases = s.h.api::<Lease>();
    let holder = || async {
        let l = leases.get_opt(lease).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(l.and_then(|l| l.spec?.holder_identity))
    };
    // One log per process, to tell which replica led when.
    let mut lives = 0;
    let mut start = |id: &str| {
        lives += 1;
        let log = s.dir.join(format!("{id}-{lives}.log"));
        (start_operator(&env, id, &log), log)
    };
    let (a, _) = start("replica-a");
    s.h.eventually(
        "replica-a holds the Lease",
        Duration::from_secs(30),
        || async { Ok(holder().await?.filter(|h| h == "replica-a")) },
    )
    .await;
    let (b, b_log) = start("replica-b");
    s.apply_all(&[resource("fhir")]).await;
    s.apply_all(&clients(0..6, "fhir")).await;
    s.converge("converged with replica-a leading").await;

    let (mut leader, mut standby, mut standby_log) = (a, b, b_log);
    let (mut takeovers, mut last) = (vec![], Converged::default());
    for round in 0..2 {
        let log = std::fs::read_to_string(&standby_log).unwrap();
        assert!(
            !log.contains("became leader"),
            "standby {} became leader while {} held the Lease",
            standby.name(),
            leader.name()
        );
        let killed = leader.name().to_string();
        leader.sigkill().unwrap();
        let t = Instant::now();
        let base = 6 + round * 3;
        s.apply_all(&clients(base..base + 3, "fhir")).await;
        s.delete_clients(&[format!("c{round}-fhir")]).await;
        let next = standby.name().to_string();
        let what =
            format!("{next} takes the Lease after {killed} was killed (lease duration 15 s)");
        s.h.eventually(&what, Duration::from_secs(45), || async {
            Ok(holder().await?.filter(|h| *h == next))
        })
        .await;
        let took_lease = t.elapsed();
        last = s
            .converge(&format!("converged with {next} leading"))
            .await
            .0;
        takeovers.push((took_lease, t.elapsed()));
        // The killed replica comes back as the new standby.
        let (back, back_log) = start(&killed);
        (leader, standby, standby_log) = (standby, back, back_log);
    }

    let held = s.delete_everything().await;
    let soft = s.all_gone(&held).await;
    leader.sigterm(GRACE).await.unwrap();
    standby.sigterm(GRACE).await.unwrap();
    let rounds: Vec<String> = takeovers
        .iter()
        .map(|(lease, done)| {
            format!(
                "Lease taken {:.1}s and changes reconciled {:.1}s after the kill",
                lease.as_secs_f64(),
                done.as_secs_f64()
            )
        })
        .collect();
    let summary = format!(
        "2 leader SIGKILLs: {}; standby never led while the leader lived; {} resources → {} apps, {} credentials, {} tokens; \
         nothing left after deletion ({soft} soft-deleted apps)",
        rounds.join("; "),
        last.resources,
        last.apps,
        last.credentials,
        last.tokens
    );
    s.finish(summary).await;
}

/// The ARM role assignments of the emulator (all live ones) as (principal, role definition, name).
async fn arm_assignments(s: &Scenario) -> Vec<(String, String, String)> {
    let v: Value =
        s.h.http
            .get(format!(
                "{}/_emulator/arm/role-assignments",
                s.h.emu.base_url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let str_at = |a: &Value, p: &str| {
        a.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                str_at(a, "/properties/principalId"),
                str_at(a, "/properties/roleDefinitionId"),
                str_at(a, "/name"),
            )
        })
        .collect()
}

/// Managed-target clients while the operator is SIGKILLed in the middle of their role assignments
/// (ARM refuses a new service principal for 2 s, so kills land between the PUTs and their retries):
/// each client ends with exactly one assignment per wanted role, and none is left after deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_role_assignments_leaves_no_duplicate_and_deletion_leaves_none() {
    let mut s = Scenario::new("fs-rbac").await;
    let mut r = s.h.emu.realism();
    r.latency_ms = 15;
    s.h.emu.set_realism(r);
    let managed: Vec<Value> = (0..6)
        .map(|i| {
            client_app(
                &format!("m{i}"),
                json!({"type": "Service", "target": {"managed": {
                "resourceId": FHIR_SCOPE, "dataRoles": ["FHIR Data Reader", "FHIR Data Writer"]}}}),
            )
        })
        .collect();
    s.apply_all(&managed).await;
    let mut kills = Kills::default();
    s.kill_lives(&mut kills, 20).await;
    let op = s.operator("final");
    let (c, took) = s.converge("managed clients converged after SIGKILLs").await;
    op.sigterm(GRACE).await.unwrap();
    let seeded = 1;
    let all = arm_assignments(&s).await;
    let mut per_grant = std::collections::BTreeMap::new();
    for (principal, role, _) in &all {
        *per_grant
            .entry((principal.clone(), role.clone()))
            .or_insert(0) += 1;
    }
    assert_eq!(all.len(), seeded + 2 * managed.len(), "{all:#?}");
    assert!(
        per_grant.values().all(|n| *n == 1),
        "duplicate assignments: {per_grant:#?}"
    );
    let puts = s.calls_with(|c| c.operation == "arm.roleAssignments.put");
    let refused = s.calls_with(|c| c.operation == "arm.roleAssignments.put" && c.status == 400);

    let held = s.delete_everything().await;
    let mut deletion_kills = Kills::default();
    s.kill_lives(&mut deletion_kills, 5).await;
    let op = s.operator("cleanup");
    let soft = s.all_gone(&held).await;
    op.sigterm(GRACE).await.unwrap();
    let left = arm_assignments(&s).await;
    assert_eq!(left.len(), seeded, "left after deletion: {left:#?}");
    let summary = format!(
        "{}; {} managed clients → {} role assignments, no duplicate ({puts} PUTs, {refused} PrincipalNotFound); converged {:.1}s after the last kill; \
         all deleted during {} more kills: no assignment left ({soft} soft-deleted apps)",
        kills.describe(),
        c.resources,
        all.len() - seeded,
        took.as_secs_f64(),
        deletion_kills.count
    );
    s.finish(summary).await;
}

/// Issue 23 item 4: an operator stopped in its first moments (before its watch caches are ready,
/// where kube-runtime's graceful shutdown never finished: the failing CI log showed SIGTERM 27 ms
/// after "fhir-app-operator started", then "applier queue terminated, starting graceful shutdown" and
/// nothing more) exits within its shutdown grace period, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_start_exits_within_the_grace_period() {
    let s = Scenario::new("fs-term").await;
    s.apply_all(&[resource("fhir")]).await;
    s.apply_all(&clients(0..3, "fhir")).await;
    let mut took = vec![];
    for (i, wait_ms) in [0u64, 20, 60, 150, 400].into_iter().enumerate() {
        let mut env = s.env();
        env.push(("FHIR_OP_SHUTDOWN_GRACE", "3s".into()));
        let started = |s: &Scenario| {
            let log = std::fs::read_to_string(s.log()).unwrap_or_default();
            log.matches("fhir-app-operator started").count()
        };
        let before = started(&s);
        let op = start_operator(&env, &format!("term-{i}"), &s.log());
        // From the moment it has started its controllers (before that, its signal handler may not
        // be installed yet and SIGTERM ends it at once, which is fine in a pod).
        let deadline = Instant::now() + Duration::from_secs(20);
        while started(&s) == before {
            assert!(Instant::now() < deadline, "operator term-{i} did not start");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let start = Instant::now();
        op.sigterm(Duration::from_secs(10)).await.unwrap();
        took.push(format!("{:.1}s", start.elapsed().as_secs_f64()));
    }
    s.finish(format!(
        "5 SIGTERMs 0–400 ms after start; exited after {}",
        took.join(", ")
    ))
    .await;
}
