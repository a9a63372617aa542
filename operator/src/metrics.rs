//! The operator's Prometheus metrics, kept and rendered in the text exposition format by the
//! `prometheus` crate (tikv/rust-prometheus). Chosen over `prometheus-client` because that one speaks
//! only OpenMetrics (counter families typed without `_total`, a `# EOF` line), while promtool's lint,
//! our dashboard and alerts, and every Prometheus since 2.0 read this classic format as it is.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{CounterVec, Encoder, GaugeVec, Opts, Registry, TextEncoder};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: CounterVec,
    errors: CounterVec,
    graph_calls: CounterVec,
    throttled: CounterVec,
    arm_calls: CounterVec,
    stalled: GaugeVec,
    expiry: GaugeVec,
    renewal: GaugeVec,
    max_lifetime: GaugeVec,
    write_budget: GaugeVec,
    delta_rounds: CounterVec,
    delta_changes: CounterVec,
    delta_requeues: CounterVec,
    delta_last_success: GaugeVec,
    delta_watching: GaugeVec,
    /// When each client's current credential is due for renewal (unix seconds), by `namespace/name`;
    /// the gauge is "seconds until", computed at each scrape like the expiry's.
    renewals: Mutex<BTreeMap<String, i64>>,
    /// credential expiry (unix seconds) by `namespace/name`: the gauge is "seconds until", so it is
    /// computed from this at each scrape.
    expiries: Mutex<BTreeMap<String, i64>>,
    /// The reason of each Stalled series, by (kind, `namespace/name`), to remove it when it changes.
    stalled_reasons: Mutex<BTreeMap<(String, String), String>>,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> CounterVec {
    let c = CounterVec::new(Opts::new(name, help), labels).expect("a valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric name");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        Metrics {
            reconciles: counter(
                &r,
                "fhir_operator_reconciles_total",
                "Reconciles by kind and result.",
                &["kind", "result"],
            ),
            errors: counter(
                &r,
                "fhir_operator_errors_total",
                "Reconcile errors by kind and category.",
                &["kind", "category"],
            ),
            graph_calls: counter(
                &r,
                "fhir_operator_graph_calls_total",
                "Microsoft Graph and token calls by operation and HTTP status.",
                &["operation", "status"],
            ),
            throttled: counter(
                &r,
                "fhir_operator_graph_throttled_total",
                "Graph responses 429/503 that asked us to wait.",
                &["operation"],
            ),
            arm_calls: counter(
                &r,
                "fhir_operator_arm_calls_total",
                "Azure Resource Manager calls (role assignments on the managed FHIR service) by operation and HTTP status.",
                &["operation", "status"],
            ),
            expiry: gauge(
                &r,
                "fhir_operator_credential_expiry_seconds",
                "Seconds until each client's current credential expires.",
                &["namespace", "name"],
            ),
            renewal: gauge(
                &r,
                "fhir_operator_credential_renewal_seconds",
                "Seconds until the operator renews each client's current credential (negative: overdue).",
                &["namespace", "name"],
            ),
            max_lifetime: gauge(
                &r,
                "fhir_operator_credential_max_lifetime_seconds",
                "The longest lifetime the tenant's app management policy allows each client's credential type (only clients under such a cap).",
                &["namespace", "name"],
            ),
            write_budget: gauge(
                &r,
                "fhir_operator_write_budget_per_second",
                "Graph and ARM writes per second the operator allows itself per tenant now: Graph's documented limit (or FHIR_OP_GRAPH_WRITE_RATE), halved on a 429, climbing back when Graph stops throttling.",
                &["tenant"],
            ),
            delta_rounds: counter(
                &r,
                "fhir_operator_delta_rounds_total",
                "Graph delta rounds per tenant and collection by outcome: baseline (a new round from now), ok, stale (the link expired: a new round, every owner re-read), forbidden (403: the tenant is re-read every --resync-unwatched), error.",
                &["tenant", "kind", "outcome"],
            ),
            delta_changes: counter(
                &r,
                "fhir_operator_delta_changes_total",
                "Objects Graph delta reported changed or removed, per tenant and collection (the operator's or not).",
                &["tenant", "kind"],
            ),
            delta_requeues: counter(
                &r,
                "fhir_operator_delta_requeues_total",
                "Resources the delta watcher sent back to a full reconcile, by reason: change (delta named their application or service principal), baseline (they read Graph before the tenant's first round), stale (a new round after an expired link), unwatched (delta started failing).",
                &["tenant", "reason"],
            ),
            delta_last_success: gauge(
                &r,
                "fhir_operator_delta_last_success_timestamp_seconds",
                "When the last delta round of both collections ended well, per tenant (unix seconds).",
                &["tenant"],
            ),
            delta_watching: gauge(
                &r,
                "fhir_operator_delta_watching",
                "1 while a tenant is watched through Graph delta (its objects are fully re-read every --resync), 0 while it is re-read every --resync-unwatched instead.",
                &["tenant"],
            ),
            stalled: gauge(
                &r,
                "fhir_operator_stalled",
                "1 for each resource whose Stalled condition is True (a permanent error that needs a human).",
                &["kind", "namespace", "name", "reason"],
            ),
            registry: r,
            expiries: Mutex::default(),
            renewals: Mutex::default(),
            stalled_reasons: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn reconcile(&self, kind: &str, result: &str) {
        self.reconciles.with_label_values(&[kind, result]).inc();
    }
    pub fn error(&self, kind: &str, category: &str) {
        self.errors.with_label_values(&[kind, category]).inc();
    }
    pub fn graph_call(&self, operation: &str, status: u16) {
        let code = status.to_string();
        (self.graph_calls)
            .with_label_values(&[operation, code.as_str()])
            .inc();
        if status == 429 || status == 503 {
            self.throttled.with_label_values(&[operation]).inc();
        }
    }
    pub fn arm_call(&self, operation: &str, status: u16) {
        let code = status.to_string();
        (self.arm_calls)
            .with_label_values(&[operation, code.as_str()])
            .inc();
    }
    pub fn set_write_budget(&self, tenant: &str, per_sec: f64) {
        self.write_budget.with_label_values(&[tenant]).set(per_sec);
    }
    pub fn delta_round(&self, tenant: &str, kind: &str, outcome: &str) {
        (self.delta_rounds)
            .with_label_values(&[tenant, kind, outcome])
            .inc();
    }
    pub fn delta_changes(&self, tenant: &str, kind: &str, n: u64) {
        (self.delta_changes.with_label_values(&[tenant, kind])).inc_by(n as f64);
    }
    pub fn delta_requeues(&self, tenant: &str, reason: &str, n: u64) {
        (self.delta_requeues.with_label_values(&[tenant, reason])).inc_by(n as f64);
    }
    pub fn set_delta_last_success(&self, tenant: &str, unix: i64) {
        (self.delta_last_success.with_label_values(&[tenant])).set(unix as f64);
    }
    pub fn set_delta_watching(&self, tenant: &str, watching: bool) {
        let v = if watching { 1.0 } else { 0.0 };
        self.delta_watching.with_label_values(&[tenant]).set(v);
    }
    pub fn set_credential_expiry(&self, key: &str, unix: Option<i64>) {
        let mut e = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        match unix {
            Some(t) => e.insert(key.to_string(), t),
            None => e.remove(key),
        };
    }
    /// Records when a client's credential is renewed and the policy's cap on its lifetime, if any.
    pub fn set_credential_schedule(&self, key: &str, renew_at: Option<i64>, max: Option<u64>) {
        let mut r = self.renewals.lock().unwrap_or_else(|e| e.into_inner());
        match renew_at {
            Some(t) => r.insert(key.to_string(), t),
            None => r.remove(key),
        };
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        match max {
            Some(m) => (self.max_lifetime.with_label_values(&[ns, name])).set(m as f64),
            None => {
                let _ = self.max_lifetime.remove_label_values(&[ns, name]);
            }
        }
    }
    /// Records whether `kind` `namespace/name` is Stalled (with the condition's reason) or not: one
    /// series per resource, so a new reason replaces the old one.
    pub fn set_stalled(&self, kind: &str, key: &str, reason: Option<&str>) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let mut reasons = self
            .stalled_reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let k = (kind.to_string(), key.to_string());
        if let Some(old) = reasons.remove(&k) {
            let _ = self
                .stalled
                .remove_label_values(&[kind, ns, name, old.as_str()]);
        }
        if let Some(r) = reason {
            self.stalled
                .with_label_values(&[kind, ns, name, r])
                .set(1.0);
            reasons.insert(k, r.to_string());
        }
    }
    /// Sum of a counter over all label sets whose `name="value"` rendering contains `filter`.
    pub fn counter_sum(&self, name: &str, filter: &str) -> f64 {
        let families = self.registry.gather();
        let Some(family) = families.iter().find(|f| f.name() == name) else {
            return 0.0;
        };
        (family.get_metric().iter())
            .filter(|m| {
                let labels: Vec<String> = (m.get_label().iter())
                    .map(|l| format!("{}=\"{}\"", l.name(), l.value()))
                    .collect();
                labels.join(",").contains(filter)
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    }

    /// The names of every metric family the operator exports (those without a series yet too: the
    /// text exposition lists only families with series).
    pub fn families(&self) -> Vec<String> {
        use prometheus::core::Collector;
        let counters = [
            &self.reconciles,
            &self.errors,
            &self.graph_calls,
            &self.throttled,
            &self.delta_rounds,
            &self.delta_changes,
            &self.delta_requeues,
        ];
        let counters = counters.into_iter().flat_map(|c| c.desc());
        let gauges = [
            &self.stalled,
            &self.expiry,
            &self.renewal,
            &self.max_lifetime,
            &self.write_budget,
            &self.delta_last_success,
            &self.delta_watching,
        ]
        .into_iter()
        .flat_map(|g| g.desc());
        counters.chain(gauges).map(|d| d.fq_name.clone()).collect()
    }

    /// The text exposition of every metric, the expiry gauge computed for `now_unix`.
    pub fn render(&self, now_unix: i64) -> String {
        seconds_until(&self.expiry, &self.expiries, now_unix);
        seconds_until(&self.renewal, &self.renewals, now_unix);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Sets `gauge` to the seconds from `now_unix` until each `namespace/name`'s time in `times`.
fn seconds_until(gauge: &GaugeVec, times: &Mutex<BTreeMap<String, i64>>, now_unix: i64) {
    gauge.reset();
    for (key, t) in times.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let (ns, n) = key.split_once('/').unwrap_or(("", key));
        (gauge.with_label_values(&[ns, n])).set((t - now_unix) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.graph_call("upsertApplication", 201);
        m.graph_call("upsertApplication", 429);
        m.error("FhirClientApp", "PermissionDenied");
        m.set_credential_expiry("ns/app", Some(1_000));
        m.set_credential_schedule("ns/app", Some(700), Some(7_776_000));
        m.set_credential_schedule("ns/gone", Some(700), Some(7_776_000));
        m.set_credential_schedule("ns/gone", None, None);
        m.set_stalled("FhirClientApp", "ns/app", Some("PermissionDenied"));
        m.set_stalled(
            "FhirResourceApp",
            "ns/fixed",
            Some("HostNameNotOnVerifiedDomain"),
        );
        m.set_stalled("FhirResourceApp", "ns/fixed", None);
        m.set_stalled("FhirClientApp", "ns/other", Some("PermissionDenied"));
        m.set_stalled("FhirClientApp", "ns/other", Some("SecretNotOwned"));
        let t = m.render(400);
        assert!(t.contains(
            "fhir_operator_stalled{kind=\"FhirClientApp\",name=\"app\",namespace=\"ns\",reason=\"PermissionDenied\"} 1\n"
        ), "{t}");
        assert!(!t.contains("name=\"fixed\""), "{t}");
        assert_eq!(
            t.matches("name=\"other\"").count(),
            1,
            "a new reason replaces the old: {t}"
        );
        assert!(
            t.contains("name=\"other\",namespace=\"ns\",reason=\"SecretNotOwned\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("fhir_operator_graph_calls_total{operation=\"upsertApplication\",status=\"201\"} 1\n"), "{t}");
        assert!(
            t.contains("fhir_operator_graph_throttled_total{operation=\"upsertApplication\"} 1\n")
        );
        assert!(t.contains(
            "fhir_operator_errors_total{category=\"PermissionDenied\",kind=\"FhirClientApp\"} 1\n"
        ));
        assert!(t.contains(
            "fhir_operator_credential_expiry_seconds{name=\"app\",namespace=\"ns\"} 600\n"
        ));
        assert!(t.contains(
            "fhir_operator_credential_renewal_seconds{name=\"app\",namespace=\"ns\"} 300\n"
        ));
        assert!(t.contains(
            "fhir_operator_credential_max_lifetime_seconds{name=\"app\",namespace=\"ns\"} 7776000\n"
        ));
        assert!(!t.contains("name=\"gone\""), "{t}");
        assert_eq!(
            m.counter_sum("fhir_operator_graph_calls_total", "upsertApplication"),
            2.0
        );
    }
}
