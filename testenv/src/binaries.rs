//! Where the control-plane binaries come from, in this order:
//! 1. `$KUBEBUILDER_ASSETS` (the envtest convention; envtest ships no kube-controller-manager,
//!    so that one may still come from 2 or 3);
//! 2. the cache `${FHIR_OP_CACHE:-~/.cache/fhir-app-operator}/kube/<version>/`;
//! 3. a build from the Go module proxy by `hack/kube-bins/build.sh` into that cache.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Kubernetes version pinned by the wrapper module in `hack/kube-bins/go.mod`.
pub fn pinned_version() -> &'static str {
    const GO_MOD: &str = include_str!("../../hack/kube-bins/go.mod");
    GO_MOD
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("hack/kube-bins/go.mod pins k8s.io/kubernetes")
}

pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FHIR_OP_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/fhir-app-operator")
}

pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

/// The binary `name` from `$KUBEBUILDER_ASSETS`, else from the cache.
fn find(name: &str) -> Option<PathBuf> {
    let assets = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
    assets
        .into_iter()
        .chain(std::iter::once(cache_dir()))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn cache_dir() -> PathBuf {
    cache_root().join("kube").join(pinned_version())
}

pub fn resolve(build_if_missing: bool) -> Result<Binaries> {
    let cache = cache_dir();
    let assets = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
    let all = || -> Option<Binaries> {
        Some(Binaries {
            etcd: find("etcd")?,
            kube_apiserver: find("kube-apiserver")?,
            kube_controller_manager: find("kube-controller-manager")?,
        })
    };
    if let Some(found) = all() {
        return Ok(found);
    }
    if !build_if_missing {
        bail!(
            "Kubernetes binaries not found in {}{}; run `make kube-bins` (builds them from the Go module proxy) or set KUBEBUILDER_ASSETS",
            cache.display(),
            assets
                .map(|a| format!(" or KUBEBUILDER_ASSETS={}", a.display()))
                .unwrap_or_default()
        );
    }
    build()?;
    all().with_context(|| {
        format!(
            "the build did not leave all binaries in {}",
            cache.display()
        )
    })
}

/// kubectl, from the same places as the control plane's binaries (built with them once if missing).
pub fn kubectl() -> Result<PathBuf> {
    if let Some(found) = find("kubectl") {
        return Ok(found);
    }
    build()?;
    find("kubectl").with_context(|| {
        format!(
            "the build did not leave kubectl in {}",
            cache_dir().display()
        )
    })
}

/// Runs the committed build recipe; it is a no-op when the cache is complete.
pub fn build() -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/kube-bins/build.sh");
    eprintln!(
        "kube-local: building Kubernetes {} from the Go module proxy (once; cached)",
        pinned_version()
    );
    let status = Command::new("bash")
        .arg(&script)
        .env("FHIR_OP_CACHE", cache_root())
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its output above",
            script.display()
        );
    }
    Ok(())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
