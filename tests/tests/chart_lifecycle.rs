//! Helm 3 and Helm 4 (both built from the Go module proxy by hack/helm/build.sh) each install the
//! previous chart version, upgrade it to this one and uninstall it, against the local control plane;
//! and a release installed with Helm 3 upgrades and uninstalls with Helm 4 (a user moving to Helm 4).
//! The previous chart is taken from git: the chart as of commit PREVIOUS.1.

use fhir_app_operator_tests::{
    TestNamespace, helm, helm4, kube_client, repo_root as root, run_in_repo as run,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (chart version, a commit whose charts/fhir-app-operator has that version).
const PREVIOUS: (&str, &str) = ("0.1.0", "d8c5c4641face0cc8a71e6f91322eb87d44ef073");

fn chart_version(chart: &Path) -> String {
    let c: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap()).unwrap();
    c["version"].as_str().unwrap().to_string()
}

/// The chart at PREVIOUS.1, extracted into `dir`.
fn previous_chart(dir: &Path) -> PathBuf {
    let mut archive = Command::new("git")
        .current_dir(root())
        .args([
            "archive",
            "--format=tar",
            PREVIOUS.1,
            "charts/fhir-app-operator",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("git archive (the previous chart comes from this repository's history)");
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(archive.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(archive.wait().unwrap().success() && tar.success());
    let chart = dir.join("charts/fhir-app-operator");
    assert_eq!(chart_version(&chart), PREVIOUS.0);
    chart
}

fn sets(ns: &str) -> Vec<String> {
    // Namespace-scoped (Roles only), no CRDs (the test harness owns them), no aggregated ClusterRoles:
    // nothing cluster-scoped, so parallel releases cannot collide.
    [
        "crds.enabled=false".to_string(),
        format!("watchNamespaces={{{ns}}}"),
        "azure.existingSecret=operator-credentials".into(),
        "rbac.aggregateToDefaultRoles=false".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

async fn chart_label(api: &Api<Deployment>, release: &str) -> Option<String> {
    api.get_opt(&format!("{release}-fhir-app-operator"))
        .await
        .unwrap()
        .and_then(|d| d.metadata.labels)
        .and_then(|l| l.get("helm.sh/chart").cloned())
}

fn release(helm: &Path, release: &str, ns: &str) -> Value {
    let list: Value = serde_json::from_str(&run(
        Command::new(helm).args(["list", "-n", ns, "-o", "json"])
    ))
    .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == release)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Installs the previous chart with `installer`, upgrades to this chart and uninstalls with `upgrader`.
async fn install_upgrade_uninstall(installer: PathBuf, upgrader: PathBuf, prefix: &str) {
    let client = kube_client().await;
    let ns = TestNamespace::new(&client, prefix).await;
    let name = prefix;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let dir = tempfile::tempdir().unwrap();
    let previous = previous_chart(dir.path());
    let current = chart_version(&root().join("charts/fhir-app-operator"));
    assert_ne!(
        current, PREVIOUS.0,
        "bump PREVIOUS when the chart version changes"
    );
    for helm in [&installer, &upgrader] {
        println!(
            "{}",
            run(Command::new(helm).args(["version", "--short"])).trim()
        );
    }

    run(Command::new(&installer)
        .args(["install", name])
        .arg(&previous)
        .args(["-n", &ns.name])
        .args(sets(&ns.name)));
    let r = release(&installer, name, &ns.name);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["chart"], format!("fhir-app-operator-{}", PREVIOUS.0));
    assert_eq!(
        chart_label(&deployments, name).await.as_deref(),
        Some(format!("fhir-app-operator-{}", PREVIOUS.0).as_str())
    );

    run(Command::new(&upgrader)
        .args(["upgrade", name, "charts/fhir-app-operator", "-n", &ns.name])
        .args(sets(&ns.name)));
    let r = release(&upgrader, name, &ns.name);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["revision"], "2", "{r}");
    assert_eq!(r["chart"], format!("fhir-app-operator-{current}"));
    assert_eq!(
        chart_label(&deployments, name).await.as_deref(),
        Some(format!("fhir-app-operator-{current}").as_str())
    );

    run(Command::new(&upgrader).args(["uninstall", name, "-n", &ns.name]));
    assert_eq!(release(&upgrader, name, &ns.name), Value::Null);
    assert_eq!(chart_label(&deployments, name).await, None);
}

#[tokio::test]
async fn helm3_installs_the_previous_chart_upgrades_and_uninstalls() {
    install_upgrade_uninstall(helm(), helm(), "helm3").await;
}

#[tokio::test]
async fn helm4_installs_the_previous_chart_upgrades_and_uninstalls() {
    install_upgrade_uninstall(helm4(), helm4(), "helm4").await;
}

#[tokio::test]
async fn a_helm3_release_upgrades_and_uninstalls_with_helm4() {
    install_upgrade_uninstall(helm(), helm4(), "helm3to4").await;
}

/// `helm lint --strict` with both Helms, with the defaults and with every optional template on. (Helm 4
/// refuses Chart.yaml fields that are not in its schema, which Helm 3 let pass.)
#[test]
fn the_chart_lints_strictly_with_helm3_and_helm4() {
    for helm in [helm(), helm4()] {
        for extra in [
            &[][..],
            &[
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "metrics.prometheusRule.enabled=true",
                "--set",
                "metrics.grafanaDashboard.enabled=true",
            ][..],
        ] {
            run(Command::new(&helm)
                .args(["lint", "--strict", "charts/fhir-app-operator"])
                .args(extra));
        }
    }
}
