//! The manifests in `examples/` are what users copy: every one is accepted by the real API server with
//! strict field validation, reconciles to Ready against the emulator, and re-applying them the way
//! Argo CD does (`kubectl apply`) is a no-op because the operator never writes `spec`.
//! The Argo CD Applications point at paths that exist.

use fhir_app_operator_tests::{kubectl, repo_root as root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator::controller::FIELD_MANAGER;
use fhir_app_operator_tests::operator::{Harness, full_permissions, install_crds};
use fhir_app_operator_tests::{TestNamespace, kube_client};
use kube::api::{ListParams, ObjectList};
use serde::Deserialize;
use serde_json::Value;

const T: Duration = Duration::from_secs(90);

/// The example manifests of our kinds (and the ServiceAccounts they use), one file per entry.
/// `examples/clients/managed-fhir-service.yaml`'s `target.managed.resourceId`.
const MANAGED_FHIR_SERVICE: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/health/providers/Microsoft.HealthcareApis/workspaces/contoso/fhirservices/fhir";

fn example_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("examples/fhir-server/fhir-resource-app.yaml")];
    let mut clients: Vec<PathBuf> = std::fs::read_dir(root().join("examples/clients"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    clients.sort();
    assert!(clients.len() >= 6, "{clients:?}");
    files.extend(clients);
    files
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// `kubectl <verb> -n ns ARGS -f FILE...`
fn kubectl_run(ns: &str, verb: &str, args: &[&str], files: &[PathBuf]) -> std::process::Output {
    let mut cmd = Command::new(kubectl());
    cmd.args([verb, "-n", ns]).args(args);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.output().expect("kubectl")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kubectl_apply(ns: &str, files: &[PathBuf]) -> String {
    let out = kubectl_run(ns, "apply", &["--validate=strict"], files);
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn examples_reconcile_to_ready_and_reapplying_them_is_a_no_op() {
    // The managed example's FHIR service, where the operator may assign data roles (its operator
    // identity holds Role Based Access Control Administrator there, as docs/permissions.md says).
    let mut h = Harness::with_emulator("examples", |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        let operator = cfg.tenants[0].apps[0].client_id.clone();
        cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
            scope: MANAGED_FHIR_SERVICE.into(),
            role: "Role Based Access Control Administrator".into(),
            principal_client_id: Some(operator),
            ..Default::default()
        }];
    })
    .await;
    let mut cfg = h.config();
    // The workload-identity example needs the cluster's issuer; the federated credential is registered
    // for it (signing in with it is covered by operator_identity).
    cfg.service_account_issuer = Some("https://oidc.example/cluster".into());
    h.start_operator(cfg).await;
    let files = example_files();
    let first = kubectl_apply(&h.ns.name, &files);
    assert!(first.contains("created"), "{first}");

    let mut names = vec![];
    for f in &files {
        for d in docs(f) {
            let kind = d["kind"].as_str().unwrap().to_string();
            names.push((kind, d["metadata"]["name"].as_str().unwrap().to_string()));
        }
    }
    for (kind, name) in &names {
        match kind.as_str() {
            "FhirResourceApp" => {
                h.wait_condition::<FhirResourceApp>(name, "Ready", "True", T)
                    .await;
            }
            "FhirClientApp" => {
                h.wait_condition::<FhirClientApp>(name, "Ready", "True", T)
                    .await;
            }
            _ => {}
        }
    }
    let before = snapshot(&h).await;

    // Argo CD's default sync is a client-side `kubectl apply` of the same files.
    let again = kubectl_apply(&h.ns.name, &files);
    assert!(again.lines().count() >= names.len(), "{again}");
    for line in again.lines() {
        assert!(
            line.ends_with(" unchanged"),
            "re-apply changed something: {line}"
        );
    }
    // And its diff (server-side dry run) finds nothing to change.
    let out = kubectl_run(&h.ns.name, "diff", &["--server-side=false"], &files);
    assert!(
        out.status.success(),
        "kubectl diff shows drift:\n{}",
        text(&out)
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // a resync (3 s in tests)
    assert_eq!(snapshot(&h).await, before, "generation and spec unchanged");

    // With `ServerSideApply=true` Argo CD applies as its own field manager instead: the same values
    // conflict with nobody, the server-side diff is empty, and nothing changes.
    let ssa = [
        "--server-side",
        "--field-manager=argocd-controller",
        "--validate=strict",
    ];
    let out = kubectl_run(&h.ns.name, "apply", &ssa, &files);
    assert!(out.status.success(), "server-side apply: {}", text(&out));
    let out = kubectl_run(&h.ns.name, "diff", &ssa[..2], &files);
    assert!(
        out.status.success(),
        "server-side diff shows drift:\n{}",
        text(&out)
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        snapshot(&h).await,
        before,
        "generation and spec unchanged after SSA"
    );

    // Only the users' appliers own spec: every other field manager (the operator's status patches, its
    // finalizer patch, whatever user agent that carries) holds status or metadata only.
    let users = ["kubectl-client-side-apply", "argocd-controller"];
    for obj in list_all(&h).await {
        let name = &obj["metadata"]["name"];
        let fields = obj["metadata"]["managedFields"].as_array().unwrap();
        assert!(
            fields.iter().any(|mf| mf["manager"] == FIELD_MANAGER),
            "{name}: no status written by {FIELD_MANAGER}: {fields:?}"
        );
        for mf in fields {
            if users.iter().any(|u| mf["manager"] == *u) {
                assert!(mf["fieldsV1"].get("f:spec").is_some(), "{name}: {mf}");
                continue;
            }
            let owned: Vec<&String> = mf["fieldsV1"].as_object().unwrap().keys().collect();
            assert!(
                owned.iter().all(|k| *k == "f:status" || *k == "f:metadata"),
                "{name}: {} owns {owned:?}",
                mf["manager"]
            );
        }
    }
    h.stop_operator().await;
}

/// Every manifest under examples/ (demo/ too) that is not an Argo CD Application or a Helm values file is
/// one of the kinds we test here and passes strict server-side validation.
#[tokio::test]
async fn every_example_manifest_passes_strict_validation() {
    let client = kube_client().await;
    install_crds(&client).await.unwrap();
    let ns = TestNamespace::new(&client, "examples-strict").await;
    let mut checked = vec![];
    for path in files_under(&root().join("examples"), "yaml") {
        let kinds: Vec<String> = docs(&path)
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        if path.ends_with("fhir-server/values.yaml") || kinds.iter().all(|k| k == "Application") {
            continue; // checked by the Argo CD test below
        }
        for k in &kinds {
            assert!(
                [
                    "FhirResourceApp",
                    "FhirClientApp",
                    "ServiceAccount",
                    "ConfigMap"
                ]
                .contains(&k.as_str()),
                "{path:?}: kind {k:?} is not validated by this test"
            );
        }
        let out = kubectl_run(
            &ns.name,
            "apply",
            &["--server-side", "--dry-run=server", "--validate=strict"],
            std::slice::from_ref(&path),
        );
        assert!(out.status.success(), "{path:?}: {}", text(&out));
        checked.push(path);
    }
    // The demo, the resource app and the client examples.
    assert!(checked.len() >= 9, "{checked:?}");
}

async fn list_all(h: &Harness) -> Vec<Value> {
    let r: ObjectList<FhirResourceApp> = h.api().list(&ListParams::default()).await.unwrap();
    let c: ObjectList<FhirClientApp> = h.api().list(&ListParams::default()).await.unwrap();
    r.items
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .chain(c.items.iter().map(|o| serde_json::to_value(o).unwrap()))
        .collect()
}

/// (name, generation, spec) of every example object.
async fn snapshot(h: &Harness) -> Vec<(String, i64, Value)> {
    let mut v: Vec<_> = list_all(h)
        .await
        .into_iter()
        .map(|o| {
            (
                format!("{}/{}", o["kind"], o["metadata"]["name"]),
                o["metadata"]["generation"].as_i64().unwrap_or_default(),
                o["spec"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn argocd_applications_point_at_paths_in_this_repository_in_wave_order() {
    let dir = root().join("examples/argocd");
    let mut files = vec![dir.join("root.yaml")];
    let mut apps: Vec<PathBuf> = std::fs::read_dir(dir.join("apps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    apps.sort();
    files.extend(apps.iter().cloned());
    let mut waves = vec![];
    for f in &files {
        for d in docs(f) {
            assert_eq!(d["kind"], "Application", "{f:?}");
            let sources: Vec<Value> = match d["spec"].get("sources") {
                Some(s) => s.as_array().unwrap().clone(),
                None => vec![d["spec"]["source"].clone()],
            };
            for s in sources {
                let ours = s["repoURL"].as_str().unwrap().contains("fhir-app-operator");
                if let (true, Some(path)) = (ours, s["path"].as_str()) {
                    assert!(root().join(path).is_dir(), "{f:?}: no directory {path}");
                }
                for vf in s["helm"]["valueFiles"].as_array().into_iter().flatten() {
                    let p = vf.as_str().unwrap().trim_start_matches("$values/");
                    assert!(root().join(p).is_file(), "{f:?}: no values file {p}");
                }
            }
            if f != &files[0] {
                let w: i64 = d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                waves.push((w, d["metadata"]["name"].as_str().unwrap().to_string()));
            }
        }
    }
    // Operator first, then the FHIR apps, then the FHIR server that consumes their outputs.
    waves.sort();
    let order: Vec<&str> = waves.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(order, ["fhir-app-operator", "fhir-apps", "fhir-server"]);
    // Inside the fhir-apps Application: the resource app before its clients.
    for f in example_files() {
        for d in docs(&f) {
            let wave = d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].as_str();
            let want = match d["kind"].as_str().unwrap() {
                "FhirResourceApp" => "1",
                _ => "2",
            };
            assert_eq!(wave, Some(want), "{f:?} {}", d["metadata"]["name"]);
        }
    }
}

/// Every condition reason the operator sets (`CONDITION_REASONS`: Ready, waiting and every error
/// category, its own and the Graph client's) has a row in docs/troubleshooting.md.
#[test]
fn troubleshooting_covers_every_condition_reason() {
    let doc = std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap();
    let reasons = fhir_app_operator::controller::CONDITION_REASONS;
    assert!(reasons.len() > 20, "{reasons:?}");
    let missing: Vec<_> = reasons
        .iter()
        .filter(|r| !doc.contains(&format!("| `{r}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md lacks rows for {missing:?}"
    );
}

/// Every Event reason (`EVENT_REASONS`; the operator asserts in debug builds that it publishes no
/// other, besides the condition reasons above) is named in the Events section of
/// docs/troubleshooting.md.
#[test]
fn troubleshooting_names_every_event_reason() {
    let doc = std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap();
    let events = &doc[doc.find("## Events").expect("an Events section")..];
    let reasons = fhir_app_operator::controller::EVENT_REASONS;
    assert!(reasons.len() >= 8, "{reasons:?}");
    let missing: Vec<_> = reasons
        .iter()
        .filter(|r| !events.contains(&format!("`{r}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md Events lacks {missing:?}"
    );
}

/// Every file with extension `ext` under `dir`, recursively.
fn files_under(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let (mut files, mut stack) = (vec![], vec![dir.to_path_buf()]);
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                files.push(path);
            }
        }
    }
    files
}
