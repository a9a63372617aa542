//! The CRDs refuse bad manifests at apply time with messages that say what to fix.

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{TEST_MANAGER, client_app, install_crds, resource_app};
use fhir_app_operator_tests::{TestNamespace, kube_client};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

async fn refused<K>(api: &Api<K>, obj: Value) -> String
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    match api
        .patch(
            &name,
            &PatchParams::apply(TEST_MANAGER),
            &Patch::Apply(&obj),
        )
        .await
    {
        Ok(_) => panic!("API server accepted {obj}"),
        Err(kube::Error::Api(s)) => {
            // 422 from validation; server-side apply reports duplicate list-map keys as 500.
            assert!(
                s.code == 422 || s.message.contains("duplicate entries"),
                "{s:?}"
            );
            s.message
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn bad_client_manifests_are_refused_with_clear_messages() {
    let client = kube_client().await;
    install_crds(&client).await.unwrap();
    let ns = TestNamespace::new(&client, "crd").await;
    let api: Api<FhirClientApp> = Api::namespaced(client.clone(), &ns.name);
    let target = json!({"resourceAppRef": {"name": "fhir"}});
    let cases = [
        (
            json!({"type": "Public", "target": target, "credential": {"type": "ClientSecret"}}),
            "a Public client has no credential",
        ),
        (
            json!({"type": "Service", "target": target, "redirectUris": ["https://app.example/cb"]}),
            "a Service client signs in without a user",
        ),
        (
            json!({"type": "Confidential", "target": {}}),
            "set exactly one of target.resourceAppRef or target.managed",
        ),
        (
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "a"}, "managed": {"fhirUrl": "https://x.fhir.azurehealthcareapis.com"}}}),
            "set exactly one",
        ),
        (
            json!({"type": "Confidential", "target": target, "redirectUris": ["http://evil.example/cb"]}),
            "redirectUris must be https://",
        ),
        (
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"validity": "24h", "renewBefore": "48h"}}}),
            "must be shorter than rotation.validity",
        ),
        (
            json!({"type": "Service", "target": target, "credential": {"type": "WorkloadIdentity"}}),
            "needs credential.serviceAccountName",
        ),
        (
            json!({"type": "Service", "target": target, "tenant": {"credentialsSecretRef": {"name": "creds"}}}),
            "tenant.credentialsSecretRef needs tenant.tenantId",
        ),
        (
            json!({"type": "Confidential", "target": target, "roles": ["globalReader"]}),
            "app roles (spec.roles) are for Service clients",
        ),
        (
            json!({"type": "Robot", "target": target}),
            "Unsupported value",
        ),
    ];
    for (i, (spec, want)) in cases.into_iter().enumerate() {
        let msg = refused(&api, client_app(&format!("bad-{i}"), spec)).await;
        assert!(
            msg.contains(want),
            "case {i}: message {msg:?} should contain {want:?}"
        );
    }
    // A good one is accepted and nothing is defaulted into the stored spec (GitOps-friendly).
    let ok = api
        .patch(
            "good",
            &PatchParams::apply(TEST_MANAGER),
            &Patch::Apply(&client_app(
                "good",
                json!({"type": "Service", "target": target}),
            )),
        )
        .await
        .expect("valid manifest accepted");
    assert_eq!(
        serde_json::to_value(&ok.spec).unwrap(),
        json!({"type": "Service", "target": target})
    );
}

#[tokio::test]
async fn bad_resource_manifests_are_refused_with_clear_messages() {
    let client = kube_client().await;
    install_crds(&client).await.unwrap();
    let ns = TestNamespace::new(&client, "crd").await;
    let api: Api<FhirResourceApp> = Api::namespaced(client.clone(), &ns.name);
    let cases = [
        (
            json!({"fhirUrl": "http://fhir.contoso.example"}),
            "fhirUrl must be an https:// URL",
        ),
        (
            json!({"fhirUrl": "https://fhir.contoso.example", "signInAudience": "AzureADandPersonalMicrosoftAccount"}),
            "needs requestedAccessTokenVersion: 2",
        ),
        (
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoles": [{"value": "a"}, {"value": "a"}]}),
            "appRoles: duplicate entries for key",
        ),
        (
            json!({"fhirUrl": "https://fhir.contoso.example", "requestedAccessTokenVersion": 3}),
            "requestedAccessTokenVersion",
        ),
    ];
    for (i, (spec, want)) in cases.into_iter().enumerate() {
        let msg = refused(&api, resource_app(&format!("bad-{i}"), spec)).await;
        assert!(
            msg.contains(want),
            "case {i}: message {msg:?} should contain {want:?}"
        );
    }
}
