//! `helm template` golden files: what the chart renders for representative value sets is reviewed in
//! `charts/fhir-app-operator/golden/`, so a change to a template shows up as a diff in review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p fhir-app-operator-tests --test chart_golden`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helm() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("hack/helm/build.sh"))
        .output()
        .expect("run hack/helm/build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim(),
    )
}

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
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{file} differs from line {}:\n  rendered: {:?}\n  golden:   {:?}",
                first + 1,
                got.lines().nth(first).unwrap_or("<end>"),
                want.lines().nth(first).unwrap_or("<end>")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended: UPDATE_GOLDEN=1 cargo test -p fhir-app-operator-tests --test chart_golden",
        failures.join("\n")
    );
}
