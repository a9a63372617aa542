//! The Helm chart installs into a real API server, its CRD templates are current with crds/, and
//! its RBAC is enough for the operator: the operator runs as the chart's ServiceAccount
//! (impersonated, not cluster-admin) and reconciles apps to Ready, while a verb the chart does not
//! grant is refused.

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{Harness, client_app, full_permissions, resource_app};
use fhir_app_operator_tests::{helm, repo_root as root, run_in_repo as run};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const CHART: &str = "charts/fhir-app-operator";
const T: Duration = Duration::from_secs(60);

#[test]
fn chart_lints_and_its_crd_templates_are_current() {
    run(Command::new(helm()).args(["lint", "--strict", CHART]));
    let fresh = tempfile::tempdir().unwrap();
    run(Command::new("bash")
        .arg("hack/helm/sync-crds.sh")
        .arg(fresh.path()));
    for entry in std::fs::read_dir(fresh.path()).unwrap() {
        let entry = entry.unwrap();
        let committed = root()
            .join(CHART)
            .join("templates/crds")
            .join(entry.file_name());
        assert!(
            std::fs::read_to_string(entry.path()).unwrap()
                == std::fs::read_to_string(&committed).unwrap_or_default(),
            "{} is stale: run hack/helm/sync-crds.sh",
            committed.display()
        );
    }
    // values.schema.json turns a typo into an error instead of a silently ignored value.
    let typo = Command::new(helm())
        .args(["template", "t", CHART, "--set", "replicaCountt=2"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!typo.status.success(), "a misspelt value must fail");
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("replicaCountt"),
        "the error names the key"
    );
    // The rendered CRDs carry the keep policy, so `helm uninstall` never deletes users' resources.
    let rendered = run(Command::new(helm()).args(["template", "t", CHART]));
    assert_eq!(
        rendered.matches("kind: CustomResourceDefinition").count(),
        2
    );
    assert!(rendered.contains("helm.sh/resource-policy: keep"));
    let without =
        run(Command::new(helm()).args(["template", "t", CHART, "--set", "crds.enabled=false"]));
    assert!(!without.contains("kind: CustomResourceDefinition"));
}

#[tokio::test]
async fn operator_running_as_the_charts_service_account_reconciles_and_nothing_more() {
    let mut h = Harness::with_emulator("chart", |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        cfg.tenants[0].groups = vec![entra_emulator::GroupConfig {
            display_name: "fhir-readers".into(),
            object_id: None,
        }];
    })
    .await;
    let ns = h.ns.name.clone();
    // Namespace-scoped mode (Roles in the watched namespace only); the CRDs are already installed.
    run(Command::new(helm())
        .args([
            "install",
            "fao",
            CHART,
            "--namespace",
            &ns,
            "--set",
            "crds.enabled=false",
        ])
        .args([
            "--set",
            &format!("watchNamespaces={{{ns}}}"),
            "--set",
            "azure.existingSecret=operator-credentials",
        ]));

    let deploy: Deployment = Api::namespaced(h.client.clone(), &ns)
        .get("fao-fhir-app-operator")
        .await
        .unwrap();
    let pod = deploy.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.unwrap().drop.unwrap(),
        vec!["ALL".to_string()]
    );
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    assert!(
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .is_some(),
        "resource limits set"
    );
    assert!(c.liveness_probe.is_some() && c.readiness_probe.is_some());
    // Every variable the chart sets is one the operator reads, and the probes hit its HTTP address.
    let config_rs = std::fs::read_to_string(root().join("operator/src/config.rs")).unwrap();
    for env in c.env.iter().flatten() {
        let known = ["RUST_LOG", "POD_NAME"].contains(&env.name.as_str())
            || config_rs.contains(&format!("env = \"{}\"", env.name));
        assert!(
            known,
            "the chart sets {} but the operator does not read it",
            env.name
        );
    }
    let http_addr = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "FHIR_OP_HTTP_ADDR")
        .and_then(|e| e.value.clone())
        .unwrap();
    let probe_port = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
        .clone();
    let probe_port = match probe_port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .unwrap()
                .container_port
        }
    };
    assert!(
        http_addr.ends_with(&format!(":{probe_port}")),
        "probes use port {probe_port}, the operator serves {http_addr}"
    );
    let sa = pod
        .service_account_name
        .expect("pod runs as the chart's ServiceAccount");

    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{sa}"));
    let as_sa = kube::Client::try_from(config).unwrap();

    h.start_operator_as(as_sa.clone(), h.config()).await;
    // The access policy (issue 18) needs no rule of its own: a privileged role given by a rule, and a
    // group assigned a role, work with the chart's verbs.
    let (_, groups) = h.graph(reqwest::Method::GET, "/groups", None).await;
    let group = groups["value"][0]["id"]
        .as_str()
        .expect("a group")
        .to_string();
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example",
               "accessPolicy": {"rules": [{"namespaces": [ns], "appRoles": ["globalAdmin"]}]},
               "appRoleAssignments": [{"principalType": "Group", "principalId": group, "appRole": "globalReader"}]}),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "etl",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
               "roles": ["globalReader", "globalAdmin"], "assignAppRoles": true}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let secret: Secret = Api::namespaced(h.client.clone(), &ns)
        .get("etl-fhir-client")
        .await
        .unwrap();
    assert!(secret.data.unwrap().contains_key("AZURE_CLIENT_SECRET"));
    // Deletion (finalizer removal) works with the chart's verbs too.
    h.delete::<FhirClientApp>("etl").await.unwrap();
    h.eventually("client app deleted", T, || {
        let api: Api<FhirClientApp> = h.api();
        async move {
            match api.get_opt("etl").await {
                Ok(None) => Ok(Some(())),
                Ok(Some(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
    h.stop_operator().await;

    // Verbs the chart does not grant are refused.
    let forbidden =
        |r: Result<(), kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    let pods: Api<Pod> = Api::namespaced(as_sa.clone(), &ns);
    assert!(
        forbidden(
            pods.delete_collection(&Default::default(), &Default::default())
                .await
                .map(|_| ())
        ),
        "deleting pods is refused"
    );
    let elsewhere: Api<Secret> = Api::namespaced(as_sa.clone(), "default");
    assert!(
        forbidden(elsewhere.list(&Default::default()).await.map(|_| ())),
        "Secrets outside the watched namespaces are refused"
    );
    let crs: Api<FhirClientApp> = Api::namespaced(as_sa, &ns);
    assert!(
        forbidden(
            crs.delete("anything", &DeleteParams::default())
                .await
                .map(|_| ())
        ),
        "the operator cannot delete users' resources"
    );
}
