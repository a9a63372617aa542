//! report.json and REPORT.md.

use crate::Args;
use crate::cluster::Run;
use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize, Clone)]
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
pub struct Report<'a> {
    pub machine_before: Machine,
    pub machine_after: Machine,
    pub parameters: serde_json::Value,
    pub runs: &'a [Run],
    pub notes: Vec<String>,
}

impl<'a> Report<'a> {
    pub fn new(args: &Args, before: Machine, after: Machine, runs: &'a [Run]) -> Self {
        let mut notes = vec![
            "Time to Ready is measured client-side: from the create call returning to a watch seeing Ready=True.".into(),
            "Graph calls come from the emulator's call log (token requests included, admin calls excluded); \
             Kubernetes API calls from the kube-apiserver audit log, counting requests made by the operator's \
             own ServiceAccount (one per request; watches counted when started)."
                .into(),
            "The create phase runs from the operator's start (initial lists and watches included) until all \
             clients are Ready plus 3 s; the resource app's own calls are included in it."
                .into(),
            format!(
                "Steady state is measured over {} s with resync {} s and scaled to one hour.",
                args.steady_secs, args.resync_secs
            ),
            "The machine's load averages before and after the run are in the header; anything else \
             running at the time shared its cores."
                .into(),
        ];
        if runs.len() < 2 {
            notes.push(if args.tenfold {
                "The 10×N run did not finish; only N is reported.".into()
            } else {
                "10×N was not run (no --tenfold); nothing here is extrapolated to it.".into()
            });
        }
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
                "operator_resync_s": args.resync_secs, "steady_window_s": args.steady_secs,
                "operator_graph_rate_per_s": args.operator_graph_rate,
                "operator_graph_burst": args.operator_graph_burst,
                "operator_graph_write_rate_per_s": args.operator_write_rate,
                "operator_graph_write_burst": args.operator_write_burst,
                "operator_concurrency": args.operator_concurrency,
            }),
            runs,
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
            "Commit {}, {} cores ({}), load average {} before, {} after. Latency {} ms per Graph call, \
             Graph throttling on, {} unrelated Secrets/ConfigMaps. Reproduce: `make bench` \
             (see README, Performance).\n",
            b.git_commit,
            b.cores,
            b.cpu,
            b.load_average,
            a.load_average,
            self.parameters["latency_ms"],
            self.parameters["noise_objects"]
        );
        s.push_str("| N | all Ready | p50 / p95 to Ready | lower bound: Graph's limits (binding) | ratio | bound within the operator's limits (binding) | ratio | Graph calls per app on create | Graph calls per app per hour, steady (writes) | K8s API calls per app: create / per hour steady | operator peak RSS | operator CPU: create / steady window |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let ratio = |x: Option<f64>| {
            x.map_or("-".into(), |x| {
                if x < 10.0 {
                    format!("{x:.2}×")
                } else {
                    format!("{x:.0}×")
                }
            })
        };
        for r in self.runs {
            let lb = &r.lower_bound;
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} s / {:.2} s | {:.2} s ({}) | {} | {:.1} s ({}) | {} | {:.2} | {:.1} ({}) | {:.1} / {:.1} | {:.1} MiB | {:.1} s / {:.1} s |",
                r.n,
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
        for r in self.runs {
            let lb = &r.lower_bound;
            let _ = writeln!(
                s,
                "\n## N = {}\n\nMix: {:?}. 429s seen by the operator: {}. {} noise objects created in {:.1} s.\n\nLower bound: {} minimal Graph writes and {} reads ({:.2} per client), {} dependent calls on the longest chain (token included). Within Graph's limits: latency {:.2} s, write quota {:.1} s, resource-unit quota {:.1} s. Within the operator's limits: concurrency {:.1} s, write rate limit {:.1} s, request rate limit {:.1} s. Measured: {} Graph calls on create, {:.2} per client ({:.2}× the minimum).\n",
                r.n,
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
