//! The ecosystem's own code as judges of this project's artefacts, built from the Go module proxy
//! and cached by hack/judges/build.sh (`make judges`; `make test` builds them first):
//! `argocd-health` runs a health script in Argo CD's own Lua runtime (argo-cd/v3 util/lua),
//! `kstatus` computes an object's status with sigs.k8s.io/cli-utils, and `flux-health` with Flux's
//! fork of it plus Flux's `healthCheckExprs` CEL evaluator.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory with the judges: `$FHIR_OP_JUDGES` if set (the Makefile sets it), else what
/// hack/judges/build.sh prints (it builds them once when missing).
pub fn dir() -> PathBuf {
    let dir = match std::env::var_os("FHIR_OP_JUDGES") {
        Some(d) => PathBuf::from(d),
        None => super::cached_tool("hack/judges/build.sh"),
    };
    for bin in ["argocd-health", "kstatus", "flux-health"] {
        assert!(
            dir.join(bin).is_file(),
            "{} missing: build the judges with `bash hack/judges/build.sh` (or `make judges`)",
            dir.join(bin).display()
        );
    }
    dir
}

fn run(bin: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let path = dir().join(bin);
    let mut child = Command::new(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A health result: (status, message).
pub type Health = (String, String);

fn health(v: &Value) -> Health {
    (
        v["status"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// One case of an Argo CD `health_test.yaml`: input path, expected and judged result.
pub struct HealthCase {
    pub input_path: String,
    pub want: Health,
    pub got: Health,
}

/// Runs every case of `tests` (Argo CD's resource_customizations test format) through
/// `VM.ExecuteHealthLua`, as argo-cd's own TestLuaHealthScript does.
pub fn argocd_health_suite(script: &Path, tests: &Path) -> Vec<HealthCase> {
    run(
        "argocd-health",
        &[
            "-script",
            script.to_str().unwrap(),
            "-tests",
            tests.to_str().unwrap(),
        ],
        None,
    )
    .lines()
    .map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        HealthCase {
            input_path: v["inputPath"].as_str().unwrap().to_string(),
            want: health(&v["want"]),
            got: health(&v["got"]),
        }
    })
    .collect()
}

/// What Argo CD makes of one object with `script` as its health customization.
pub struct ArgoHealth {
    /// The script alone (`VM.ExecuteHealthLua`).
    pub script: Health,
    /// What the application controller shows (gitops-engine `health.GetResourceHealth` with the
    /// script as the override for the object's group/kind).
    pub controller: Health,
}

pub fn argocd_health(script: &Path, obj: &Value) -> ArgoHealth {
    let out = run(
        "argocd-health",
        &["-script", script.to_str().unwrap()],
        Some(obj.to_string().as_bytes()),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    ArgoHealth {
        script: health(&v["executeHealthLua"]),
        controller: health(&v["controller"]),
    }
}

/// kstatus's `status.Compute` of one object: (status, message), e.g. ("Current", "Resource is Ready").
pub fn kstatus(obj: &Value) -> Health {
    let out = run("kstatus", &[], Some(obj.to_string().as_bytes()));
    health(&serde_json::from_str(&out).unwrap())
}

/// What Flux makes of one object: (its kstatus fork's status, the `healthCheckExprs` of
/// deploy/flux/kustomization.yaml for the object's kind: "Current", "InProgress", "Failed" or "Error"
/// when the expression cannot be evaluated, which Flux treats as not ready yet).
pub fn flux_health(obj: &Value) -> (Health, Health) {
    let ks = super::repo_root().join("deploy/flux/kustomization.yaml");
    let out = run(
        "flux-health",
        &["-kustomization", ks.to_str().unwrap()],
        Some(obj.to_string().as_bytes()),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    (health(&v["kstatus"]), health(&v["healthCheckExprs"]))
}
