//! fhir-bench (`make bench`): N FhirClientApps of mixed types against one FhirResourceApp, with the
//! emulator's Graph latency and throttling quotas on and 10,000 unrelated Secrets/ConfigMaps in the
//! cluster. Measures time to Ready, Graph and Kubernetes API calls per app, the operator's peak RSS
//! and CPU, and compares the total time with a lower bound derived from the quotas. Writes
//! `bench/report.json` and `bench/REPORT.md`.
//!
//! Every run gets a fresh control plane (testenv's, with the apiserver audit log on), a fresh
//! emulator process and a fresh operator process, so /proc figures are the operator's alone.

mod bound;
mod cluster;
mod drift;
mod report;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Clone)]
#[command(name = "fhir-bench", about, long_about = None)]
pub struct Args {
    /// Number of FhirClientApps (mixed Confidential / Public / Service).
    #[arg(long, env = "BENCH_N", default_value_t = 500)]
    pub n: usize,
    /// Also run 10×N (the same measurements, to show how cost grows).
    #[arg(long)]
    pub tenfold: bool,
    /// Unrelated Secrets + ConfigMaps created before the operator starts (half each).
    #[arg(long, default_value_t = 10_000)]
    pub noise: usize,
    /// Latency the emulator adds to every Graph and token call, ms.
    #[arg(long, default_value_t = 30)]
    pub latency_ms: u64,
    /// The operator's full re-read period (FHIR_OP_RESYNC: the safety net behind the Graph delta
    /// watcher; 24 h is its default), seconds.
    #[arg(long, default_value_t = 86_400)]
    pub resync_secs: u64,
    /// The operator's Graph delta poll interval (FHIR_OP_DELTA_POLL; 60 is its default), seconds.
    #[arg(long, default_value_t = 60)]
    pub delta_poll_secs: u64,
    /// The operator's Graph request rate limit (FHIR_OP_GRAPH_RATE; its default).
    #[arg(long, default_value_t = 100.0)]
    pub operator_graph_rate: f64,
    /// The operator's Graph request burst (FHIR_OP_GRAPH_BURST; its default).
    #[arg(long, default_value_t = 200)]
    pub operator_graph_burst: u32,
    /// The operator's Graph write rate limit (FHIR_OP_GRAPH_WRITE_RATE; its default).
    #[arg(long, default_value_t = 20.0)]
    pub operator_write_rate: f64,
    /// The operator's Graph write burst (FHIR_OP_GRAPH_WRITE_BURST; its default).
    #[arg(long, default_value_t = 3000)]
    pub operator_write_burst: u32,
    /// Resources the operator reconciles in parallel (FHIR_OP_CONCURRENCY; its default).
    #[arg(long, default_value_t = 8)]
    pub operator_concurrency: u16,
    /// Length of the steady-state window after everything is Ready, seconds. When it is shorter
    /// than the full re-read period, the report adds the re-read's cost per hour by arithmetic.
    #[arg(long, default_value_t = 300)]
    pub steady_secs: u64,
    /// Seconds into the steady window when client 0's redirect URI is changed in Graph behind the
    /// operator's back (the report gives the time until it was healed); not done when it is not
    /// within the window.
    #[arg(long, default_value_t = 30)]
    pub heal_at_secs: u64,
    /// Give up waiting for Ready after this many seconds (the report says how many were Ready).
    #[arg(long, default_value_t = 3600)]
    pub ready_timeout_secs: u64,
    /// Where the release binaries (fhir-app-operator, entra-emulator) are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where report.json and REPORT.md go.
    #[arg(long, default_value = "bench")]
    pub out_dir: PathBuf,
    /// A report.json of an earlier commit whose runs the report shows as BEFORE rows beside this
    /// run's (skipped when the file does not exist).
    #[arg(long, default_value = "bench/baseline-dfff007.json")]
    pub baseline: PathBuf,
    /// report.json files of earlier runs of this commit line (other N) to show as AFTER rows
    /// beside this run's; each row keeps its own commit and load.
    #[arg(long)]
    pub merge: Vec<PathBuf>,
    /// Run nothing: write the report from --merge and --baseline only.
    #[arg(long)]
    pub report_only: bool,
    /// Keep each run's work directory (logs, audit log) under /tmp.
    #[arg(long)]
    pub keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let before = report::runs_of(&args.baseline, false)?;
    let mut runs = vec![];
    for m in &args.merge {
        runs.extend(report::runs_of(m, true)?);
    }
    if args.report_only {
        let rep = report::Report::new(&args, report::machine(), report::machine(), runs, before);
        rep.write(&args.out_dir)?;
        eprintln!("fhir-bench: wrote {}/REPORT.md", args.out_dir.display());
        return Ok(());
    }
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    for b in ["fhir-app-operator", "entra-emulator"] {
        let p = args.bin_dir.join(b);
        std::fs::metadata(&p).with_context(|| format!("{} (run `make bench`)", p.display()))?;
    }
    let machine_before = report::machine();
    let mut sizes = vec![args.n];
    if args.tenfold {
        sizes.push(args.n * 10);
    }
    for n in sizes {
        eprintln!("fhir-bench: run with N = {n}");
        // The commit as the run starts: the binaries were built from it.
        let at_start = report::machine();
        let mut run = cluster::run(&args, n).await?;
        let after = report::machine();
        run.commit = at_start.git_commit;
        run.load_average_before = at_start.load_average;
        run.load_average_after = after.load_average.clone();
        run.cpu = after.cpu.clone();
        // Write after every run, so a long 10×N run that is cut short leaves the first one.
        runs.push(run);
        let rep = report::Report::new(
            &args,
            machine_before.clone(),
            after,
            runs.clone(),
            before.clone(),
        );
        rep.write(&args.out_dir)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "fhir-bench: wrote {0}/report.json and {0}/REPORT.md",
        args.out_dir.display()
    );
    Ok(())
}
