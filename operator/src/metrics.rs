//! Prometheus metrics, rendered in the text exposition format (no extra dependency).

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default, Debug)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), f64>>,
    /// credential expiry (unix seconds) by `namespace/name`
    expiries: Mutex<BTreeMap<String, i64>>,
    /// Stalled objects: (kind, `namespace/name`) → the Stalled condition's reason
    stalled: Mutex<BTreeMap<(String, String), String>>,
}

const HELP: [(&str, &str, &str); 6] = [
    (
        "fhir_operator_reconciles_total",
        "counter",
        "Reconciles by kind and result.",
    ),
    (
        "fhir_operator_errors_total",
        "counter",
        "Reconcile errors by kind and category.",
    ),
    (
        "fhir_operator_graph_calls_total",
        "counter",
        "Microsoft Graph and token calls by operation and HTTP status.",
    ),
    (
        "fhir_operator_graph_throttled_total",
        "counter",
        "Graph responses 429/503 that asked us to wait.",
    ),
    (
        "fhir_operator_credential_expiry_seconds",
        "gauge",
        "Seconds until each client's current credential expires.",
    ),
    (
        "fhir_operator_stalled",
        "gauge",
        "1 for each resource whose Stalled condition is True (a permanent error that needs a human).",
    ),
];

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn inc(&self, name: &'static str, labels: String) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((name, labels))
            .or_default() += 1.0;
    }
    pub fn reconcile(&self, kind: &str, result: &str) {
        self.inc(
            "fhir_operator_reconciles_total",
            format!("kind=\"{}\",result=\"{}\"", esc(kind), esc(result)),
        );
    }
    pub fn error(&self, kind: &str, category: &str) {
        self.inc(
            "fhir_operator_errors_total",
            format!("kind=\"{}\",category=\"{}\"", esc(kind), esc(category)),
        );
    }
    pub fn graph_call(&self, operation: &str, status: u16) {
        self.inc(
            "fhir_operator_graph_calls_total",
            format!("operation=\"{}\",status=\"{status}\"", esc(operation)),
        );
        if status == 429 || status == 503 {
            self.inc(
                "fhir_operator_graph_throttled_total",
                format!("operation=\"{}\"", esc(operation)),
            );
        }
    }
    pub fn set_credential_expiry(&self, key: &str, unix: Option<i64>) {
        let mut e = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        match unix {
            Some(t) => e.insert(key.to_string(), t),
            None => e.remove(key),
        };
    }
    /// Records whether `kind` `namespace/name` is Stalled (with the condition's reason) or not.
    pub fn set_stalled(&self, kind: &str, key: &str, reason: Option<&str>) {
        let mut s = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        let k = (kind.to_string(), key.to_string());
        match reason {
            Some(r) => s.insert(k, r.to_string()),
            None => s.remove(&k),
        };
    }
    /// Sum of a counter over all label sets whose labels contain `filter`.
    pub fn counter_sum(&self, name: &str, filter: &str) -> f64 {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((n, l), _)| *n == name && l.contains(filter))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn render(&self, now_unix: i64) -> String {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, ty, help) in HELP {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {ty}\n"));
            if name == "fhir_operator_credential_expiry_seconds" {
                for (key, t) in self
                    .expiries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    let (ns, n) = key.split_once('/').unwrap_or(("", key));
                    out.push_str(&format!(
                        "{name}{{namespace=\"{}\",name=\"{}\"}} {}\n",
                        esc(ns),
                        esc(n),
                        t - now_unix
                    ));
                }
                continue;
            }
            if name == "fhir_operator_stalled" {
                for ((kind, key), reason) in self
                    .stalled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    let (ns, n) = key.split_once('/').unwrap_or(("", key));
                    out.push_str(&format!(
                        "{name}{{kind=\"{}\",namespace=\"{}\",name=\"{}\",reason=\"{}\"}} 1\n",
                        esc(kind),
                        esc(ns),
                        esc(n),
                        esc(reason)
                    ));
                }
                continue;
            }
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| *n == name) {
                out.push_str(&format!("{n}{{{labels}}} {v}\n"));
            }
        }
        out
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
        m.set_stalled("FhirClientApp", "ns/app", Some("PermissionDenied"));
        m.set_stalled(
            "FhirResourceApp",
            "ns/fixed",
            Some("HostNameNotOnVerifiedDomain"),
        );
        m.set_stalled("FhirResourceApp", "ns/fixed", None);
        let t = m.render(400);
        assert!(t.contains(
            "fhir_operator_stalled{kind=\"FhirClientApp\",namespace=\"ns\",name=\"app\",reason=\"PermissionDenied\"} 1\n"
        ), "{t}");
        assert!(!t.contains("name=\"fixed\""), "{t}");
        assert!(t.contains("fhir_operator_graph_calls_total{operation=\"upsertApplication\",status=\"201\"} 1\n"), "{t}");
        assert!(
            t.contains("fhir_operator_graph_throttled_total{operation=\"upsertApplication\"} 1\n")
        );
        assert!(t.contains(
            "fhir_operator_errors_total{kind=\"FhirClientApp\",category=\"PermissionDenied\"} 1\n"
        ));
        assert!(t.contains(
            "fhir_operator_credential_expiry_seconds{namespace=\"ns\",name=\"app\"} 600\n"
        ));
        assert_eq!(
            m.counter_sum("fhir_operator_graph_calls_total", "upsertApplication"),
            2.0
        );
    }
}
