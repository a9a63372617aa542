//! A control plane owned by the caller (a test, the benchmark, `kube-local run`): started in-process,
//! stopped when dropped.

use crate::plane::{self, Options, Running};
use crate::{binaries, client_from_kubeconfig};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// etcd, kube-apiserver and kube-controller-manager on loopback, their files in one directory.
/// Dropping it stops them and removes the directory, unless [`ControlPlane::keep_files`] was called
/// or the thread is panicking (a failed test), when it says where the files (logs) are.
pub struct ControlPlane {
    running: Running,
    dir: PathBuf,
    opts: Options,
    keep: bool,
}

impl ControlPlane {
    /// Starts one in `dir` (certificates, data, logs, the admin kubeconfig), with the binaries
    /// [`binaries::resolve`] finds (building them once if they are missing). With
    /// `Options::die_with_parent` the processes also die when this thread does.
    pub async fn start(dir: &Path, opts: Options) -> Result<ControlPlane> {
        let bins = binaries::resolve(true)?;
        let running = plane::start(&bins, dir, &opts).await?;
        Ok(ControlPlane {
            running,
            dir: dir.to_path_buf(),
            opts,
            keep: false,
        })
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.running.state.kubeconfig
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client with the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(self.kubeconfig()).await
    }

    /// Keep the directory when stopping.
    pub fn keep_files(&mut self) {
        self.keep = true;
    }

    /// SIGKILLs kube-apiserver and starts it again at the same address; returns the downtime until
    /// it is ready.
    pub async fn restart_apiserver(&mut self) -> Result<Duration> {
        plane::restart_apiserver(&mut self.running, &self.dir, &self.opts).await
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        plane::stop(&mut self.running);
        if self.keep || std::thread::panicking() {
            eprintln!("kube-local: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
