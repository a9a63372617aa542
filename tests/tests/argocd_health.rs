//! The Argo CD health check (deploy/argocd/health.lua) judged by Argo CD's own health-script runtime
//! (github.com/argoproj/argo-cd/v3 util/lua, the code the application controller runs; built from
//! the Go module proxy by hack/judges/build.sh) against the status fixtures in deploy/argocd/testdata,
//! as listed with their expected results in deploy/argocd/health_test.yaml (Argo CD's own test
//! format). Needs no cluster; the live objects are judged in tests/tests/ecosystem_status.rs.

use fhir_app_operator_tests::judges;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn health_check_matches_every_fixture_in_argocds_runtime() {
    let base = repo().join("deploy/argocd");
    let cases =
        judges::argocd_health_suite(&base.join("health.lua"), &base.join("health_test.yaml"));
    assert!(
        cases.len() >= 10,
        "expected the full fixture set, got {}",
        cases.len()
    );
    let mut statuses = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        println!("{}: {} — {}", case.input_path, case.got.0, case.got.1);
        statuses.insert(case.got.0.clone());
        if case.got != case.want {
            failures.push(format!(
                "{}: want {:?}, got {:?}",
                case.input_path, case.want, case.got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "health check mismatches:\n{}",
        failures.join("\n")
    );
    for s in ["Healthy", "Progressing", "Degraded"] {
        assert!(statuses.contains(s), "no fixture yields {s}");
    }
}

/// The application controller does not run a customization for an object being deleted:
/// gitops-engine's GetResourceHealth answers "Pending deletion; blocked by finalizers: …" first. Every other fixture gets the
/// script's own answer.
#[test]
fn the_controller_shows_the_scripts_answer_except_while_deleting() {
    let base = repo().join("deploy/argocd");
    let script = base.join("health.lua");
    for entry in std::fs::read_dir(base.join("testdata")).unwrap() {
        let path = entry.unwrap().path();
        let obj: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let judged = judges::argocd_health(&script, &obj);
        let name = path.file_name().unwrap().to_str().unwrap();
        println!("{name}: controller {:?}", judged.controller);
        if obj["metadata"]["deletionTimestamp"].is_null() {
            assert_eq!(judged.controller, judged.script, "{name}");
        } else {
            assert_eq!(judged.controller.0, "Progressing", "{name}");
            assert!(
                judged.controller.1.starts_with("Pending deletion"),
                "{name}: {:?}",
                judged.controller
            );
        }
    }
}

#[test]
fn every_fixture_is_listed_in_health_test_yaml() {
    let base = repo().join("deploy/argocd");
    let listed = std::fs::read_to_string(base.join("health_test.yaml")).unwrap();
    for entry in std::fs::read_dir(base.join("testdata")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            listed.contains(&format!("testdata/{name}")),
            "testdata/{name} is not in health_test.yaml"
        );
    }
}

#[test]
fn argocd_cm_snippet_carries_the_script_for_both_kinds() {
    let base = repo().join("deploy/argocd");
    let script = std::fs::read_to_string(base.join("health.lua")).unwrap();
    let cm: Value =
        serde_yaml::from_str(&std::fs::read_to_string(base.join("argocd-cm-health.yaml")).unwrap())
            .unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    for kind in ["FhirResourceApp", "FhirClientApp"] {
        let key = format!("resource.customizations.health.fhirapps.io_{kind}");
        assert_eq!(
            cm["data"][&key].as_str(),
            Some(script.as_str()),
            "{key} differs from health.lua"
        );
    }
    // The docs show the same snippet.
    let docs = std::fs::read_to_string(repo().join("docs/argocd.md")).unwrap();
    assert!(docs.contains("resource.customizations.health.fhirapps.io_FhirClientApp"));
    assert!(
        docs.contains(
            script
                .lines()
                .find(|l| l.contains("Stalled=True"))
                .unwrap()
                .trim()
        )
    );
}
