//! The chart's Prometheus pieces judged by Prometheus's own tool and by the operator's live /metrics:
//! the PrometheusRule (`metrics.prometheusRule.enabled`) passes `promtool check rules` and the unit
//! tests in deploy/prometheus/alerts_test.yaml (`promtool test rules`; promtool built from the Go
//! module proxy by hack/promtool/build.sh), and every query of the rules and of the Grafana dashboard
//! (`metrics.grafanaDashboard.enabled`) names only metrics a running operator really exports.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use fhir_app_operator::api::FhirResourceApp;
use fhir_app_operator_tests::operator::{Harness, full_permissions, resource_app};
use fhir_app_operator_tests::{helm, promtool, repo_root as root, run_in_repo as run};
use serde_json::{Value, json};

/// The chart rendered with the rule and the dashboard on, for release fhir-app-operator in namespace
/// fhir-app-operator (what alerts_test.yaml assumes); one document per template.
fn rendered(template: &str) -> Value {
    let text = run(Command::new(helm()).args([
        "template",
        "fhir-app-operator",
        "charts/fhir-app-operator",
        "--namespace",
        "fhir-app-operator",
        "--set",
        "crds.enabled=false",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--show-only",
        template,
    ]));
    serde_yaml::from_str(&text).unwrap()
}

fn rules() -> Value {
    rendered("templates/prometheusrule.yaml")["spec"].clone()
}

fn dashboard() -> Value {
    let cm = rendered("templates/grafana-dashboard.yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let text = cm["data"]["fhir-app-operator.json"].as_str().unwrap();
    let from_file: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("charts/fhir-app-operator/files/dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    let dash: Value = serde_json::from_str(text).unwrap();
    assert_eq!(dash, from_file);
    dash
}

#[test]
fn prometheus_rule_passes_promtool_check_and_its_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(&rules()).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        root().join("deploy/prometheus/alerts_test.yaml"),
        dir.path().join("alerts_test.yaml"),
    )
    .unwrap();
    let check = run(Command::new(promtool())
        .args(["check", "rules"])
        .arg(dir.path().join("rules.yaml")));
    println!("{check}");
    assert!(check.contains("SUCCESS: 4 rules found"), "{check}");
    // rule_files in the test file are relative to the test file.
    let test = run(Command::new(promtool())
        .args(["test", "rules"])
        .arg(dir.path().join("alerts_test.yaml")));
    println!("{test}");
    // Every alert has a unit test.
    let tests = std::fs::read_to_string(dir.path().join("alerts_test.yaml")).unwrap();
    for rule in rules()["groups"][0]["rules"].as_array().unwrap() {
        let alert = rule["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no test in deploy/prometheus/alerts_test.yaml"
        );
    }
}

/// Metric names in a PromQL expression: identifiers followed by a `{` selector. Every metric in the
/// rules and the dashboard is written with a selector, so a bare `fhir_` name is an error too.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let starts = (c.is_ascii_alphabetic() || c == '_' || c == ':')
            && (i == 0
                || !(bytes[i - 1] as char).is_ascii_alphanumeric()
                    && bytes[i - 1] != b'_'
                    && bytes[i - 1] != b'$');
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
        {
            i += 1;
        }
        let ident = &expr[start..i];
        if bytes.get(i) == Some(&b'{') {
            names.insert(ident.to_string());
        } else {
            assert!(
                !ident.starts_with("fhir_"),
                "{ident} without a selector in {expr}"
            );
        }
    }
    names
}

fn dashboard_exprs(dash: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_metrics_the_operator_exports() {
    let mut h = Harness::new("prom-metrics", full_permissions()).await;
    let (cfg, port) = h.config_with_http();
    h.start_operator(cfg).await;
    // One Ready and one Stalled resource, so the labelled series exist as well as their TYPE lines.
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.apply::<FhirResourceApp>(resource_app(
        "bad",
        json!({"fhirUrl": "https://fhir.clinic.example"}),
    ))
    .await
    .unwrap();
    let t = Duration::from_secs(60);
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", t)
        .await;
    h.wait_condition::<FhirResourceApp>("bad", "Stalled", "True", t)
        .await;
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    h.stop_operator().await;
    // What the endpoint lists (families with a series) and what the operator declares (a family
    // without a series yet, such as credential expiry before any client, is not listed).
    let mut exported: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let declared = fhir_app_operator::metrics::Metrics::default().families();
    assert!(
        exported.iter().all(|m| declared.contains(m)),
        "{exported:?} not all in {declared:?}"
    );
    exported.extend(declared);
    println!("exported: {exported:?}");
    assert!(
        body.contains(&format!(
            "fhir_operator_stalled{{kind=\"FhirResourceApp\",name=\"bad\",namespace=\"{}\",reason=\"HostNameNotOnVerifiedDomain\"}} 1",
            h.ns.name
        )),
        "{body}"
    );
    // `up` is Prometheus's own, per scrape target.
    let known = |m: &String| exported.contains(m) || m == "up";
    let dash = dashboard();
    let mut queried = BTreeSet::new();
    for expr in dashboard_exprs(&dash) {
        for m in metric_names(&expr) {
            assert!(
                known(&m),
                "the dashboard queries {m}, which the operator does not export: {expr}"
            );
            queried.insert(m);
        }
    }
    for rule in rules()["groups"][0]["rules"].as_array().unwrap() {
        let expr = rule["expr"].as_str().unwrap();
        for m in metric_names(expr) {
            assert!(
                known(&m),
                "alert {} queries {m}, which the operator does not export",
                rule["alert"]
            );
        }
    }
    // And the dashboard shows every metric there is.
    for m in &exported {
        assert!(queried.contains(m), "the dashboard has no panel for {m}");
    }
}

#[test]
fn metric_names_reads_selectors_only() {
    assert_eq!(
        metric_names(
            r#"sum by (kind) (rate(fhir_operator_errors_total{job=~"$job"}[$__rate_interval])) > 0 and on() up{a="b"}"#
        ),
        ["fhir_operator_errors_total", "up"]
            .map(String::from)
            .into()
    );
}
