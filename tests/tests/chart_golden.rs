//! `helm template` golden files: what the chart renders for representative value sets is reviewed in
//! `charts/fhir-app-operator/golden/`, so a change to a template shows up as a diff in review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p fhir-app-operator-tests --test chart_golden`.

use fhir_app_operator_tests::{helm, repo_root as root};
use std::process::Command;

/// (golden file, `--set` arguments). The CRDs are left out: `chart_install` checks them against `crds/`.
const CASES: &[(&str, &[&str])] = &[
    (
        "defaults.yaml",
        &["azure.existingSecret=fhir-operator-credentials"],
    ),
    (
        "namespace-scoped.yaml",
        &[
            "azure.existingSecret=fhir-operator-credentials",
            "watchNamespaces={fhir}",
        ],
    ),
    (
        "workload-identity-ha.yaml",
        &[
            "azure.workloadIdentity.enabled=true",
            "azure.workloadIdentity.clientId=11111111-1111-1111-1111-111111111111",
            "azure.workloadIdentity.tenantId=22222222-2222-2222-2222-222222222222",
            "replicaCount=2",
            "metrics.serviceMonitor.enabled=true",
            "clusterName=aks-prod",
        ],
    ),
    (
        "observability.yaml",
        &[
            "azure.existingSecret=fhir-operator-credentials",
            "metrics.serviceMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.labels.release=kube-prometheus-stack",
            "metrics.grafanaDashboard.enabled=true",
            "metrics.grafanaDashboard.annotations.grafana_folder=FHIR",
        ],
    ),
    (
        "certificate-extra-ca.yaml",
        &[
            "azure.tenantId=22222222-2222-2222-2222-222222222222",
            "azure.clientId=11111111-1111-1111-1111-111111111111",
            "azure.certificate.existingSecret=fhir-operator-cert",
            "azure.extraCA.configMap=corporate-ca",
            "azure.graphUrl=https://graph.microsoft.us/v1.0",
            "azure.authorityHost=https://login.microsoftonline.us/",
        ],
    ),
];

fn render(sets: &[&str]) -> String {
    let mut cmd = Command::new(helm());
    cmd.current_dir(root()).args([
        "template",
        "fhir-app-operator",
        "charts/fhir-app-operator",
        "--namespace",
        "fhir-app-operator",
        "--set",
        "crds.enabled=false",
        "--set",
        "image.tag=0.1.0",
    ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn helm_template_matches_the_golden_files() {
    let dir = root().join("charts/fhir-app-operator/golden");
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = vec![];
    for (file, sets) in CASES {
        let got = render(sets);
        assert_eq!(got, render(sets), "{file}: rendering is not deterministic");
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "--- golden/{file}\n+++ rendered\n{}",
                diff(&want, &got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended: UPDATE_GOLDEN=1 cargo test -p fhir-app-operator-tests --test chart_golden",
        failures.join("\n")
    );
}

/// A unified-style line diff (`-` golden, `+` rendered, 2 lines of context), at most 60 lines.
fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, vec![]);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|o| o.0 != ' ')
    };
    let mut out = vec![];
    for (k, (op, line, text)) in ops.iter().enumerate() {
        if near(k) {
            if k == 0 || !near(k - 1) {
                out.push(format!("@@ golden line {line} @@"));
            }
            out.push(format!("{op}{text}"));
        }
    }
    if out.is_empty() {
        out.push("(only the final newline differs)".into());
    }
    out.truncate(60);
    out.join("\n")
}
