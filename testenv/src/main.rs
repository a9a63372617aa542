//! kube-local: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
//! on loopback, for this project's tests and demo. Not a mock: the same binaries a cluster runs.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use testenv::{ControlPlane, binaries, plane};

#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Runs etcd, kube-apiserver and kube-controller-manager (garbage collector, namespace and \
service-account controllers) on free loopback ports, with generated certificates, RBAC authorization and an admin kubeconfig.\n\n\
Binaries: $KUBEBUILDER_ASSETS if set, else the cache ${FHIR_OP_CACHE:-~/.cache/fhir-app-operator}/kube/<version>/, \
else they are built there from the Go module proxy (hack/kube-bins/build.sh)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a control plane in the background; the last line printed is `export KUBECONFIG=<path>`.
    Up {
        /// Directory for certificates, data, logs and the kubeconfig.
        #[arg(long, default_value = ".cluster")]
        dir: PathBuf,
        /// Also write kube-apiserver's audit log (every request, Metadata level) to DIR/logs/audit.log.
        #[arg(long)]
        audit_log: bool,
    },
    /// Stop every process `up` started in DIR (and nothing else), then remove DIR.
    Down {
        #[arg(long, default_value = ".cluster")]
        dir: PathBuf,
        /// Keep DIR (logs, data) after stopping.
        #[arg(long)]
        keep: bool,
    },
    /// Kill the kube-apiserver `up` started in DIR (SIGKILL) and start it again with the same arguments.
    ///
    /// For tests of what clients do when the API server crashes and comes back; prints the downtime.
    RestartApiserver {
        #[arg(long, default_value = ".cluster")]
        dir: PathBuf,
    },
    /// Start a control plane, run COMMAND with KUBECONFIG and FHIR_OP_TEST_CLUSTER=1 set, stop it.
    ///
    /// With USE_EXISTING_CLUSTER=true, no control plane is started: COMMAND runs against the
    /// cluster that $KUBECONFIG names (kind, k3d, a real one).
    Run {
        /// Directory for the control plane's files (default: a fresh temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the directory (logs) afterwards.
        #[arg(long)]
        keep: bool,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Make sure the binaries exist (building them if needed) and print their directory.
    Bins {
        /// Fail instead of building when they are missing.
        #[arg(long)]
        no_build: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = real_main().await {
        eprintln!("kube-local: error: {e:#}");
        std::process::exit(1);
    }
}

async fn real_main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Up { dir, audit_log } => up(&absolute(&dir)?, audit_log).await,
        Cmd::Down { dir, keep } => down(&absolute(&dir)?, keep).await,
        Cmd::RestartApiserver { dir } => {
            let downtime = restart_apiserver(&absolute(&dir)?).await?;
            eprintln!(
                "kube-local: kube-apiserver restarted, ready again after {:.1}s",
                downtime.as_secs_f64()
            );
            Ok(())
        }
        Cmd::Run { dir, keep, command } => std::process::exit(run(dir, keep, &command).await?),
        Cmd::Bins { no_build } => {
            let b = binaries::resolve(!no_build)?;
            println!("{}", b.kube_apiserver.parent().unwrap().display());
            Ok(())
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

async fn up(dir: &Path, audit_log: bool) -> Result<()> {
    if let Some(state) = plane::read_state(dir)? {
        if plane::is_alive(&state) {
            eprintln!(
                "kube-local: already running at {} (stop it with `make cluster-down`)",
                state.server
            );
            println!("export KUBECONFIG={}", state.kubeconfig.display());
            return Ok(());
        }
        bail!(
            "{} holds a stopped or partly stopped control plane: run `kube-local down --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    let bins = binaries::resolve(true)?;
    let running = plane::start(
        &bins,
        dir,
        &plane::Options {
            die_with_parent: false,
            audit_log,
        },
    )
    .await?;
    // The children run in process groups of their own and outlive this process; `down` stops them.
    std::mem::forget(running.children);
    println!("export KUBECONFIG={}", running.state.kubeconfig.display());
    Ok(())
}

async fn down(dir: &Path, keep: bool) -> Result<()> {
    let Some(state) = plane::read_state(dir)? else {
        eprintln!("kube-local: nothing running in {}", dir.display());
        return Ok(());
    };
    let mut running = plane::Running {
        state,
        children: vec![],
    };
    plane::stop(&mut running);
    if !keep {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    eprintln!("kube-local: stopped");
    Ok(())
}

/// Like `up` then `down`, for the processes `up` left running in `dir`.
async fn restart_apiserver(dir: &Path) -> Result<std::time::Duration> {
    let state = plane::read_state(dir)?
        .with_context(|| format!("no control plane in {}", dir.display()))?;
    let mut running = plane::Running {
        state,
        children: vec![],
    };
    let opts = plane::Options {
        die_with_parent: false,
        audit_log: false,
    };
    let downtime = plane::restart_apiserver(&mut running, dir, &opts).await?;
    // Like the others `up` started, the new process outlives this one; `down` stops it.
    std::mem::forget(running.children);
    Ok(downtime)
}

async fn run(dir: Option<PathBuf>, keep: bool, command: &[String]) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(&command[0]);
    cmd.args(&command[1..]).env("FHIR_OP_TEST_CLUSTER", "1");
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v == "true" || v == "1") {
        let kubeconfig = std::env::var("KUBECONFIG")
            .context("USE_EXISTING_CLUSTER=true needs KUBECONFIG to name the cluster")?;
        eprintln!("kube-local: using the existing cluster in KUBECONFIG={kubeconfig}");
        return Ok(cmd.status().await?.code().unwrap_or(1));
    }
    let dir = match dir {
        Some(d) => absolute(&d)?,
        None => std::env::temp_dir().join(format!("kube-local-{}", std::process::id())),
    };
    let mut cluster = ControlPlane::start(
        &dir,
        plane::Options {
            die_with_parent: true,
            audit_log: false,
        },
    )
    .await?;
    if keep {
        cluster.keep_files();
    }
    cmd.env("KUBECONFIG", cluster.kubeconfig())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", command[0]))?;
    let code = tokio::select! {
        status = child.wait() => status?.code().unwrap_or(1),
        _ = shutdown_signal() => { let _ = child.kill().await; 130 }
    };
    // Stops the control plane; removes its files unless `--keep`.
    drop(cluster);
    Ok(code)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
