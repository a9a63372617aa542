//! Day-2 behaviour: Secrets restored, drift corrected, rotation with overlap, deletion policies,
//! crash/restart without duplicates, managed-FHIR targets, and the Graph cost of a client.

use std::time::{Duration, Instant};

use fhir_app_operator::api::FhirClientApp;
use fhir_app_operator_tests::operator::{
    Harness, client_app, condition, full_permissions, secret_data, service_spec as service,
};
use k8s_openapi::api::core::v1::Secret;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

async fn app_by_app_id(h: &Harness, app_id: &str) -> (u16, Value) {
    h.graph(
        Method::GET,
        &format!("/applications(appId='{app_id}')"),
        None,
    )
    .await
}

fn key_ids(app: &Value) -> Vec<String> {
    app["passwordCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["keyId"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn a_secret_deleted_by_a_user_is_restored_with_a_fresh_credential_and_the_old_one_pruned() {
    let mut h = Harness::with_resource_app("op-secret").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    let old = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    let old_key = obj["status"]["credential"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();

    h.api::<Secret>()
        .delete("etl-fhir-client", &Default::default())
        .await
        .unwrap();
    let new = h
        .eventually("Secret restored", T, || {
            let h = &h;
            async move { Ok::<_, String>(secret_data(&h.client, &h.ns.name, "etl-fhir-client").await) }
        })
        .await;
    assert_ne!(
        new["AZURE_CLIENT_SECRET"], old["AZURE_CLIENT_SECRET"],
        "the old value is gone, so a new credential"
    );
    assert_eq!(new["AZURE_CLIENT_ID"], old["AZURE_CLIENT_ID"]);
    h.eventually("old credential pruned, exactly one left", T, || {
        let (h, app_id, old_key) = (&h, &app_id, &old_key);
        async move {
            let (_, app) = app_by_app_id(h, app_id).await;
            let keys = key_ids(&app);
            Ok::<_, String>((keys.len() == 1 && !keys.contains(old_key)).then_some(()))
        }
    })
    .await;
    h.eventually("restored Secret works", T, || {
        let (h, new) = (&h, &new);
        async move { h.token_from_secret(new).await.map(Some) }
    })
    .await;

    // An edited value is restored too (with a fresh credential: the operator never stores the value elsewhere).
    let mut edited = Secret::default();
    edited.metadata.name = Some("etl-fhir-client".into());
    let patch = json!({"data": {"AZURE_CLIENT_SECRET": "aGFja2Vk"}});
    h.api::<Secret>()
        .patch(
            "etl-fhir-client",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    h.eventually("edited Secret repaired", T, || {
        let h = &h;
        async move {
            let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
                .await
                .ok_or("no secret")?;
            Ok::<_, String>((d["AZURE_CLIENT_SECRET"] != "hacked").then_some(()))
        }
    })
    .await;
    h.stop_operator().await;
}

#[tokio::test]
async fn drift_in_entra_is_corrected_and_a_deleted_app_is_recreated() {
    let mut h = Harness::with_resource_app_delta_only("op-drift").await;
    h.apply::<FhirClientApp>(client_app("portal", json!({
        "type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}}, "redirectUris": ["https://portal.contoso.example/cb"]
    })))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("portal", "Ready", "True", T)
        .await;
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    let oid = obj["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, body) = h
        .graph(Method::PATCH, &format!("/applications/{oid}"), Some(json!({"displayName": "changed by hand", "web": {"redirectUris": ["https://evil.example/cb"]}})))
        .await;
    assert_eq!(code, 204, "{body}");
    h.eventually("drift corrected", T, || {
        let (h, app_id) = (&h, &app_id);
        async move {
            let (_, app) = app_by_app_id(h, app_id).await;
            let ok = app["displayName"] != "changed by hand"
                && app["web"]["redirectUris"] == json!(["https://portal.contoso.example/cb"]);
            Ok::<_, String>(ok.then_some(()))
        }
    })
    .await;

    // Deleted and purged (a deletion alone is soft: the operator restores it, operator_soft_delete.rs).
    let (code, _) = h
        .graph(Method::DELETE, &format!("/applications/{oid}"), None)
        .await;
    assert_eq!(code, 204);
    h.purge_deleted(&oid).await;
    let obj = h
        .eventually("application recreated", T, || {
            let (h, oid) = (&h, &oid);
            async move {
                let o = h
                    .api::<FhirClientApp>()
                    .get("portal")
                    .await
                    .map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&o).unwrap();
                let new_oid = v["status"]["applicationObjectId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                Ok::<_, String>((new_oid != *oid && !new_oid.is_empty()).then_some(v))
            }
        })
        .await;
    let new_data = h
        .eventually("Secret points at the recreated app", T, || {
            let (h, obj) = (&h, &obj);
            async move {
                let d = secret_data(&h.client, &h.ns.name, "portal-fhir-client")
                    .await
                    .ok_or("no secret")?;
                Ok::<_, String>(
                    (d["AZURE_CLIENT_ID"]
                        == obj["status"]["clientId"].as_str().unwrap_or_default())
                    .then_some(d),
                )
            }
        })
        .await;
    assert!(new_data.contains_key("AZURE_CLIENT_SECRET"));
    let events =
        kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(h.client.clone(), &h.ns.name)
            .list(&Default::default())
            .await
            .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Recreated")),
        "a Recreated event is reported"
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn credentials_rotate_before_expiry_with_overlap() {
    let mut h = Harness::with_resource_app("op-rot").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({
        "credential": {"type": "ClientSecret", "rotation": {"validity": "1h", "renewBefore": "59m54s", "overlap": "3s"}}
    }))))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    let first = obj["status"]["credential"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let first_data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();

    // After ~6 s the credential is within renewBefore: a new one is written, the old stays for the overlap.
    let second = h
        .eventually("rotated", T, || {
            let (h, first) = (&h, &first);
            async move {
                let o = h
                    .api::<FhirClientApp>()
                    .get("etl")
                    .await
                    .map_err(|e| e.to_string())?;
                let k = o
                    .status
                    .and_then(|s| s.credential)
                    .and_then(|c| c.key_id)
                    .unwrap_or_default();
                Ok::<_, String>((k != *first && !k.is_empty()).then_some(k))
            }
        })
        .await;
    let (_, app) = app_by_app_id(&h, &app_id).await;
    let keys = key_ids(&app);
    assert!(keys.contains(&second), "{keys:?}");
    let new_data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert_ne!(
        new_data["AZURE_CLIENT_SECRET"],
        first_data["AZURE_CLIENT_SECRET"]
    );
    // The old credential is removed after the overlap.
    h.eventually("old credential removed after overlap", T, || {
        let (h, app_id, first) = (&h, &app_id, &first);
        async move {
            let (_, app) = app_by_app_id(h, app_id).await;
            Ok::<_, String>((!key_ids(&app).contains(first)).then_some(()))
        }
    })
    .await;
    h.stop_operator().await;
}

#[tokio::test]
async fn orphan_policy_leaves_the_app_and_delete_policy_removes_it() {
    let mut h = Harness::with_resource_app("op-del").await;
    h.apply::<FhirClientApp>(client_app(
        "keep",
        service(json!({"deletionPolicy": "Orphan"})),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "drop",
        service(json!({"deletionPolicy": "Delete"})),
    ))
    .await
    .unwrap();
    let keep = h
        .wait_condition::<FhirClientApp>("keep", "Ready", "True", T)
        .await;
    let drop = h
        .wait_condition::<FhirClientApp>("drop", "Ready", "True", T)
        .await;
    h.delete::<FhirClientApp>("keep").await.unwrap();
    h.delete::<FhirClientApp>("drop").await.unwrap();
    for name in ["keep", "drop"] {
        h.eventually(&format!("{name} gone from Kubernetes"), T, || {
            let h = &h;
            async move {
                Ok::<_, String>(
                    h.api::<FhirClientApp>()
                        .get_opt(name)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_none()
                        .then_some(()),
                )
            }
        })
        .await;
    }
    let (code, _) = app_by_app_id(&h, keep["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(code, 200, "Orphan keeps the application");
    let (code, _) = app_by_app_id(&h, drop["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(code, 404, "Delete removes the application");
    h.stop_operator().await;
}

#[tokio::test]
async fn operator_killed_mid_reconcile_creates_no_duplicate_apps() {
    let mut h = Harness::with_resource_app("op-crash").await;
    let names: Vec<String> = (0..4).map(|i| format!("svc-{i}")).collect();
    for n in &names {
        h.apply::<FhirClientApp>(client_app(n, service(json!({}))))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    h.kill_operator().await;
    h.start_operator(h.config()).await;
    for n in &names {
        h.wait_condition::<FhirClientApp>(n, "Ready", "True", T)
            .await;
    }
    let apps = h.apps_with_unique_name_prefix("fao-c-").await;
    let ours: Vec<&Value> = apps
        .iter()
        .filter(|a| {
            a["uniqueName"]
                .as_str()
                .unwrap()
                .contains(&h.ns.name[..15.min(h.ns.name.len())])
        })
        .collect();
    assert_eq!(
        ours.len(),
        names.len(),
        "exactly one application per client: {:?}",
        ours.iter().map(|a| &a["uniqueName"]).collect::<Vec<_>>()
    );
    // Each app has exactly one operator credential (a credential orphaned by the crash is pruned).
    h.eventually("one credential per app", T, || {
        let h = &h;
        async move {
            let apps = h.apps_with_unique_name_prefix("fao-c-").await;
            let counts: Vec<usize> = apps.iter().map(key_ids).map(|k| k.len()).collect();
            Ok::<_, String>(counts.iter().all(|c| *c == 1).then_some(()))
        }
    })
    .await;
    h.stop_operator().await;
}

#[tokio::test]
async fn clients_of_the_managed_fhir_service() {
    let mut h = Harness::new("op-managed", full_permissions()).await;
    h.start_operator(h.config()).await;
    let target = json!({"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}});
    h.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": target}),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "spa",
        json!({"type": "Public", "target": target, "redirectUris": ["http://localhost:3000"]}),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(client_app("web", json!({"type": "Confidential", "target": target, "redirectUris": ["https://web.contoso.example/cb"]}))).await.unwrap();
    let svc = h
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    assert!(
        svc["status"]["notes"]
            .as_str()
            .unwrap()
            .contains("Azure RBAC"),
        "{}",
        svc["status"]
    );
    let d = secret_data(&h.client, &h.ns.name, "svc-fhir-client")
        .await
        .unwrap();
    // An Azure Health Data Services URL is its own audience (issue 23 item 5), not the retired
    // Azure API for FHIR's generic one.
    let url = "https://ws-fhir.fhir.azurehealthcareapis.com";
    assert_eq!(d["FHIR_AUDIENCE"], url);
    assert_eq!(d["FHIR_SCOPE"], format!("{url}/.default"));
    let spa = h
        .wait_condition::<FhirClientApp>("spa", "Ready", "True", T)
        .await;
    let d = secret_data(&h.client, &h.ns.name, "spa-fhir-client")
        .await
        .unwrap();
    assert!(
        !d.contains_key("AZURE_CLIENT_SECRET"),
        "a public client gets no secret"
    );
    let (_, app) = app_by_app_id(&h, spa["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(app["spa"]["redirectUris"], json!(["http://localhost:3000"]));
    // The permission is the scope the first-party service principal publishes in this tenant.
    let (_, fp) = h
        .graph(
            Method::GET,
            "/servicePrincipals(appId='4f6778d8-5aef-43dc-a1ff-b073724b9495')",
            None,
        )
        .await;
    let scope_id = fp["oauth2PermissionScopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["value"] == "user_impersonation")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        app["requiredResourceAccess"],
        json!([{"resourceAppId": "4f6778d8-5aef-43dc-a1ff-b073724b9495",
                "resourceAccess": [{"id": scope_id, "type": "Scope"}]}])
    );
    assert!(
        key_ids(&app).is_empty(),
        "no password credential on a public client"
    );
    let web = h
        .wait_condition::<FhirClientApp>("web", "Ready", "True", T)
        .await;
    let (_, app) = app_by_app_id(&h, web["status"]["clientId"].as_str().unwrap()).await;
    assert_eq!(
        app["web"]["redirectUris"],
        json!(["https://web.contoso.example/cb"])
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn a_managed_target_without_its_service_principal_in_the_tenant_stalls_with_the_fix() {
    // A tenant where nobody has used Azure Health Data Services yet.
    let mut h = Harness::with_emulator("op-managed-nosp", |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        cfg.tenants[0].healthcare_service_principal = false;
    })
    .await;
    h.start_operator(h.config()).await;
    h.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}}}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("svc", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "ManagedServicePrincipalMissing");
    let message = stalled["message"].as_str().unwrap();
    assert!(
        message.contains("az ad sp create --id 4f6778d8-5aef-43dc-a1ff-b073724b9495"),
        "{message}"
    );
    assert!(
        h.apps_with_unique_name_prefix("").await.is_empty(),
        "nothing registered while it cannot work"
    );
    // An administrator imports the first-party service principal; the next reconcile succeeds.
    let (code, body) = h
        .graph(
            Method::POST,
            "/servicePrincipals",
            Some(json!({"appId": "4f6778d8-5aef-43dc-a1ff-b073724b9495"})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    h.api::<FhirClientApp>()
        .patch(
            "svc",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {"touch": "1"}}})),
        )
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    h.stop_operator().await;
}

/// Measures reconcile time and Graph calls of one client app (printed; run with --nocapture).
#[tokio::test]
async fn measure_graph_calls_of_one_client_app() {
    let mut h = Harness::with_resource_app("op-measure").await;
    let before = h.emu.calls().len();
    let started = Instant::now();
    h.apply::<FhirClientApp>(client_app("etl", service(json!({"assignAppRoles": true}))))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let elapsed = started.elapsed();
    // Let any follow-up reconcile of the create (own Secret/status writes) finish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = h.emu.calls();
    let create: Vec<_> = calls[before..]
        .iter()
        .filter(|c| !c.path.starts_with("/_emulator"))
        .collect();
    let mark = calls.len();
    let rv_before = versions(&h).await;
    // Steady state: resync is 3 s in tests; watch two resyncs.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        versions(&h).await,
        rv_before,
        "steady-state resyncs write neither status nor Secret"
    );
    let metrics = h.metrics.render(0);
    assert!(
        metrics.contains(
            "fhir_operator_graph_calls_total{operation=\"addPassword\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("fhir_operator_credential_expiry_seconds{name="),
        "{metrics}"
    );
    let calls = h.emu.calls();
    let steady: Vec<_> = calls[mark..]
        .iter()
        .filter(|c| !c.path.starts_with("/_emulator"))
        .collect();
    let by_op = |v: &[&entra_emulator::CallRecord]| {
        let mut m = std::collections::BTreeMap::new();
        for c in v {
            *m.entry(format!("{} {}", c.operation, c.status))
                .or_insert(0) += 1;
        }
        m
    };
    println!(
        "MEASURE create→Ready {elapsed:?}; Graph+token calls on create: {} {:?}",
        create.len(),
        by_op(&create)
    );
    println!(
        "MEASURE steady state over 6 s (~2 resyncs of 2 apps): {} {:?}",
        steady.len(),
        by_op(&steady)
    );
    assert!(create.len() < 30, "create stays cheap: {}", create.len());
    h.stop_operator().await;
}

async fn versions(h: &Harness) -> (Option<String>, Option<String>) {
    let c = h.api::<FhirClientApp>().get("etl").await.unwrap();
    let s = h.api::<Secret>().get("etl-fhir-client").await.unwrap();
    (c.metadata.resource_version, s.metadata.resource_version)
}

/// The API server refuses the status write that would say Ready (as when it restarts mid-reconcile):
/// the retry must write it, not skip the reconcile because the Graph side is already done. The
/// failure suite's API-server scenario found a client left `WaitingForResourceApp` this way.
#[tokio::test]
async fn a_refused_ready_status_write_is_retried_until_it_lands() {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    let mut h = Harness::new("op-statusw", full_permissions()).await;
    let name = format!("{}-no-ready-status", h.ns.name);
    // Any FhirClientApp status in this namespace that says Ready=True is refused.
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["fhirapps.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["fhirclientapps/status"]
            }]},
            "validations": [{
                "expression": "!has(object.status) || !has(object.status.conditions) || !object.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
                "message": "test: Ready status refused"
            }]
        }
    }))
    .unwrap();
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": h.ns.name}}}
        }
    }))
    .unwrap();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(h.client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(h.client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The API server loads policies asynchronously: wait until a Ready status is refused.
    let web = json!({"type": "Public", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}},
                     "redirectUris": ["http://localhost:3000/cb"]});
    h.apply::<FhirClientApp>(client_app("probe", web.clone()))
        .await
        .unwrap();
    h.eventually("the policy refuses a Ready status", T, || {
        let h = &h;
        async move {
            let status = json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp", "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Probe", "message": "",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
            let refused = h
                .api::<FhirClientApp>()
                .patch_status("probe", &PatchParams::apply("probe").force(), &Patch::Apply(&status))
                .await
                .is_err();
            Ok::<_, String>(refused.then_some(()))
        }
    })
    .await;
    h.delete::<FhirClientApp>("probe").await.unwrap();

    // A resync far beyond the test's bound: only the error retry can bring the status to Ready.
    let mut cfg = h.config();
    cfg.resync = Duration::from_secs(3600);
    cfg.stalled_retry = Duration::from_secs(5);
    h.start_operator(cfg).await;
    h.apply::<FhirClientApp>(client_app("web", web))
        .await
        .unwrap();
    // The Graph side and the Secret are done; only the status write was refused.
    let secrets: Api<Secret> = h.api();
    h.eventually("the output Secret exists", T, || {
        let secrets = secrets.clone();
        async move {
            let s = secrets
                .get_opt("web-fhir-client")
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(s.map(|_| ()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let web_now = serde_json::to_value(h.api::<FhirClientApp>().get("web").await.unwrap()).unwrap();
    assert_ne!(
        condition(&web_now, "Ready")["status"],
        "True",
        "the policy let a Ready status through: {}",
        web_now["status"]
    );
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    policies
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("web", "Ready", "True", T)
        .await;
    h.stop_operator().await;
}
