//! Live objects judged by the ecosystem's own code at every stage of their life: Argo CD's health
//! runtime (argo-cd/v3 util/lua with deploy/argocd/health.lua, both the script alone and what the
//! application controller shows), kstatus (sigs.k8s.io/cli-utils), and Flux (its kstatus fork, what
//! `wait` and `healthChecks` use, and its CEL evaluator on the `healthCheckExprs` of
//! deploy/flux/kustomization.yaml). The stages: waiting (Reconciling), Ready, no status yet, spec
//! changed but not yet observed, Stalled, fixed, deleting.

use std::path::PathBuf;
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::judges::{self, Health};
use fhir_app_operator_tests::operator::{Harness, client_app, condition, resource_app};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    fhir_app_operator_tests::repo_root().join("deploy/argocd/health.lua")
}

/// What each judge says of one live object.
#[derive(Debug, PartialEq)]
struct Verdict {
    argocd_script: Health,
    argocd_controller: Health,
    kstatus: String,
    /// Flux: (its kstatus fork, the healthCheckExprs).
    flux: (String, String),
}

async fn judge<K>(api: &Api<K>, name: &str, stage: &str) -> (Verdict, Value)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
    let argo = judges::argocd_health(&script(), &obj);
    let (kstatus, kmessage) = judges::kstatus(&obj);
    let (flux_kstatus, flux_exprs) = judges::flux_health(&obj);
    println!(
        "{stage:<28} {name:<8} argocd script {:?} | argocd controller {:?} | kstatus {kstatus} ({kmessage}) | flux {} / healthCheckExprs {:?}",
        argo.script, argo.controller, flux_kstatus.0, flux_exprs
    );
    (
        Verdict {
            argocd_script: argo.script,
            argocd_controller: argo.controller,
            kstatus,
            flux: (flux_kstatus.0, flux_exprs.0),
        },
        obj,
    )
}

fn h(status: &str, message: &str) -> Health {
    (status.to_string(), message.to_string())
}

fn healthy_current(message: &str) -> Verdict {
    Verdict {
        argocd_script: h("Healthy", message),
        argocd_controller: h("Healthy", message),
        kstatus: "Current".into(),
        flux: ("Current".into(), "Current".into()),
    }
}

fn progressing(message: &str) -> Verdict {
    Verdict {
        argocd_script: h("Progressing", message),
        argocd_controller: h("Progressing", message),
        kstatus: "InProgress".into(),
        flux: ("InProgress".into(), "InProgress".into()),
    }
}

#[tokio::test]
async fn argocd_and_kstatus_judge_live_objects_at_every_stage() {
    let mut hs = Harness::with_resource_app("judges").await;
    let clients = hs.api::<FhirClientApp>();
    let resources = hs.api::<FhirResourceApp>();

    // The resource app the harness made Ready.
    let (v, _) = judge(&resources, "fhir", "ready").await;
    assert_eq!(v.kstatus, "Current");
    assert_eq!(v.flux, ("Current".into(), "Current".into()));
    assert_eq!(v.argocd_controller.0, "Healthy");
    assert_eq!(v.argocd_script, v.argocd_controller);

    // Waiting for a resource app that does not exist yet: Reconciling=True.
    hs.apply::<FhirClientApp>(client_app(
        "waiting",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "later"}}, "roles": ["globalReader"]}),
    ))
    .await
    .unwrap();
    let obj = hs
        .wait_condition::<FhirClientApp>("waiting", "Reconciling", "True", T)
        .await;
    let message = condition(&obj, "Reconciling")["message"]
        .as_str()
        .unwrap()
        .to_string();
    let (v, _) = judge(&clients, "waiting", "waiting (Reconciling)").await;
    assert_eq!(v, progressing(&format!("WaitingForResourceApp: {message}")));

    // A client that becomes Ready.
    hs.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"]}),
    ))
    .await
    .unwrap();
    let obj = hs
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    let ready_message = condition(&obj, "Ready")["message"]
        .as_str()
        .unwrap()
        .to_string();
    let (v, _) = judge(&clients, "svc", "ready").await;
    assert_eq!(v, healthy_current(&ready_message));

    // A spec change the operator has not observed yet (operator stopped, so no race).
    hs.stop_operator().await;
    hs.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader", "globalExporter"]}),
    ))
    .await
    .unwrap();
    let (v, obj) = judge(&clients, "svc", "spec changed, not observed").await;
    let generation = obj["metadata"]["generation"].as_i64().unwrap();
    assert!(generation >= 2);
    assert_eq!(
        v,
        progressing(&format!(
            "Waiting for the operator to observe generation {generation}"
        ))
    );
    // A new object the operator has not seen: kstatus calls it Current (it cannot tell "no status
    // yet" from "no status at all"); Flux's healthCheckExprs cannot be evaluated yet, so Flux waits.
    hs.apply::<FhirClientApp>(client_app(
        "fresh",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"]}),
    ))
    .await
    .unwrap();
    let (v, _) = judge(&clients, "fresh", "no status yet").await;
    assert_eq!(
        v,
        Verdict {
            argocd_script: h("Progressing", "Waiting for the operator to report status"),
            argocd_controller: h("Progressing", "Waiting for the operator to report status"),
            kstatus: "Current".into(),
            flux: ("Current".into(), "Error".into()),
        }
    );
    hs.start_operator(hs.config()).await;
    let obj = hs
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    let (v, _) = judge(&clients, "svc", "ready again").await;
    assert_eq!(
        v,
        healthy_current(condition(&obj, "Ready")["message"].as_str().unwrap())
    );

    // Stalled: an identifier URI on a domain the tenant has not verified.
    hs.apply::<FhirResourceApp>(resource_app(
        "bad",
        json!({"fhirUrl": "https://fhir.clinic.example"}),
    ))
    .await
    .unwrap();
    let obj = hs
        .wait_condition::<FhirResourceApp>("bad", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    let (v, _) = judge(&resources, "bad", "stalled").await;
    let degraded = h(
        "Degraded",
        &format!(
            "{}: {}",
            stalled["reason"].as_str().unwrap(),
            stalled["message"].as_str().unwrap()
        ),
    );
    assert_eq!(
        v,
        Verdict {
            argocd_script: degraded.clone(),
            argocd_controller: degraded,
            kstatus: "Failed".into(),
            flux: ("Failed".into(), "Failed".into()),
        }
    );
    // The fix named in the message: the spec changes and the resource becomes Ready.
    hs.api::<FhirResourceApp>()
        .patch(
            "bad",
            &PatchParams::apply(fhir_app_operator_tests::operator::TEST_MANAGER).force(),
            &Patch::Apply(resource_app(
                "bad",
                json!({"fhirUrl": "https://fhir.clinic.example", "identifierUri": "api://{appId}"}),
            )),
        )
        .await
        .unwrap();
    hs.wait_condition::<FhirResourceApp>("bad", "Ready", "True", T)
        .await;
    let (v, _) = judge(&resources, "bad", "fixed").await;
    assert_eq!(v.kstatus, "Current");
    assert_eq!(v.flux, ("Current".into(), "Current".into()));
    assert_eq!(v.argocd_controller.0, "Healthy");

    // Deleting: the finalizer holds the object while the operator is stopped.
    hs.stop_operator().await;
    hs.delete::<FhirClientApp>("svc").await.unwrap();
    let (v, obj) = judge(&clients, "svc", "deleting").await;
    assert!(!obj["metadata"]["deletionTimestamp"].is_null());
    assert_eq!(
        v.argocd_script,
        h(
            "Progressing",
            "Deleting: the operator is removing the Entra ID application"
        )
    );
    // gitops-engine answers before any customization runs.
    assert_eq!(
        v.argocd_controller,
        h(
            "Progressing",
            &format!(
                "Pending deletion; blocked by finalizers: {}",
                fhir_app_operator::controller::FINALIZER
            )
        )
    );
    assert_eq!(v.kstatus, "Terminating");
    assert_eq!(v.flux, ("Terminating".into(), "InProgress".into()));
    hs.start_operator(hs.config()).await;
    hs.eventually("svc deleted", T, || {
        let clients = clients.clone();
        async move {
            match clients.get_opt("svc").await {
                Ok(None) => Ok(Some(())),
                other => Err(format!("{other:?}").chars().take(200).collect()),
            }
        }
    })
    .await;
    hs.stop_operator().await;
}

/// kstatus (upstream and Flux's fork) and Flux's healthCheckExprs on the status fixtures Argo CD's
/// check is tested with (no cluster needed). An object the operator has not written a status to yet
/// is Current to kstatus: it cannot tell "no status yet" from "a kind without status"; the
/// healthCheckExprs of deploy/flux/kustomization.yaml cannot be evaluated then, so Flux waits.
#[test]
fn kstatus_of_every_status_fixture() {
    let dir = fhir_app_operator_tests::repo_root().join("deploy/argocd/testdata");
    let want = [
        ("deleting.yaml", "Terminating"),
        ("no_status.yaml", "Current"),
        ("not_ready_without_reconciling.yaml", "InProgress"),
        ("ready.yaml", "Current"),
        ("ready_old_generation.yaml", "InProgress"),
        ("ready_without_message.yaml", "Current"),
        ("reconciling.yaml", "InProgress"),
        ("stalled_old_generation.yaml", "InProgress"),
        ("stalled_permission_denied.yaml", "Failed"),
        ("stalled_unverified_domain.yaml", "Failed"),
        ("waiting_for_resource_app.yaml", "InProgress"),
    ];
    let mut listed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        want.iter().map(|(f, _)| f.to_string()).collect::<Vec<_>>(),
        "every fixture has its kstatus here"
    );
    for (file, status) in want {
        let obj: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let (got, message) = judges::kstatus(&obj);
        let (flux_kstatus, flux_exprs) = judges::flux_health(&obj);
        println!(
            "{file}: {got} ({message}); flux {} / healthCheckExprs {:?}",
            flux_kstatus.0, flux_exprs
        );
        assert_eq!(got, status, "{file}: {message}");
        assert_eq!(flux_kstatus.0, status, "{file}: Flux's kstatus fork agrees");
        let exprs = match file {
            "no_status.yaml" => "Error",
            "deleting.yaml" => "InProgress",
            _ => status,
        };
        assert_eq!(flux_exprs.0, exprs, "{file}: {flux_exprs:?}");
    }
}

#[test]
fn docs_flux_shows_the_kustomization_the_tests_evaluate() {
    let root = fhir_app_operator_tests::repo_root();
    let ks = std::fs::read_to_string(root.join("deploy/flux/kustomization.yaml")).unwrap();
    let doc = std::fs::read_to_string(root.join("docs/flux.md")).unwrap();
    assert!(
        doc.contains(&ks),
        "docs/flux.md must show deploy/flux/kustomization.yaml as it is"
    );
    let k: Value = serde_yaml::from_str(&ks).unwrap();
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(k["spec"]["wait"], true);
    let kinds: Vec<&str> = k["spec"]["healthCheckExprs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["FhirResourceApp", "FhirClientApp"]);
}
