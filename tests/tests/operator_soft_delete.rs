//! Entra soft-deletes: a deleted application waits 30 days in the deleted items and keeps its
//! uniqueName. A resource deleted and created again gets its application back (same client ID and
//! audience, no credential from before), a deleted application that is not the resource's own is
//! Stalled without a loop, and `deletionPolicy: Purge` frees the name at once (issue 24 items 5, 6, 9).

use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{
    Harness, client_app, condition, full_permissions, resource_app, secret_data,
    service_spec as service,
};
use k8s_openapi::api::core::v1::ConfigMap;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

/// Deletes the resource and waits until it is gone from Kubernetes (its cleanup done).
async fn delete_and_wait<K>(h: &Harness, name: &str)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    h.delete::<K>(name).await.unwrap();
    h.eventually(&format!("{name} gone"), T, || async move {
        let found = h
            .api::<K>()
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(found.is_none().then_some(()))
    })
    .await;
}

fn audience_now(cm: &ConfigMap) -> String {
    cm.data.as_ref().unwrap()["AUDIENCE"].clone()
}

async fn graph_get(h: &Harness, path: &str) -> (u16, Value) {
    h.graph(Method::GET, path, None).await
}

fn passwords(app: &Value) -> usize {
    app["passwordCredentials"].as_array().map_or(0, Vec::len)
}

async fn events_with_reason(h: &Harness, reason: &str) -> usize {
    kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(h.client.clone(), &h.ns.name)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .count()
}

#[tokio::test]
async fn a_client_deleted_and_created_again_gets_its_application_back() {
    let mut h = Harness::with_resource_app("sd-client").await;
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    let before = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let (client_id, oid) = (
        before["status"]["clientId"].as_str().unwrap().to_string(),
        before["status"]["applicationObjectId"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let old_key = before["status"]["credential"]["keyId"].clone();
    delete_and_wait::<FhirClientApp>(&h, "etl").await;
    let (code, deleted) = graph_get(&h, &format!("/directory/deletedItems/{oid}")).await;
    assert_eq!(code, 200, "soft-deleted, not gone: {deleted}");
    assert_eq!(
        passwords(&deleted),
        1,
        "the deleted app still carries its secret"
    );

    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    let after = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    assert_eq!(after["status"]["clientId"], client_id.as_str());
    assert_eq!(after["status"]["applicationObjectId"], oid.as_str());
    assert_ne!(after["status"]["credential"]["keyId"], old_key);
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert_eq!(data["AZURE_CLIENT_ID"], client_id);
    let claims = h
        .token_from_secret(&data)
        .await
        .expect("the new Secret's credential gets a token");
    assert_eq!(claims["appid"], client_id.as_str());
    assert_eq!(
        claims["roles"],
        json!(["globalReader"]),
        "the role assignment is there"
    );
    let (_, app) = graph_get(&h, &format!("/applications/{oid}")).await;
    assert_eq!(
        app["passwordCredentials"][0]["keyId"], after["status"]["credential"]["keyId"],
        "only the new Secret's credential is live: {app}"
    );
    assert_eq!(passwords(&app), 1);
    let sp = after["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap();
    assert_eq!(
        sp,
        before["status"]["servicePrincipalObjectId"]
            .as_str()
            .unwrap(),
        "its service principal is restored too"
    );
    assert!(events_with_reason(&h, "Restored").await >= 1);
    h.stop_operator().await;
}

#[tokio::test]
async fn a_resource_app_deleted_and_created_again_keeps_its_audience() {
    let spec = json!({"fhirUrl": "https://fhir.contoso.example", "identifierUri": "api://{appId}"});
    deleted_and_created_again_keeps_its_audience("sd-resource", spec, None).await;
}

/// The usual case: the FHIR URL is the identifier URI, which the deleted application keeps too, so
/// the re-create may be refused on the URI before the uniqueName.
#[tokio::test]
async fn a_resource_app_with_its_fhir_url_as_audience_deleted_and_created_again_keeps_it() {
    let spec = json!({"fhirUrl": "https://fhir.contoso.example"});
    let audience = Some("https://fhir.contoso.example");
    deleted_and_created_again_keeps_its_audience("sd-resource-url", spec, audience).await;
}

/// Deletes the resource app `spec` and applies it again: the same client ID and `audience` (default:
/// the app-ID form), and a client of it gets tokens for that audience.
async fn deleted_and_created_again_keeps_its_audience(
    prefix: &str,
    spec: Value,
    audience: Option<&str>,
) {
    let mut h = Harness::new(prefix, full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app("fhir", spec.clone()))
        .await
        .unwrap();
    let before = h
        .wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let cm_before = h.api::<ConfigMap>().get("fhir-fhir-auth").await.unwrap();
    let client_id = before["status"]["clientId"].as_str().unwrap().to_string();
    let expected = audience.map_or(format!("api://{client_id}"), str::to_string);
    assert_eq!(audience_now(&cm_before), expected);
    let audience = expected;
    delete_and_wait::<FhirResourceApp>(&h, "fhir").await;

    h.apply::<FhirResourceApp>(resource_app("fhir", spec))
        .await
        .unwrap();
    let after = h
        .wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    assert_eq!(after["status"]["clientId"], client_id.as_str());
    let cm = h
        .eventually("the ConfigMap again", T, || async {
            let cm = h.api::<ConfigMap>().get_opt("fhir-fhir-auth").await;
            Ok::<_, String>(cm.map_err(|e| e.to_string())?.and_then(|c| c.data))
        })
        .await;
    assert_eq!(cm["AUDIENCE"], audience, "the same audience as before");
    // A client of it gets tokens for that audience.
    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    let claims = h.token_from_secret(&data).await.unwrap();
    assert_eq!(claims["aud"], audience.as_str());
    h.stop_operator().await;
}

#[tokio::test]
async fn a_deleted_application_that_is_not_ours_stalls_the_resource_without_a_loop() {
    let mut h = Harness::with_resource_app("sd-foreign").await;
    h.apply::<FhirClientApp>(client_app(
        "etl",
        service(json!({"deletionPolicy": "Orphan"})),
    ))
    .await
    .unwrap();
    let first = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let oid = first["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let unique_name = first["status"]["uniqueName"].as_str().unwrap().to_string();
    delete_and_wait::<FhirClientApp>(&h, "etl").await;
    // Someone else's application with that uniqueName (no owner tag of ours), then deleted.
    let (code, body) = h
        .graph(
            Method::PATCH,
            &format!("/applications/{oid}"),
            Some(json!({"tags": ["someone-else"]})),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let (code, _) = h
        .graph(Method::DELETE, &format!("/applications/{oid}"), None)
        .await;
    assert_eq!(code, 204);

    h.apply::<FhirClientApp>(client_app("etl", service(json!({}))))
        .await
        .unwrap();
    let stalled = h
        .wait_condition::<FhirClientApp>("etl", "Stalled", "True", T)
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "UniqueNameHeldByDeletedApp", "{c}");
    let message = c["message"].as_str().unwrap();
    assert!(message.contains(&oid), "{message}");
    assert!(
        message.contains(&format!("directory/deletedItems/{oid}")),
        "{message}"
    );
    let (code, _) = graph_get(&h, &format!("/directory/deletedItems/{oid}")).await;
    assert_eq!(code, 200, "left where it is");
    // Nothing loops: no Graph call for this resource's application within a few seconds (the slow
    // Stalled retry is 30 s in the harness; the FhirResourceApp's resync goes on).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = h.emu.calls().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let new: Vec<String> = h.emu.calls()[calls..]
        .iter()
        .filter(|c| c.path.contains(&unique_name) || c.operation.starts_with("deletedItems"))
        .map(|c| format!("{} {}", c.operation, c.path))
        .collect();
    assert!(new.is_empty(), "no retry loop: {new:?}");
    h.stop_operator().await;
}

#[tokio::test]
async fn purge_frees_the_name_at_once() {
    let mut h = Harness::with_resource_app("sd-purge").await;
    let spec = service(json!({"deletionPolicy": "Purge"}));
    h.apply::<FhirClientApp>(client_app("etl", spec.clone()))
        .await
        .unwrap();
    let first = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let oid = first["status"]["applicationObjectId"].as_str().unwrap();
    let sp = first["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap();
    delete_and_wait::<FhirClientApp>(&h, "etl").await;
    for id in [oid, sp] {
        let (code, body) = graph_get(&h, &format!("/directory/deletedItems/{id}")).await;
        assert_eq!(code, 404, "purged: {body}");
    }
    h.apply::<FhirClientApp>(client_app("etl", spec))
        .await
        .unwrap();
    let second = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    assert_ne!(
        second["status"]["clientId"], first["status"]["clientId"],
        "a new application"
    );
    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    h.token_from_secret(&data).await.unwrap();
    h.stop_operator().await;
}

#[tokio::test]
async fn an_identifier_uri_held_by_a_deleted_application_is_named_with_its_purge_command() {
    let mut h = Harness::new("sd-uri", full_permissions()).await;
    h.start_operator(h.config()).await;
    let spec = json!({"fhirUrl": "https://fhir.contoso.example"});
    h.apply::<FhirResourceApp>(resource_app("old", spec.clone()))
        .await
        .unwrap();
    let old = h
        .wait_condition::<FhirResourceApp>("old", "Ready", "True", T)
        .await;
    let oid = old["status"]["applicationObjectId"].as_str().unwrap();
    delete_and_wait::<FhirResourceApp>(&h, "old").await;
    // Another resource, same FHIR URL: the deleted application still holds it.
    h.apply::<FhirResourceApp>(resource_app("new", spec))
        .await
        .unwrap();
    let stalled = h
        .wait_condition::<FhirResourceApp>("new", "Stalled", "True", T)
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "IdentifierUriTaken", "{c}");
    let message = c["message"].as_str().unwrap();
    assert!(message.contains("a deleted application"), "{message}");
    assert!(
        message.contains(&format!("directory/deletedItems/{oid}")),
        "{message}"
    );
    h.stop_operator().await;
}
