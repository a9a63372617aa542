//! Starting and stopping etcd, kube-apiserver and kube-controller-manager on loopback.

use crate::binaries::Binaries;
use crate::{client_from_kubeconfig, free_port, pki};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `down` needs to find exactly the processes `up` started, and nothing else.
#[derive(Serialize, Deserialize)]
pub struct State {
    pub kubeconfig: PathBuf,
    pub server: String,
    pub processes: Vec<Process>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Process {
    pub name: String,
    pub pid: u32,
    pub exe: PathBuf,
}

pub struct Running {
    pub state: State,
    /// Present when this process started the children (and so must reap them).
    pub children: Vec<Child>,
}

pub struct Options {
    /// Children die with this process (used by `run`, so a killed test run leaves nothing behind).
    pub die_with_parent: bool,
    /// Write kube-apiserver's audit log (Metadata level) to DIR/logs/audit.log, e.g. to count a
    /// client's API calls (`fhir-bench`).
    pub audit_log: bool,
}

/// The apiserver flags for `Options::audit_log`: every request at Metadata level, one line per
/// completed (or, for watches, started) request.
fn audit_args(dir: &Path, opts: &Options) -> Result<Vec<String>> {
    if !opts.audit_log {
        return Ok(vec![]);
    }
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    )?;
    Ok(vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", dir.join("logs/audit.log").display()),
        "--audit-log-maxsize=0".into(),
    ])
}

pub async fn start(bins: &Binaries, dir: &Path, opts: &Options) -> Result<Running> {
    let started = Instant::now();
    std::fs::create_dir_all(dir.join("logs"))?;
    let pki_dir = dir.join("pki");
    pki::generate(&pki_dir)?;
    let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &server, &pki_dir, "admin")?;
    write_kubeconfig(
        &dir.join("controller-manager.kubeconfig"),
        &server,
        &pki_dir,
        "controller-manager",
    )?;

    let mut running = Running {
        state: State {
            kubeconfig: kubeconfig.clone(),
            server: server.clone(),
            processes: vec![],
        },
        children: vec![],
    };
    let p = |f: &str| pki_dir.join(f).display().to_string();
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");

    let result: Result<()> = async {
        spawn(&mut running, dir, "etcd", &bins.etcd, opts, &[
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ])?;
        wait_for(&mut running, "etcd", Duration::from_secs(30), || async {
            http_get_ok(etcd_port, "/health").await
        }).await?;
        let etcd_ready = started.elapsed();

        spawn(&mut running, dir, "kube-apiserver", &bins.kube_apiserver, opts, &[
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            "--authorization-mode=Node,RBAC".into(),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            // No kubelets: nothing to enforce pod admission against.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--profiling=false".into(),
        ].into_iter().chain(audit_args(dir, opts)?).collect::<Vec<_>>())?;
        let client = client_from_kubeconfig(&kubeconfig).await?;
        wait_for(&mut running, "kube-apiserver", Duration::from_secs(120), || {
            let client = client.clone();
            async move { client.request_text(http_get("/readyz")).await.map(|b| b.trim() == "ok").unwrap_or(false) }
        }).await?;
        let api_ready = started.elapsed();

        spawn(&mut running, dir, "kube-controller-manager", &bins.kube_controller_manager, opts, &[
            format!("--kubeconfig={}", dir.join("controller-manager.kubeconfig").display()),
            "--leader-elect=false".into(),
            "--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller".into(),
            format!("--service-account-private-key-file={}", p("sa.key")),
            format!("--root-ca-file={}", p("ca.crt")),
            "--use-service-account-credentials=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
        ])?;
        // The service-account controller creating `default/default` proves the controller
        // manager is up and talking to the API server.
        let sas: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(client.clone(), "default");
        wait_for(&mut running, "kube-controller-manager", Duration::from_secs(60), || {
            let sas = sas.clone();
            async move { matches!(sas.get_opt("default").await, Ok(Some(_))) }
        }).await?;
        eprintln!(
            "kube-local: control plane ready in {:.1}s (etcd {:.1}s, kube-apiserver {:.1}s, controller-manager {:.1}s) at {server}",
            started.elapsed().as_secs_f64(),
            etcd_ready.as_secs_f64(),
            (api_ready - etcd_ready).as_secs_f64(),
            (started.elapsed() - api_ready).as_secs_f64(),
        );
        Ok(())
    }
    .await;
    if let Err(e) = result {
        stop(&mut running);
        return Err(e);
    }
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec_pretty(&running.state)?,
    )?;
    Ok(running)
}

fn spawn(
    running: &mut Running,
    dir: &Path,
    name: &str,
    exe: &Path,
    opts: &Options,
    args: &[String],
) -> Result<()> {
    let log = std::fs::File::create(dir.join("logs").join(format!("{name}.log")))?;
    let child = spawn_logged(exe, args, log, opts)?;
    let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_path_buf());
    running.state.processes.push(Process {
        name: name.into(),
        pid: child.id(),
        exe,
    });
    running.children.push(child);
    Ok(())
}

/// Starts `exe` in a process group of its own (so a terminal's Ctrl-C reaches only its parent), its
/// output to `log`.
fn spawn_logged(exe: &Path, args: &[String], log: std::fs::File, opts: &Options) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    if opts.die_with_parent {
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", exe.display()))
}

async fn wait_for<F, Fut>(
    running: &mut Running,
    name: &str,
    timeout: Duration,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        let proc = running
            .state
            .processes
            .iter()
            .find(|p| p.name == name)
            .expect("spawned");
        // Its exit status when this process started it; else (`restart-apiserver`) only that it is gone.
        let exited = match running.children.iter_mut().find(|c| c.id() == proc.pid) {
            Some(child) => child.try_wait()?.map(|s| s.to_string()),
            None => (!is_ours(proc)).then(|| "gone".to_string()),
        };
        if let Some(status) = exited {
            bail!(
                "{name} exited ({status}) before it was ready. Last lines of its log:\n{}",
                log_tail(&running.state, name)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{name} was not ready within {timeout:?}. Last lines of its log:\n{}",
                log_tail(&running.state, name)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_tail(state: &State, name: &str) -> String {
    let log = state
        .kubeconfig
        .parent()
        .unwrap()
        .join("logs")
        .join(format!("{name}.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "{}\n(full log: {})",
        lines[lines.len().saturating_sub(20)..].join("\n"),
        log.display()
    )
}

async fn http_get_ok(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).starts_with("HTTP/1.0 200")
        || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200")
}

fn http_get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(vec![]).unwrap()
}

fn write_kubeconfig(path: &Path, server: &str, pki: &Path, user: &str) -> Result<()> {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncontexts:\n- name: kube-local\n  context:\n    cluster: kube-local\n    user: {user}\n    namespace: default\ncurrent-context: kube-local\n",
        ca = pki.join("ca.crt").display(),
        crt = pki.join(format!("{user}.crt")).display(),
        key = pki.join(format!("{user}.key")).display(),
    );
    std::fs::write(path, yaml)?;
    Ok(())
}

/// Stops the processes in reverse start order: SIGTERM, then SIGKILL after 10 s.
/// Only a pid whose executable is still the recorded one is signalled, so a recycled pid is never hit.
/// Blocking (it also runs from `Drop`).
pub fn stop(running: &mut Running) {
    for proc in running.state.processes.iter().rev() {
        if !is_ours(proc) {
            continue;
        }
        unsafe { libc::kill(proc.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_ours(proc) && Instant::now() < deadline {
            if let Some(child) = running.children.iter_mut().find(|c| c.id() == proc.pid)
                && let Ok(Some(_)) = child.try_wait()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if is_ours(proc) {
            unsafe { libc::kill(proc.pid as i32, libc::SIGKILL) };
        }
    }
    for child in running.children.iter_mut() {
        let _ = child.wait();
    }
}

fn is_ours(proc: &Process) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", proc.pid)) else {
        return false;
    };
    // A zombie has no exe link; a pid reused by another program has a different one.
    exe == proc.exe
        || exe.to_string_lossy().trim_end_matches(" (deleted)") == proc.exe.to_string_lossy()
}

pub fn read_state(dir: &Path) -> Result<Option<State>> {
    match std::fs::read(dir.join("state.json")) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn is_alive(state: &State) -> bool {
    !state.processes.is_empty() && state.processes.iter().all(is_ours)
}

/// Kills the control plane's kube-apiserver (SIGKILL: no graceful shutdown, like a crash) and starts
/// it again with the same binary and arguments (read from /proc), so clients see the API server vanish
/// and come back at the same address. Returns the downtime until it is ready again.
pub async fn restart_apiserver(
    running: &mut Running,
    dir: &Path,
    opts: &Options,
) -> Result<Duration> {
    let idx = running
        .state
        .processes
        .iter()
        .position(|p| p.name == "kube-apiserver")
        .context("state.json lists no kube-apiserver")?;
    let old = running.state.processes[idx].clone();
    if !is_ours(&old) {
        bail!("kube-apiserver (pid {}) is not running", old.pid);
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", old.pid))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let port: u16 = running
        .state
        .server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {}", running.state.server))?;
    let down_at = Instant::now();
    unsafe { libc::kill(old.pid as i32, libc::SIGKILL) };
    if let Some(pos) = running.children.iter().position(|c| c.id() == old.pid) {
        let _ = running.children.remove(pos).wait();
    }
    // Its exe link vanishes before its sockets close, so wait until the port can be bound again.
    while is_ours(&old) || TcpListener::bind(("127.0.0.1", port)).is_err() {
        if down_at.elapsed() > Duration::from_secs(10) {
            bail!(
                "kube-apiserver (pid {}) still running or port {port} still taken 10 s after SIGKILL",
                old.pid
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("logs/kube-apiserver.log"))?;
    let child = spawn_logged(&old.exe, &args, log, opts)?;
    running.state.processes[idx].pid = child.id();
    running.children.push(child);
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec_pretty(&running.state)?,
    )?;

    let client = client_from_kubeconfig(&running.state.kubeconfig).await?;
    wait_for(running, "kube-apiserver", Duration::from_secs(120), || {
        let client = client.clone();
        async move {
            client
                .request_text(http_get("/readyz"))
                .await
                .is_ok_and(|b| b.trim() == "ok")
        }
    })
    .await?;
    Ok(down_at.elapsed())
}
