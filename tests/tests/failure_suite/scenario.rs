//! One failure-suite scenario: its namespace, emulator, operator lives and invariant checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::invariants::{self, Baseline, Converged, Harvest};
use fhir_app_operator_tests::operator::{Harness, full_permissions, secret_data};
use kube::Client;
use kube::api::ListParams;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use testenv::OperatorProcess;

/// Limit of every wait for convergence or cleanup.
pub const CONVERGE: Duration = Duration::from_secs(150);

/// `target/debug`, after building the operator binary there once per run (so a changed operator is
/// never tested stale).
pub fn target_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "fhir-app-operator",
                "--bin",
                "fhir-app-operator",
            ])
            .current_dir(workspace)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of fhir-app-operator failed");
        // target/debug/deps/failure_suite-… → target/debug
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().to_path_buf()
    })
}

pub fn bin(name: &str) -> PathBuf {
    target_dir().join(name)
}

pub fn suite_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("FAILURE_SUITE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().r#gen::<u32>() as u64);
        println!(
            "failure_suite: seed {seed} (FAILURE_SUITE_SEED={seed} repeats the random choices)"
        );
        seed
    })
}

/// The operator binary as a child process with `env`, its output appended to `log`.
pub fn start_operator(env: &[(&str, String)], identity: &str, log: &Path) -> OperatorProcess {
    OperatorProcess::start(
        &bin("fhir-app-operator"),
        identity,
        env.iter().cloned(),
        log,
    )
    .expect("start fhir-app-operator")
}

/// How long a SIGTERMed operator may take to exit.
pub const GRACE: Duration = Duration::from_secs(30);

/// One scenario: a namespace, an emulator persisting its state (to harvest issued secrets), a
/// directory for the operator's logs (removed when the scenario passes, kept for diagnosis otherwise).
pub struct Scenario {
    pub name: &'static str,
    pub h: Harness,
    pub base: Baseline,
    pub harvest: Harvest,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub rng: StdRng,
    pub started: Instant,
    /// A team's namespace whose clients reference resource apps in `h.ns` (issue 18); the operator
    /// then watches every namespace, so only a private control plane may have one.
    pub team: Option<fhir_app_operator_tests::TestNamespace>,
}

impl Scenario {
    pub async fn new(name: &'static str) -> Scenario {
        let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG (set by kube-local run)");
        let client = fhir_app_operator_tests::kube_client().await;
        Self::on_cluster(name, client, kubeconfig.into(), false).await
    }

    pub async fn on_cluster(
        name: &'static str,
        client: Client,
        kubeconfig: PathBuf,
        with_team: bool,
    ) -> Scenario {
        let seed = suite_seed();
        // Builds first (once), so no scenario's timings include compilation.
        let dir = target_dir()
            .join("failure-suite")
            .join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state_file = dir.join("emulator-state.json");
        let sf = state_file.clone();
        let mut h = Harness::on_cluster(client, name, move |cfg, _| {
            cfg.tenants[0].apps[0].permissions = full_permissions();
            cfg.state_file = Some(sf);
            managed_fhir_service(cfg);
        })
        .await;
        let team = match with_team {
            true => {
                let t =
                    fhir_app_operator_tests::TestNamespace::new(&h.client, &format!("{name}-team"))
                        .await;
                h.extra_namespaces.push(t.name.clone());
                Some(t)
            }
            false => None,
        };
        let base = Baseline::take(&h).await;
        let harvest = Harvest::start(&h, state_file);
        let rng = StdRng::seed_from_u64(seed ^ name.bytes().fold(0u64, |a, b| a * 31 + b as u64));
        Scenario {
            name,
            h,
            base,
            harvest,
            dir,
            kubeconfig,
            rng,
            started: Instant::now(),
            team,
        }
    }

    /// 15 ms of latency per Graph call stretches each reconcile so kills land inside them; 1 s of
    /// replication lag adds Graph's usual race.
    pub fn stretch_reconciles(&self) {
        let mut r = self.h.emu.realism();
        r.latency_ms = 15;
        r.replication_lag_ms = 1000;
        self.h.emu.set_realism(r);
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("operator.log")
    }

    /// The binary's configuration (flags as environment variables) for this scenario.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let e = &self.h.emu;
        let mut env = vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("AZURE_TENANT_ID", e.tenant_id()),
            ("AZURE_CLIENT_ID", e.client_id()),
            ("AZURE_CLIENT_SECRET", e.client_secret()),
            ("AZURE_AUTHORITY_HOST", e.authority_host()),
            ("FHIR_OP_GRAPH_URL", e.graph_url()),
            ("FHIR_OP_EXTRA_CA_FILE", e.ca_file().display().to_string()),
            ("FHIR_OP_CLUSTER_NAME", "it".into()),
            ("FHIR_OP_WATCH_NAMESPACE", self.h.ns.name.clone()),
            ("FHIR_OP_HTTP_ADDR", "127.0.0.1:0".into()),
            ("FHIR_OP_ARM_URL", e.base_url()),
            // Debug output too: a leak at any level fails the scan, and watch errors show in the log.
            (
                "RUST_LOG",
                "info,fhir_app_operator=debug,kube_runtime=debug".into(),
            ),
        ];
        // Every namespace when a team's clients are in the mix (a private control plane's).
        if self.team.is_some() {
            env.retain(|(k, _)| *k != "FHIR_OP_WATCH_NAMESPACE");
        }
        env
    }

    pub fn operator(&self, identity: &str) -> OperatorProcess {
        start_operator(&self.env(), identity, &self.log())
    }

    pub async fn apply_all(&self, objects: &[Value]) {
        for o in objects {
            if o["kind"] == "FhirResourceApp" {
                self.h.apply::<FhirResourceApp>(o.clone()).await.unwrap();
            } else if let Some(ns) = o["metadata"]["namespace"].as_str() {
                let name = o["metadata"]["name"].as_str().unwrap();
                kube::Api::<FhirClientApp>::namespaced(self.h.client.clone(), ns)
                    .patch(
                        name,
                        &kube::api::PatchParams::apply("failure-suite").force(),
                        &kube::api::Patch::Apply(o),
                    )
                    .await
                    .unwrap();
            } else {
                self.h.apply::<FhirClientApp>(o.clone()).await.unwrap();
            }
        }
    }

    pub async fn delete_clients(&self, names: &[String]) {
        for n in names {
            self.h.delete::<FhirClientApp>(n).await.unwrap();
        }
    }

    /// Deletes every resource in the namespace; returns the Secrets' data, to prove afterwards that
    /// their credentials stopped working.
    pub async fn delete_everything(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        let mut held = vec![];
        for c in self.h.list_everywhere::<FhirClientApp>().await.unwrap() {
            let name = c.metadata.name.unwrap();
            let ns = c.metadata.namespace.unwrap();
            let out = c.status.and_then(|s| s.output_name);
            if let Some(data) = secret_data(&self.h.client, &ns, &out.unwrap()).await
                && (data.contains_key("AZURE_CLIENT_SECRET")
                    || data.contains_key("client-certificate.pem"))
            {
                held.push(data);
            }
            kube::Api::<FhirClientApp>::namespaced(self.h.client.clone(), &ns)
                .delete(&name, &Default::default())
                .await
                .unwrap();
        }
        for r in self
            .h
            .api::<FhirResourceApp>()
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            self.h
                .delete::<FhirResourceApp>(&r.metadata.name.unwrap())
                .await
                .unwrap();
        }
        held
    }

    /// Waits until every invariant holds; returns the counts and how long it took.
    pub async fn converge(&self, what: &str) -> (Converged, Duration) {
        let t = Instant::now();
        let what = format!(
            "{}: {what} (operator log: {})",
            self.name,
            self.log().display()
        );
        let c = self
            .h
            .eventually(&what, CONVERGE, || async {
                invariants::converged(&self.h, &self.base).await.map(Some)
            })
            .await;
        (c, t.elapsed())
    }

    /// Every resource's registration, keyed by kind/namespace/name.
    pub async fn registrations(&self) -> BTreeMap<String, Registration> {
        let resources = self.h.list_everywhere::<FhirResourceApp>().await.unwrap();
        let clients = self.h.list_everywhere::<FhirClientApp>().await.unwrap();
        let objects = (resources.iter().map(|o| serde_json::to_value(o).unwrap()))
            .chain(clients.iter().map(|o| serde_json::to_value(o).unwrap()));
        objects
            .map(|o| {
                let (m, st) = (&o["metadata"], &o["status"]);
                let key = format!("{}/{}/{}", o["kind"], m["namespace"], m["name"]);
                let field = |f: &str| st[f].as_str().unwrap_or_default().to_string();
                let purge = o["spec"]["deletionPolicy"] == "Purge";
                let reg = Registration {
                    client_id: field("clientId"),
                    object_id: field("applicationObjectId"),
                    service_principal_id: field("servicePrincipalObjectId"),
                    purge,
                };
                (key, reg)
            })
            .collect()
    }

    /// `GET /directory/deletedItems/{id}` as the tenant's administrator: (status, body).
    pub async fn deleted_item(&self, object_id: &str) -> (u16, Value) {
        let path = format!("/directory/deletedItems/{object_id}");
        self.h.graph(reqwest::Method::GET, &path, None).await
    }

    /// Waits until deletion left nothing behind; returns the soft-deleted application count.
    pub async fn all_gone(&self, held: &[std::collections::BTreeMap<String, String>]) -> usize {
        let what = format!(
            "{}: everything deleted (operator log: {})",
            self.name,
            self.log().display()
        );
        self.h
            .eventually(&what, CONVERGE, || async {
                invariants::gone(&self.h, &self.base, held).await.map(Some)
            })
            .await
    }

    pub fn graph_calls(&self) -> usize {
        self.h
            .emu
            .calls()
            .iter()
            .filter(|c| c.operation != "token")
            .count()
    }

    pub fn calls_with(&self, pred: impl Fn(&entra_emulator::CallRecord) -> bool) -> usize {
        self.h.emu.calls().iter().filter(|c| pred(c)).count()
    }

    /// Scans for leaked credentials, prints the summary line, removes the scenario's files.
    pub async fn finish(self, summary: String) {
        let values = self.harvest.values();
        let logs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        assert!(
            !logs.is_empty(),
            "no operator log in {}",
            self.dir.display()
        );
        let checked = invariants::no_leaks(&self.h, &values, &logs).await;
        println!(
            "failure_suite: {}: {summary}; graph calls {}; no leak among {checked} credential values; wall {:.1}s",
            self.name,
            self.graph_calls(),
            self.started.elapsed().as_secs_f64()
        );
        // A passing scenario's logs are removed unless asked for (FAILURE_SUITE_KEEP_LOGS=1).
        if std::env::var_os("FAILURE_SUITE_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What a resource was registered as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub client_id: String,
    pub object_id: String,
    pub service_principal_id: String,
    /// `deletionPolicy: Purge`: deleted for good, so re-created as a new application.
    pub purge: bool,
}

/// SIGKILLs done, and how many of those lives had reached Graph (so the kill hit reconcile work).
#[derive(Default)]
pub struct Kills {
    pub count: usize,
    pub busy: usize,
    pub waits_ms: Vec<u64>,
}

impl Kills {
    pub fn describe(&self) -> String {
        let mut w = self.waits_ms.clone();
        w.sort();
        format!(
            "{} SIGKILLs after {}–{} ms (median {} ms), {} of them after the life had made Graph calls",
            self.count,
            w[0],
            w[w.len() - 1],
            w[w.len() / 2],
            self.busy
        )
    }
}

impl Scenario {
    /// `n` lives of the operator, each SIGKILLed after a random 50–800 ms.
    pub async fn kill_lives(&mut self, k: &mut Kills, n: usize) {
        for _ in 0..n {
            let before = self.graph_calls();
            let op = self.operator(&format!("life-{}", k.count));
            let wait = self.rng.gen_range(50..=800);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            op.sigkill().unwrap();
            k.count += 1;
            k.waits_ms.push(wait);
            if self.graph_calls() > before {
                k.busy += 1;
            }
        }
    }
}

/// The managed FHIR service in every scenario's emulator: ARM sees a new service principal 2 s
/// after Graph does, and the operator may assign the FHIR data roles on the service.
pub const FHIR_SCOPE: &str = "/subscriptions/6a1b2c3d-0000-4000-8000-0000000000f5/resourceGroups/health/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/fhir";

pub fn managed_fhir_service(cfg: &mut entra_emulator::Config) {
    cfg.arm.principal_lag_ms = 2000;
    cfg.arm.fhir_services = vec![entra_emulator::FhirServiceConfig {
        resource_id: FHIR_SCOPE.into(),
        audience: None,
    }];
    cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
        scope: FHIR_SCOPE.into(),
        role: "Role Based Access Control Administrator".into(),
        principal_client_id: Some(cfg.tenants[0].apps[0].client_id.clone()),
        ..Default::default()
    }];
}
