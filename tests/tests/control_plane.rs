//! The local control plane behaves like a real cluster: CRDs are established and validated
//! server-side, watches deliver events, the garbage collector and namespace controller run,
//! and RBAC is enforced.

use fhir_app_operator_tests::{TestNamespace, kube_client};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams, ResourceExt};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A throw-away kind, only for proving the API server's CRD machinery.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "testing.fhirapps.io",
    version = "v1",
    kind = "Widget",
    namespaced
)]
struct WidgetSpec {
    /// How many; the API server refuses anything below 1.
    #[schemars(range(min = 1))]
    size: i32,
}

async fn install_widget_crd(client: &kube::Client) {
    let within = Duration::from_secs(30);
    testenv::crds::install_crd(client, &Widget::crd(), "fhir-app-operator-tests", within)
        .await
        .expect("CRD applied and established within 30 s");
}

#[tokio::test]
async fn crd_is_established_watched_and_validated_server_side() {
    let client = kube_client().await;
    install_widget_crd(&client).await;
    let ns = TestNamespace::new(&client, "crd").await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), &ns.name);

    let mut events = watcher(widgets.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("small", WidgetSpec { size: 3 }),
        )
        .await
        .expect("create widget");
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(w) = events.try_next().await.expect("watch stream") {
            if w.name_any() == "small" {
                return w;
            }
        }
        panic!("watch ended")
    })
    .await
    .expect("watcher saw the widget within 20 s");
    assert_eq!(seen.spec.size, 3);

    let err = widgets
        .create(
            &PostParams::default(),
            &Widget::new("empty", WidgetSpec { size: 0 }),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("spec.size"),
                "message names the field: {}",
                status.message
            );
            assert!(
                status.message.contains("greater than or equal to 1"),
                "message says the rule: {}",
                status.message
            );
        }
        other => panic!("expected a validation error from the API server, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() {
    let client = kube_client().await;
    let ns = TestNamespace::new(&client, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", None))
        .await
        .unwrap();
    let owner_ref = serde_json::json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(), "uid": owner.uid().unwrap()
    }]);
    cms.create(
        &PostParams::default(),
        &config_map("dependent", Some(owner_ref)),
    )
    .await
    .unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        while cms.get_opt("dependent").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("kube-controller-manager's garbage collector removed the dependent within 60 s");
}

#[tokio::test]
async fn namespace_deletion_removes_its_contents() {
    let client = kube_client().await;
    let name = format!("nsdel-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(&PostParams::default(), &config_map("x", None))
        .await
        .unwrap();
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        while namespaces.get_opt(&name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("namespace controller finalized the namespace within 60 s");
}

#[tokio::test]
async fn rbac_refuses_an_unprivileged_user() {
    let client = kube_client().await;
    let ns = TestNamespace::new(&client, "rbac").await;
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some("someone-without-roles".into());
    let nobody = kube::Client::try_from(config).unwrap();
    let err = Api::<ConfigMap>::namespaced(nobody, &ns.name)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "expected 403 Forbidden, got {err:?}"
    );
}

fn config_map(name: &str, owner_references: Option<serde_json::Value>) -> ConfigMap {
    let mut meta = serde_json::json!({ "name": name });
    if let Some(refs) = owner_references {
        meta["ownerReferences"] = refs;
    }
    serde_json::from_value(serde_json::json!({ "metadata": meta, "data": { "k": "v" } })).unwrap()
}
