//! Shared harness for the integration tests.
//!
//! `make test` starts one real control plane (etcd + kube-apiserver + kube-controller-manager)
//! for the whole run and exports its kubeconfig as `KUBECONFIG` before running this crate's
//! tests; every test isolates itself in a namespace of its own.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

pub mod fhir;
pub mod invariants;
pub mod judges;
pub mod operator;

/// A client for the control plane of this test run.
///
/// Refuses to run without `FHIR_OP_TEST_CLUSTER=1` (set by `make test` and `kube-local run`),
/// so a stray `cargo test` never touches whatever cluster the current kubeconfig points at.
pub async fn kube_client() -> Client {
    if std::env::var("FHIR_OP_TEST_CLUSTER").as_deref() != Ok("1") {
        panic!(
            "integration tests need a cluster: run `make test`, or `target/debug/kube-local run -- cargo test -p fhir-app-operator-tests`"
        );
    }
    Client::try_default()
        .await
        .expect("kubeconfig from KUBECONFIG")
}

/// A namespace with a unique name, deleted (with everything in it) when dropped.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name }
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        Self {
            name,
            client: client.clone(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // Best effort: the control plane is torn down after the run anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::default())
                    .await;
            });
        }
    }
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `cmd` in the repository root; panics with its output unless it succeeds. Returns stdout.
pub fn run_in_repo(cmd: &mut std::process::Command) -> String {
    let out = cmd.current_dir(repo_root()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a `hack/*/build.sh` that builds a tool once (cached by version) and prints its path last.
fn cached_tool(script: &str) -> std::path::PathBuf {
    cached_tool_with(script, &[])
}

fn cached_tool_with(script: &str, args: &[&str]) -> std::path::PathBuf {
    let text = run_installer(script, args, "");
    std::path::PathBuf::from(text.lines().last().unwrap_or_default().trim())
}

/// Runs `bash <script> <args>` (a `hack/` script that installs or builds what tests need, once, into a
/// cache); panics with its stderr and `fix` (how to install by hand) unless it succeeds. Returns its stdout.
pub fn run_installer(script: &str, args: &[&str], fix: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}{fix}"));
    assert!(
        out.status.success(),
        "{script} failed:\n{}{fix}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// helm, built once from the Go module proxy and cached (hack/helm/build.sh).
pub fn helm() -> std::path::PathBuf {
    cached_tool("hack/helm/build.sh")
}

/// Helm 4, built once from the Go module proxy and cached beside Helm 3 (`hack/helm/build.sh v4`).
pub fn helm4() -> std::path::PathBuf {
    cached_tool_with("hack/helm/build.sh", &["v4"])
}

/// promtool, built once from the Go module proxy and cached (hack/promtool/build.sh).
pub fn promtool() -> std::path::PathBuf {
    cached_tool("hack/promtool/build.sh")
}

/// kubectl from `$KUBEBUILDER_ASSETS`, else the one hack/kube-bins/build.sh cached (built once).
pub fn kubectl() -> std::path::PathBuf {
    testenv::binaries::kubectl().expect("kubectl")
}
