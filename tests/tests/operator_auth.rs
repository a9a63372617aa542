//! The operator authenticates to Entra ID with a certificate or a federated (workload identity) token.

use std::time::Duration;

use fhir_app_operator::api::FhirResourceApp;
use fhir_app_operator::graph::Credential;
use fhir_app_operator::graph::assertion::CertificateCredential;
use fhir_app_operator_tests::kube_client;
use fhir_app_operator_tests::operator::{Harness, resource_app};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

async fn raw_get(client: &kube::Client, path: &str) -> Value {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap()
}

#[tokio::test]
async fn operator_signs_in_with_a_certificate() {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let key_pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let kp = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert_pem = rcgen::CertificateParams::new(vec!["fhir-app-operator".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap()
        .pem();
    let cp = cert_pem.clone();
    let mut h = Harness::with_emulator("op-cert", move |cfg, _| {
        cfg.tenants[0].apps[0].client_secret = None;
        cfg.tenants[0].apps[0].certificate_pem = Some(cp);
    })
    .await;
    let mut c = h.config();
    let bundle = format!("{cert_pem}{key_pem}");
    c.credential = Credential::Certificate {
        client_id: h.emu.client_id(),
        certificate: CertificateCredential::from_pem(bundle.as_bytes()).unwrap(),
    };
    h.start_operator(c).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    assert!(
        h.emu
            .calls()
            .iter()
            .any(|c| c.operation.contains("token") && c.status == 200),
        "signed in"
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn operator_signs_in_with_a_federated_token_file_reread_per_request() {
    let client = kube_client().await;
    let issuer = raw_get(&client, "/.well-known/openid-configuration").await["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let jwks = raw_get(&client, "/openid/v1/jwks").await;
    let iss = issuer.clone();
    let mut h = Harness::with_emulator("op-wif", move |cfg, ns| {
        let app = &mut cfg.tenants[0].apps[0];
        app.client_secret = None;
        // Built from JSON so the test follows the emulator's (serde-defaulted) config format.
        app.federated = vec![
            serde_json::from_value(
                json!({"issuer": iss, "subject": format!("system:serviceaccount:{ns}:operator")}),
            )
            .unwrap(),
        ];
        cfg.trusted_issuers =
            vec![serde_json::from_value(json!({"issuer": iss, "jwks": jwks})).unwrap()];
    })
    .await;
    let sas: Api<ServiceAccount> = h.api();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "operator"}})).unwrap(),
    )
    .await
    .unwrap();
    let token = h.federated_token("operator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "stale-token-that-will-be-replaced").unwrap();
    let mut c = h.config();
    c.credential = Credential::FederatedTokenFile {
        client_id: h.emu.client_id(),
        path: file.clone(),
    };
    h.start_operator(c).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    // With a bad token in the file the operator cannot sign in; once kubelet "rotates" it, it can.
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "False", T)
        .await;
    std::fs::write(&file, token).unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.stop_operator().await;
}
