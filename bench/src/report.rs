//! report.json and REPORT.md.

use crate::Args;
use crate::cluster::Run;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize, Deserialize, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub load_average: String,
    pub git_commit: String,
    pub unix_time: u64,
}

pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let git = |a: &[&str]| {
        std::process::Command::new("git")
            .args(a)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu: read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        load_average: read("/proc/loadavg")
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        git_commit: format!(
            "{}{}",
            git(&["rev-parse", "--short", "HEAD"]),
            if dirty { " + uncommitted changes" } else { "" }
        ),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

#[derive(Serialize)]
pub struct Report {
    pub machine_before: Machine,
    pub machine_after: Machine,
    pub parameters: serde_json::Value,
    pub runs: Vec<Run>,
    /// The BEFORE rows: runs of the baseline commit (`--baseline`), shown beside `runs`.
    pub baseline_runs: Vec<Run>,
    pub notes: Vec<String>,
}

/// The runs of a report.json (its own and any it merged); an absent file has none when it is
/// optional (`required` false). Runs from before the per-run commit field take the report's.
pub fn runs_of(path: &Path, required: bool) -> Result<Vec<Run>> {
    #[derive(Deserialize)]
    struct Stored {
        machine_before: Machine,
        machine_after: Machine,
        runs: Vec<Run>,
    }
    if !required && !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let stored: Stored = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a report.json", path.display()))?;
    Ok((stored.runs.into_iter())
        .map(|mut r| {
            if r.commit.is_empty() {
                r.commit = stored.machine_before.git_commit.clone();
                r.load_average_before = stored.machine_before.load_average.clone();
                r.load_average_after = stored.machine_after.load_average.clone();
            }
            if r.cpu.is_empty() {
                r.cpu = stored.machine_before.cpu.clone();
            }
            r
        })
        .collect())
}

impl Report {
    pub fn new(
        args: &Args,
        before: Machine,
        after: Machine,
        mut runs: Vec<Run>,
        baseline_runs: Vec<Run>,
    ) -> Self {
        runs.sort_by_key(|r| r.n);
        let mut notes = vec![
            "Time to Ready is measured client-side: from the create call returning to a watch seeing Ready=True.".into(),
            "Graph calls come from the emulator's call log (token requests included, admin calls excluded); \
             Kubernetes API calls from the kube-apiserver audit log, counting requests made by the operator's \
             own ServiceAccount (one per request; watches counted when started)."
                .into(),
            format!(
                "The create phase runs from the operator's start (initial lists and watches included) \
                 until all clients are Ready plus {} s (3 s, one delta poll interval and 10 s: the \
                 re-reads the delta watcher triggers when it sees the operator's own new applications \
                 belong to creating them); the resource app's own calls are included in it.",
                args.delta_poll_secs + 13
            ),
            format!(
                "Steady state is measured over {} s (full re-read every {} s, Graph delta polled \
                 every {} s) and scaled to one hour. During it, {} s in, the bench replaces client 0's redirect URI through Graph as \
                 the emulator's administrator and polls Graph every 0.5 s until the operator has \
                 put it back (\"drift healed in\"); the administrator's calls are not counted.",
                args.steady_secs, args.resync_secs, args.delta_poll_secs, args.heal_at_secs
            ),
            "Bytes per client: (peak RSS − base RSS) ÷ N, where the base is the operator's RSS \
             after it has started, listed and watched everything and made the resource app Ready, \
             just before the first client is applied."
                .into(),
            "The machine's load averages before and after the run are in the header; anything else \
             running at the time shared its cores."
                .into(),
        ];
        if runs.len() < 2 && !args.report_only {
            notes.push(if args.tenfold {
                "The 10×N run did not finish; only N is reported.".into()
            } else {
                "10×N was not run (no --tenfold); nothing here is extrapolated to it.".into()
            });
        }
        notes.extend(safety_net_notes(&runs, &baseline_runs));
        for r in runs.iter().filter(|r| r.ready < r.n) {
            notes.push(format!(
                "N = {}: only {} of {} clients were Ready within {} s.",
                r.n, r.ready, r.n, args.ready_timeout_secs
            ));
        }
        Report {
            machine_before: before,
            machine_after: after,
            parameters: json!({
                "n": args.n, "tenfold": args.tenfold, "noise_objects": args.noise,
                "latency_ms": args.latency_ms, "graph_throttling": true,
                "operator_resync_s": args.resync_secs, "operator_delta_poll_s": args.delta_poll_secs, "steady_window_s": args.steady_secs,
                "operator_graph_rate_per_s": args.operator_graph_rate,
                "operator_graph_burst": args.operator_graph_burst,
                "operator_graph_write_rate_per_s": args.operator_write_rate,
                "operator_graph_write_burst": args.operator_write_burst,
                "operator_concurrency": args.operator_concurrency,
                "baseline": args.baseline.display().to_string(),
                "heal_at_s": args.heal_at_secs,
            }),
            runs,
            baseline_runs,
            notes,
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        // `--out-dir` may name a directory that does not exist yet; losing a 40-minute run's report
        // to that would be a poor trade.
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(dir.join("REPORT.md"), self.markdown())?;
        Ok(())
    }

    fn markdown(&self) -> String {
        let mut s = String::from("# fhir-bench report\n\n");
        let (b, a) = (&self.machine_before, &self.machine_after);
        let _ = writeln!(
            s,
            "Report written at commit {}, {} cores ({}). Latency {} ms per Graph call, Graph throttling \
             on, {} unrelated Secrets/ConfigMaps. **BEFORE** rows: the runs of `{}` (an earlier \
             commit, kept for comparison); **AFTER** rows: this commit line, each row with the commit \
             it measured and the machine's load average (1, 5, 15 min) before and after its run (the \
             machine is shared: a high load makes times pessimistic). Load at this report: {} before, \
             {} after. Reproduce: `make bench` (see README, Performance).\n",
            b.git_commit,
            b.cores,
            b.cpu,
            self.parameters["latency_ms"],
            self.parameters["noise_objects"],
            self.parameters["baseline"].as_str().unwrap_or("-"),
            b.load_average,
            a.load_average,
        );
        s.push_str("| rows | N | commit (CPU; load before → after) | all Ready | p50 / p95 to Ready | lower bound: Graph's limits (binding) | ratio | bound within the operator's limits (binding) | ratio | Graph calls per app on create | Graph calls per app per hour, steady (writes) | drift healed in | K8s API calls per app: create / per hour steady | operator peak RSS (base) | bytes per client | operator CPU: create / steady window |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let mut rows: Vec<(&str, &Run)> = (self.baseline_runs.iter().map(|r| ("BEFORE", r)))
            .chain(self.runs.iter().map(|r| ("AFTER", r)))
            .collect();
        rows.sort_by_key(|(label, r)| (r.n, *label != "BEFORE"));
        for (label, r) in rows {
            row(&mut s, label, r);
        }
        for r in &self.runs {
            let lb = &r.lower_bound;
            let _ = writeln!(
                s,
                "\n## N = {} (AFTER, commit {})\n\nMix: {:?}. 429s seen by the operator: {}. {} noise objects created in {:.1} s.\n\nLower bound: {} minimal Graph writes and {} reads ({:.2} per client), {} dependent calls on the longest chain (token included). Within Graph's limits: latency {:.2} s, write quota {:.1} s, resource-unit quota {:.1} s. Within the operator's limits: concurrency {:.1} s, write rate limit {:.1} s, request rate limit {:.1} s. Measured: {} Graph calls on create, {:.2} per client ({:.2}× the minimum).\n",
                r.n,
                r.commit,
                r.mix,
                r.throttled_429,
                r.noise_objects,
                r.noise_create_s,
                lb.minimal_graph_writes,
                lb.minimal_graph_reads,
                (lb.minimal_graph_writes + lb.minimal_graph_reads) as f64 / r.n as f64,
                lb.critical_path_calls,
                lb.latency_bound_s,
                lb.write_quota_bound_s,
                lb.resource_unit_quota_bound_s,
                lb.operator.concurrency_bound_s,
                lb.operator.write_limit_bound_s,
                lb.operator.request_limit_bound_s,
                r.create.graph_calls,
                r.create.graph_calls_per_app,
                r.create.graph_calls as f64
                    / (lb.minimal_graph_writes + lb.minimal_graph_reads) as f64,
            );
            for (title, p) in [("create", &r.create), ("steady window", &r.steady)] {
                let _ = writeln!(s, "Graph calls, {title}: {:?}\n", p.graph_by_operation);
                let _ = writeln!(
                    s,
                    "Kubernetes API calls, {title}: {:?}\n",
                    p.k8s_by_verb_resource
                );
            }
        }
        s.push_str("\n## Notes\n\n");
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| {
        if x < 10.0 {
            format!("{x:.2}×")
        } else {
            format!("{x:.0}×")
        }
    })
}

/// One table row: `label` (BEFORE or AFTER) and the run's figures; "-" where an older run did
/// not measure it.
fn row(s: &mut String, label: &str, r: &Run) {
    let lb = &r.lower_bound;
    let heal = r.heal.as_ref().map_or("-".into(), |h| {
        h.healed_after_s
            .map_or(format!("not within {:.0} s", h.gave_up_after_s), |t| {
                format!("{t:.1} s")
            })
    });
    let base = r
        .operator_base_rss_mib
        .map_or(String::new(), |b| format!(" ({b:.1} MiB)"));
    let per_client = r
        .bytes_per_client
        .map_or("-".into(), |b| format!("{:.1} KB", b / 1000.0));
    let _ = writeln!(
        s,
        "| {label} | {} | {} ({}; {} → {}) | {} | {:.2} s / {:.2} s | {:.2} s ({}) | {} | {:.1} s ({}) | {} | {:.2} | {:.2} ({}) | {heal} | {:.1} / {:.1} | {:.1} MiB{base} | {per_client} | {:.1} s / {:.1} s |",
        r.n,
        r.commit,
        r.cpu,
        r.load_average_before,
        r.load_average_after,
        r.all_ready_s
            .map_or(format!("{} of {} Ready", r.ready, r.n), |t| format!(
                "{t:.1} s"
            )),
        r.time_to_ready_p50_s,
        r.time_to_ready_p95_s,
        lb.seconds,
        lb.binding,
        ratio(r.ratio_to_lower_bound),
        lb.operator.seconds,
        lb.operator.binding,
        ratio(r.ratio_to_operator_bound),
        r.create.graph_calls_per_app,
        r.steady_graph_calls_per_app_per_hour,
        r.steady_graph_writes,
        r.create.k8s_calls_per_app,
        r.steady_k8s_calls_per_app_per_hour,
        r.operator_peak_rss_mib,
        r.create.operator_cpu_s,
        r.steady.operator_cpu_s,
    );
}

/// Graph calls per client for one full re-read, from a run whose steady window held at least one.
fn calls_per_full_reread(r: &Run) -> Option<f64> {
    (r.steady_resyncs_in_window >= 1.0).then(|| {
        r.steady_graph_calls_per_app_per_hour * r.steady_window_s
            / 3600.0
            / r.steady_resyncs_in_window
    })
}

/// For runs whose full re-read is rarer than the steady window: its cost per client per hour by
/// arithmetic, from a run that measured one (this commit line's if there is one, else the
/// baseline's).
fn safety_net_notes(runs: &[Run], baseline: &[Run]) -> Vec<String> {
    let reference = (runs
        .iter()
        .filter_map(|r| Some((r, calls_per_full_reread(r)?, "AFTER"))))
    .chain(
        baseline
            .iter()
            .filter_map(|r| Some((r, calls_per_full_reread(r)?, "BEFORE"))),
    )
    .next();
    let Some((reference, per_reread, label)) = reference else {
        return vec![];
    };
    let measured = (runs.iter())
        .filter(|r| r.steady_resyncs_in_window >= 1.0)
        .filter_map(|r| {
            Some(format!(
                "N = {} ({}): run with the full re-read every {:.0} s, {:.1} times in the {:.0} s window, \
                 to measure what one costs: its steady column is mostly re-reads ({:.2} calls per client \
                 per full re-read, delta polls and the heal included).",
                r.n,
                r.commit,
                r.resync_s?,
                r.steady_resyncs_in_window,
                r.steady_window_s,
                calls_per_full_reread(r)?,
            ))
        });
    let arithmetic = (runs.iter())
        .filter(|r| r.steady_resyncs_in_window < 1.0)
        .filter_map(|r| {
            let resync = r.resync_s?;
            Some(format!(
                "N = {} ({}): the full re-read (every {resync:.0} s) is longer than the {:.0} s steady \
                 window, so the measured {:.2} calls per client per hour leave it out. By arithmetic \
                 (not measured): {per_reread:.2} calls per client per full re-read (measured in the \
                 {label} run N = {} of {} with a {:.0} s window) × 3,600 ÷ {resync:.0} = {:.3} more per \
                 client per hour, {:.0} calls per full re-read for all {} clients.",
                r.n,
                r.commit,
                r.steady_window_s,
                r.steady_graph_calls_per_app_per_hour,
                reference.n,
                reference.commit,
                reference.steady_window_s,
                per_reread * 3600.0 / resync,
                per_reread * r.n as f64,
                r.n,
            ))
        });
    measured.chain(arithmetic).collect()
}
