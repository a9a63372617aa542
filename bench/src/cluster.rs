//! One benchmark run: control plane, emulator, operator, load, measurements.

use crate::Args;
use crate::bound::{self, LowerBound, Quotas};
use crate::drift::{self, AdminGraph, Heal};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testenv::plane::Options;
use testenv::{ControlPlane, EmulatorProcess, OperatorProcess};

const NS: &str = "bench";
const NOISE_NS: &str = "bench-noise";
const OP_NS: &str = "fhir-bench-system";
const OP_SA: &str = "operator";
const RESOURCE_APP: &str = "fhir-server";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Run {
    pub n: usize,
    /// The commit the run measured and the machine's load averages around it (filled in by
    /// `main`; runs merged from other reports keep their own).
    #[serde(default)]
    pub commit: String,
    #[serde(default)]
    pub load_average_before: String,
    #[serde(default)]
    pub load_average_after: String,
    #[serde(default)]
    pub cpu: String,
    pub mix: BTreeMap<String, usize>,
    pub noise_objects: usize,
    pub noise_create_s: f64,
    pub ready: usize,
    pub all_ready_s: Option<f64>,
    pub time_to_ready_p50_s: f64,
    pub time_to_ready_p95_s: f64,
    pub time_to_ready_max_s: f64,
    pub lower_bound: LowerBound,
    pub ratio_to_lower_bound: Option<f64>,
    /// All Ready ÷ the bound within the operator's own limits (concurrency, rate limits).
    pub ratio_to_operator_bound: Option<f64>,
    pub create: Phase,
    pub steady: Phase,
    pub steady_window_s: f64,
    /// The operator's full re-read period and delta poll interval in this run.
    #[serde(default)]
    pub resync_s: Option<f64>,
    #[serde(default)]
    pub delta_poll_s: Option<f64>,
    pub steady_resyncs_in_window: f64,
    pub steady_graph_calls_per_app_per_hour: f64,
    pub steady_graph_writes: u64,
    pub steady_k8s_calls_per_app_per_hour: f64,
    pub operator_peak_rss_mib: f64,
    pub operator_rss_end_mib: f64,
    /// The operator's RSS once it has started, listed and watched everything and reconciled the
    /// resource app, just before the first client is applied: what it costs with no clients.
    #[serde(default)]
    pub operator_base_rss_mib: Option<f64>,
    /// (Peak RSS − base RSS) ÷ N.
    #[serde(default)]
    pub bytes_per_client: Option<f64>,
    /// The out-of-band change during the steady window and the time until it was healed.
    #[serde(default)]
    pub heal: Option<Heal>,
    pub throttled_429: u64,
}

/// What happened in one phase (create: operator start until all Ready + 3 s; steady: the window).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Phase {
    pub graph_calls: u64,
    pub graph_calls_per_app: f64,
    pub graph_by_operation: BTreeMap<String, u64>,
    pub k8s_calls: u64,
    pub k8s_calls_per_app: f64,
    pub k8s_by_verb_resource: BTreeMap<String, u64>,
    pub operator_cpu_s: f64,
}

/// Processes of one run; dropping it stops them and the control plane.
struct Env {
    dir: PathBuf,
    keep: bool,
    /// The run's watch tasks: stopped with the run, so they never outlive its control plane (a
    /// watcher of a stopped API server would retry in a loop and eat the next run's CPU).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    operator: Option<OperatorProcess>,
    emulator: Option<EmulatorProcess>,
    plane: Option<ControlPlane>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // In this order: the operator before the emulator and the control plane it talks to.
        drop(self.operator.take());
        drop(self.emulator.take());
        drop(self.plane.take());
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub async fn run(args: &Args, n: usize) -> Result<Run> {
    let dir = std::env::temp_dir().join(format!("fhir-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut env = Env {
        dir: dir.clone(),
        keep: args.keep,
        tasks: vec![],
        operator: None,
        emulator: None,
        plane: None,
    };

    // The audit log tells the operator's Kubernetes API calls apart (`audit_calls`).
    let opts = Options {
        die_with_parent: true,
        audit_log: true,
    };
    let plane = env
        .plane
        .insert(ControlPlane::start(&dir.join("cluster"), opts).await?);
    if args.keep {
        plane.keep_files();
    }
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let client = plane.client().await?;
    let emulator = env
        .emulator
        .insert(start_emulator(&args.bin_dir, &dir).await?);
    let admin = Admin::new(emulator)?;
    admin
        .put_realism(json!({"latency_ms": args.latency_ms, "throttling": true}))
        .await?;
    let realism = admin.get("/_emulator/realism").await?;
    let quotas = Quotas {
        resource_units_per_10s: realism["throttle_resource_units_per_10s"]
            .as_f64()
            .context("realism without throttle_resource_units_per_10s")?,
        writes_per_150s: realism["throttle_writes_per_150s"]
            .as_f64()
            .context("realism without throttle_writes_per_150s")?,
    };

    testenv::crds::install_crds(&client, "fhir-bench", Duration::from_secs(60)).await?;
    for ns in [NS, NOISE_NS, OP_NS] {
        let api: Api<Namespace> = Api::all(client.clone());
        api.create(
            &pp(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    }
    let op_kubeconfig = operator_kubeconfig(&client, &kubeconfig, &dir).await?;
    let started = Instant::now();
    create_noise(&client, args.noise).await?;
    let noise_create_s = started.elapsed().as_secs_f64();
    eprintln!(
        "fhir-bench: {} noise objects in {noise_create_s:.1}s",
        args.noise
    );

    let audit = dir.join("cluster/logs/audit.log");
    let audit_start = file_len(&audit);
    admin.delete_calls().await?;
    let metrics_port = testenv::free_port();
    let operator = start_operator(args, emulator, &op_kubeconfig, metrics_port, &dir)?;
    let pid = operator.pid();
    env.operator = Some(operator);

    let fca = dynamic(&client, "FhirClientApp");
    let fra = dynamic(&client, "FhirResourceApp");
    let resource = json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirResourceApp",
        "metadata": {"name": RESOURCE_APP}, "spec": {"fhirUrl": "https://fhir.contoso.example"}});
    fra.create(&pp(), &serde_json::from_value(resource)?)
        .await?;
    let (ready_rx, task) = watch_ready(fra.clone());
    env.tasks.push(task);
    wait_until(&ready_rx, 1, Duration::from_secs(120))
        .await
        .context("the FhirResourceApp never became Ready")?;

    let base_rss_kib = proc_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status"))?,
        "VmRSS:",
    );
    // Client-side clock: apply (create returned) → Ready=True seen by a watch.
    let (readies, task) = watch_ready(fca.clone());
    env.tasks.push(task);
    let applied: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let t0 = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let (fca, applied) = (fca.clone(), applied.clone());
            async move {
                let name = format!("client-{i:05}");
                let obj = json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp",
                    "metadata": {"name": name}, "spec": bound::client_spec(i, RESOURCE_APP)});
                fca.create(&pp(), &serde_json::from_value(obj)?).await?;
                applied.lock().unwrap().insert(name, Instant::now());
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!(
        "fhir-bench: {n} clients applied in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let all_ready = wait_until(&readies, n, Duration::from_secs(args.ready_timeout_secs))
        .await
        .is_ok();
    let all_ready_s = all_ready.then(|| t0.elapsed().as_secs_f64());
    let mut times: Vec<f64> = {
        let (applied, ready) = (applied.lock().unwrap(), readies.lock().unwrap());
        ready
            .iter()
            .filter_map(|(k, t)| Some(t.saturating_duration_since(*applied.get(k)?).as_secs_f64()))
            .collect()
    };
    times.sort_by(f64::total_cmp);
    eprintln!(
        "fhir-bench: {} of {n} Ready after {:.1}s",
        times.len(),
        t0.elapsed().as_secs_f64()
    );
    // Follow-up reconciles of the creates belong to the create phase: status and Secret writes,
    // and the re-reads the delta watcher's next poll triggers when it sees the operator's own new
    // applications (one poll interval, plus a margin for those reconciles).
    tokio::time::sleep(Duration::from_secs(3 + args.delta_poll_secs + 10)).await;
    let create = phase(&admin, &audit, audit_start, n).await?;
    let cpu_create = cpu_seconds(pid)?;

    admin.delete_calls().await?;
    let audit_mark = file_len(&audit);
    let window = Duration::from_secs(args.steady_secs);
    eprintln!("fhir-bench: steady state for {}s", window.as_secs());
    // Healing may take until the next full re-read if delta does not see the change.
    let give_up = window + Duration::from_secs(args.resync_secs.min(3600) + 60);
    let heal = (args.heal_at_secs < args.steady_secs).then_some(tokio::spawn(out_of_band_change(
        admin.graph(emulator).await?,
        fca.clone(),
        args.heal_at_secs,
        give_up,
    )));
    tokio::time::sleep(window).await;
    let mut steady = phase(&admin, &audit, audit_mark, n).await?;
    steady.operator_cpu_s = cpu_seconds(pid)? - cpu_create;
    let mut create = create;
    create.operator_cpu_s = cpu_create;

    let per_hour = 3600.0 / window.as_secs_f64() / n as f64;
    let steady_graph_writes = steady
        .graph_by_operation
        .iter()
        .filter(|(k, _)| !k.starts_with("GET ") && !k.contains(" token "))
        .map(|(_, v)| v)
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let heal = match heal {
        None => None,
        Some(task) => match task.await? {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("fhir-bench: the out-of-band change failed: {e:#}");
                None
            }
        },
    };
    if let Some(h) = &heal {
        eprintln!(
            "fhir-bench: out-of-band change healed after {:?} s",
            h.healed_after_s
        );
    }
    let peak_rss_kib = proc_kib(&status, "VmHWM:");
    let throttled = metrics_sum(metrics_port, "fhir_operator_graph_throttled_total").await;
    let lower_bound = bound::lower_bound(
        n,
        args.latency_ms,
        &quotas,
        &bound::OperatorLimits {
            requests_per_s: args.operator_graph_rate,
            request_burst: args.operator_graph_burst.into(),
            writes_per_s: args.operator_write_rate,
            write_burst: args.operator_write_burst.into(),
            concurrency: args.operator_concurrency.into(),
        },
    );
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut mix = BTreeMap::new();
    for i in 0..n {
        let s = bound::client_spec(i, RESOURCE_APP);
        let extra = if s["grantAdminConsent"] == true {
            "+grantAdminConsent"
        } else if s["assignAppRoles"] == true {
            "+assignAppRoles"
        } else {
            ""
        };
        *mix.entry(format!("{}{extra}", s["type"].as_str().unwrap()))
            .or_insert(0) += 1;
    }
    Ok(Run {
        n,
        commit: String::new(),
        load_average_before: String::new(),
        load_average_after: String::new(),
        cpu: String::new(),
        mix,
        noise_objects: args.noise,
        noise_create_s,
        ready: times.len(),
        all_ready_s,
        time_to_ready_p50_s: pct(0.50),
        time_to_ready_p95_s: pct(0.95),
        time_to_ready_max_s: times.last().copied().unwrap_or(f64::NAN),
        ratio_to_lower_bound: all_ready_s.map(|t| t / lower_bound.seconds),
        ratio_to_operator_bound: all_ready_s.map(|t| t / lower_bound.operator.seconds),
        lower_bound,
        steady_window_s: window.as_secs_f64(),
        resync_s: Some(args.resync_secs as f64),
        delta_poll_s: Some(args.delta_poll_secs as f64),
        steady_resyncs_in_window: window.as_secs_f64() / args.resync_secs as f64,
        steady_graph_calls_per_app_per_hour: steady.graph_calls as f64 * per_hour,
        steady_graph_writes,
        steady_k8s_calls_per_app_per_hour: steady.k8s_calls as f64 * per_hour,
        create,
        steady,
        operator_peak_rss_mib: peak_rss_kib / 1024.0,
        operator_rss_end_mib: proc_kib(&status, "VmRSS:") / 1024.0,
        operator_base_rss_mib: Some(base_rss_kib / 1024.0),
        bytes_per_client: Some((peak_rss_kib - base_rss_kib) * 1024.0 / n as f64),
        heal,
        throttled_429: throttled,
    })
}

/// Starts the emulator with the permissions the mix needs.
async fn start_emulator(bin_dir: &Path, dir: &Path) -> Result<EmulatorProcess> {
    let permissions = [
        "Application.ReadWrite.OwnedBy",
        "Application.Read.All",
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
    ];
    let ca_file = dir.join("emulator-ca.pem").display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--ca-file", &ca_file]
        .into_iter()
        .chain(permissions.iter().flat_map(|p| ["--permission", p]));
    EmulatorProcess::start(
        &bin_dir.join("entra-emulator"),
        args,
        &dir.join("emulator.log"),
    )
    .await
}

/// Starts the operator with the emulator's settings and the run's limits (its defaults unless
/// the flags say otherwise).
fn start_operator(
    args: &Args,
    emulator: &EmulatorProcess,
    kubeconfig: &Path,
    metrics_port: u16,
    dir: &Path,
) -> Result<OperatorProcess> {
    let settings = emulator
        .operator_env()
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let run = [
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("FHIR_OP_RESYNC", format!("{}s", args.resync_secs)),
        ("FHIR_OP_DELTA_POLL", format!("{}s", args.delta_poll_secs)),
        ("FHIR_OP_GRAPH_RATE", args.operator_graph_rate.to_string()),
        ("FHIR_OP_GRAPH_BURST", args.operator_graph_burst.to_string()),
        (
            "FHIR_OP_GRAPH_WRITE_RATE",
            args.operator_write_rate.to_string(),
        ),
        (
            "FHIR_OP_GRAPH_WRITE_BURST",
            args.operator_write_burst.to_string(),
        ),
        ("FHIR_OP_CONCURRENCY", args.operator_concurrency.to_string()),
        ("FHIR_OP_HTTP_ADDR", format!("127.0.0.1:{metrics_port}")),
        ("RUST_LOG", "warn".into()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    OperatorProcess::start(
        &args.bin_dir.join("fhir-app-operator"),
        "fhir-bench-operator",
        settings.chain(run),
        &dir.join("operator.log"),
    )
}

/// The operator talks to the API server as a ServiceAccount of its own, so the audit log tells its
/// calls apart from the bench's (which uses the admin certificate).
async fn operator_kubeconfig(client: &kube::Client, admin: &Path, dir: &Path) -> Result<PathBuf> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), OP_NS);
    sas.create(
        &pp(),
        &serde_json::from_value(json!({"metadata": {"name": OP_SA}}))?,
    )
    .await?;
    let crb: Api<ClusterRoleBinding> = Api::all(client.clone());
    crb.create(
        &pp(),
        &serde_json::from_value(json!({"metadata": {"name": "fhir-bench-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": OP_SA, "namespace": OP_NS}]}))?,
    )
    .await?;
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 86400}});
    let tr: Value = sas.create_subresource("token", OP_SA, &pp(), &req).await?;
    let token = tr["status"]["token"].as_str().context("no token")?;
    let mut kc: Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let user = &mut kc["users"][0]["user"];
    *user = json!({"token": token});
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc)?)?;
    Ok(path)
}

async fn create_noise(client: &kube::Client, count: usize) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NOISE_NS);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NOISE_NS);
    stream::iter(0..count)
        .map(|i| {
            let (secrets, maps) = (secrets.clone(), maps.clone());
            async move {
                let name = format!("unrelated-{i:05}");
                let data = json!({"metadata": {"name": name}, "stringData": {"k": "v".repeat(64)}});
                if i % 2 == 0 {
                    secrets
                        .create(&pp(), &serde_json::from_value(data)?)
                        .await?;
                } else {
                    let data = json!({"metadata": {"name": name}, "data": {"k": "v".repeat(64)}});
                    maps.create(&pp(), &serde_json::from_value(data)?).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn dynamic(client: &kube::Client, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("fhirapps.io", "v1alpha1", kind);
    Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk(&gvk))
}

type Readies = Arc<Mutex<HashMap<String, Instant>>>;

/// Records, per object, when a watch first saw it with Ready=True.
fn watch_ready(api: Api<DynamicObject>) -> (Readies, tokio::task::JoinHandle<()>) {
    let seen: Readies = Default::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        while let Some(ev) = events.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => vec![o],
                _ => continue,
            };
            let now = Instant::now();
            for o in objs {
                let ready = o.data["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if ready {
                    seen.lock()
                        .unwrap()
                        .entry(o.metadata.name.unwrap())
                        .or_insert(now);
                }
            }
        }
    });
    (out, task)
}

async fn wait_until(readies: &Readies, n: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while readies.lock().unwrap().len() < n {
        if Instant::now() > deadline {
            bail!("timed out: {} of {n} Ready", readies.lock().unwrap().len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn phase(admin: &Admin, audit: &Path, from: u64, n: usize) -> Result<Phase> {
    let calls = admin.get("/_emulator/calls").await?;
    let mut by_op = BTreeMap::new();
    for c in calls.as_array().context("calls")? {
        let path = c["path"].as_str().unwrap_or("");
        if path.starts_with("/_emulator") || c["caller"] == drift::ADMIN_APP_ID {
            continue;
        }
        let key = format!(
            "{} {} {}",
            c["method"].as_str().unwrap_or("?"),
            c["operation"].as_str().unwrap_or("?"),
            c["status"]
        );
        *by_op.entry(key).or_insert(0) += 1;
    }
    let graph_calls: u64 = by_op.values().sum();
    let k8s = audit_calls(audit, from)?;
    let k8s_calls: u64 = k8s.values().sum();
    Ok(Phase {
        graph_calls,
        graph_calls_per_app: graph_calls as f64 / n as f64,
        graph_by_operation: by_op,
        k8s_calls,
        k8s_calls_per_app: k8s_calls as f64 / n as f64,
        k8s_by_verb_resource: k8s,
        operator_cpu_s: 0.0,
    })
}

/// The operator's requests in the audit log from byte `from` on: one per request (the
/// ResponseComplete event; for watches, which may not have completed yet, ResponseStarted).
fn audit_calls(audit: &Path, from: u64) -> Result<BTreeMap<String, u64>> {
    let text = std::fs::read(audit).with_context(|| audit.display().to_string())?;
    let user = format!("system:serviceaccount:{OP_NS}:{OP_SA}");
    let mut out = BTreeMap::new();
    for line in text[from as usize..].split(|b| *b == b'\n') {
        let Ok(e) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if e["user"]["username"] != user.as_str() {
            continue;
        }
        let watch = e["verb"] == "watch";
        let stage = e["stage"].as_str().unwrap_or("");
        if (watch && stage != "ResponseStarted") || (!watch && stage != "ResponseComplete") {
            continue;
        }
        let r = &e["objectRef"];
        let mut resource = r["resource"].as_str().unwrap_or("-").to_string();
        if let Some(s) = r["subresource"].as_str() {
            resource = format!("{resource}/{s}");
        }
        *out.entry(format!("{} {resource}", e["verb"].as_str().unwrap_or("?")))
            .or_insert(0) += 1;
    }
    Ok(out)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// utime + stime of `pid` in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

fn proc_kib(status: &str, key: &str) -> f64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

async fn metrics_sum(port: u16, name: &str) -> u64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `at` into the steady window, client 0's redirect URI is replaced in Graph; how long until the
/// operator put it back.
async fn out_of_band_change(
    graph: AdminGraph,
    fca: Api<DynamicObject>,
    at: u64,
    give_up: Duration,
) -> Result<Heal> {
    tokio::time::sleep(Duration::from_secs(at)).await;
    let name = "client-00000";
    let obj = fca.get(name).await?;
    let oid = obj.data["status"]["applicationObjectId"]
        .as_str()
        .context("client-00000 has no applicationObjectId")?;
    let original = bound::client_spec(0, RESOURCE_APP)["redirectUris"].clone();
    let give_up = give_up.saturating_sub(Duration::from_secs(at));
    drift::edit_redirect_uri_and_wait(&graph, name, oid, &original, at as f64, give_up).await
}

fn pp() -> PostParams {
    PostParams::default()
}

/// The emulator's admin API (same HTTPS listener, no auth).
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(emulator: &EmulatorProcess) -> Result<Self> {
        let ca = std::fs::read(emulator.setting("CA_FILE")?)?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca)?)
            .build()?;
        let base = emulator.setting("AZURE_AUTHORITY_HOST")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }
    async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
    async fn put_realism(&self, body: Value) -> Result<()> {
        self.http
            .put(format!("{}/_emulator/realism", self.base))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
    /// Graph as the emulator's administrator (an admin token of the operator's tenant).
    async fn graph(&self, emulator: &EmulatorProcess) -> Result<AdminGraph> {
        let tenant = emulator.setting("AZURE_TENANT_ID")?;
        let answer: Value = (self.http)
            .post(format!(
                "{}/_emulator/tenants/{tenant}/admin-token",
                self.base
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(AdminGraph {
            http: self.http.clone(),
            graph_url: emulator.setting("FHIR_OP_GRAPH_URL")?.to_string(),
            token: answer["access_token"]
                .as_str()
                .context("admin-token without access_token")?
                .to_string(),
        })
    }
    async fn delete_calls(&self) -> Result<()> {
        self.http
            .delete(format!("{}/_emulator/calls", self.base))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
