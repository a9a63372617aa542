//! Certificate credentials: the operator issues a certificate, registers it on the client app, and the
//! output Secret alone signs in (client assertion); rotation keeps the previous certificate for the
//! overlap; switching credential kinds leaves no credential of the old kind behind.

use std::collections::BTreeMap;
use std::time::Duration;

use fhir_app_operator::api::FhirClientApp;
use fhir_app_operator::graph::assertion::CertificateCredential;
use fhir_app_operator_tests::operator::{Harness, client_app, secret_data};
use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

async fn app(h: &Harness, app_id: &str) -> Value {
    let (code, body) = h
        .graph(
            Method::GET,
            &format!("/applications(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

fn ids(app: &Value, collection: &str) -> Vec<String> {
    app[collection]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k["keyId"].as_str().map(String::from))
        .collect()
}

/// A client-credentials token using only `bundle` (what `AZURE_CLIENT_CERTIFICATE_PATH` points at)
/// and the Secret's other keys.
async fn token_with_certificate(
    h: &Harness,
    data: &BTreeMap<String, String>,
    bundle: &str,
) -> Result<Value, String> {
    let cert = CertificateCredential::from_pem(bundle.as_bytes())?;
    let now = jiff::Timestamp::now().as_second();
    let assertion = cert.assertion(&data["AZURE_CLIENT_ID"], &data["TOKEN_ENDPOINT"], now)?;
    h.token_with(
        data,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await
}

fn key_id_of(obj: &FhirClientApp) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.credential.as_ref())
        .and_then(|c| c.key_id.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_certificate_client_signs_in_with_its_secret_and_rotates_with_overlap() {
    let mut h = Harness::with_resource_app("op-cert").await;
    h.apply::<FhirClientApp>(client_app("etl", json!({
        "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
        "roles": ["globalReader"], "assignAppRoles": true,
        "credential": {"type": "Certificate", "rotation": {"validity": "1h", "renewBefore": "59m48s", "overlap": "30s"}}
    })))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    assert_eq!(obj["status"]["credential"]["type"], "Certificate");
    let first = obj["status"]["credential"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert!(!d.contains_key("AZURE_CLIENT_SECRET"), "no secret at all");
    assert_eq!(
        d["AZURE_CLIENT_CERTIFICATE_PATH"],
        "/var/run/secrets/fhirapps.io/client/client-certificate.pem"
    );
    let bundle = d["client-certificate.pem"].clone();
    assert_eq!(bundle, format!("{}{}", d["tls.key"], d["tls.crt"]));
    let a = app(&h, &app_id).await;
    assert_eq!(ids(&a, "keyCredentials"), vec![first.clone()]);
    assert!(ids(&a, "passwordCredentials").is_empty());
    let c = token_with_certificate(&h, &d, &bundle).await.unwrap();
    assert_eq!(c["aud"], "https://fhir.contoso.example");
    assert_eq!(c["roles"], json!(["globalReader"]));

    // Within renewBefore after ~12 s: a new certificate, and the old one still registered and usable.
    let second = h
        .eventually("certificate rotated", T, || {
            let (h, first) = (&h, &first);
            async move {
                let o = h
                    .api::<FhirClientApp>()
                    .get("etl")
                    .await
                    .map_err(|e| e.to_string())?;
                let k = key_id_of(&o);
                Ok::<_, String>((k != *first && !k.is_empty()).then_some(k))
            }
        })
        .await;
    let d2 = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert_ne!(d2["client-certificate.pem"], bundle);
    assert_eq!(
        d2["previous-tls.crt"], d["tls.crt"],
        "the previous certificate is kept beside the new one"
    );
    let keys = ids(&app(&h, &app_id).await, "keyCredentials");
    assert!(
        keys.contains(&second) && keys.contains(&first) && keys.len() == 2,
        "{keys:?}"
    );
    token_with_certificate(&h, &d2, &d2["client-certificate.pem"])
        .await
        .unwrap();
    token_with_certificate(&h, &d, &bundle)
        .await
        .expect("the previous certificate still signs in during the overlap");

    // After the overlap the first certificate is gone from the app and no longer signs in; at no
    // point are there more than two.
    h.eventually("first certificate removed after the overlap", T, || {
        let (h, app_id, first) = (&h, &app_id, &first);
        async move {
            let keys = ids(&app(h, app_id).await, "keyCredentials");
            if keys.len() > 2 {
                return Err(format!("more than two certificates: {keys:?}"));
            }
            Ok::<_, String>((!keys.contains(first)).then_some(()))
        }
    })
    .await;
    let refused = token_with_certificate(&h, &d, &bundle).await.unwrap_err();
    assert!(
        refused.contains("401") || refused.contains("400"),
        "{refused}"
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn switching_credential_kind_removes_the_old_kind_and_a_deleted_secret_gets_a_new_certificate()
 {
    let mut h = Harness::with_resource_app("op-cert-switch").await;
    // A role assigned: the FHIR API requires assignment by default (AADSTS501051 otherwise).
    let spec = |cred: &str| {
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "credential": {"type": cred},
                                   "roles": ["globalReader"], "assignAppRoles": true})
    };
    h.apply::<FhirClientApp>(client_app("etl", spec("ClientSecret")))
        .await
        .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    assert_eq!(ids(&app(&h, &app_id).await, "passwordCredentials").len(), 1);

    h.apply::<FhirClientApp>(client_app("etl", spec("Certificate")))
        .await
        .unwrap();
    h.eventually("switched to a certificate", T, || {
        let (h, app_id) = (&h, &app_id);
        async move {
            let a = app(h, app_id).await;
            let (pw, keys) = (ids(&a, "passwordCredentials"), ids(&a, "keyCredentials"));
            Ok::<_, String>((pw.is_empty() && keys.len() == 1).then_some(()))
        }
    })
    .await;
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert!(!d.contains_key("AZURE_CLIENT_SECRET"));
    token_with_certificate(&h, &d, &d["client-certificate.pem"])
        .await
        .unwrap();
    let old_key = key_id_of(&h.api::<FhirClientApp>().get("etl").await.unwrap());

    // A user deletes the Secret: the private key is gone, so a new certificate replaces the old one.
    h.api::<Secret>()
        .delete("etl-fhir-client", &DeleteParams::default())
        .await
        .unwrap();
    h.eventually("Secret restored with a new certificate", T, || {
        let (h, app_id, old_key) = (&h, &app_id, &old_key);
        async move {
            let Some(d) = secret_data(&h.client, &h.ns.name, "etl-fhir-client").await else {
                return Ok(None);
            };
            let keys = ids(&app(h, app_id).await, "keyCredentials");
            let fresh = keys.len() == 1 && !keys.contains(old_key);
            Ok::<_, String>((fresh && d.contains_key("client-certificate.pem")).then_some(d))
        }
    })
    .await;
    let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    token_with_certificate(&h, &d, &d["client-certificate.pem"])
        .await
        .unwrap();

    // And back to a client secret: the certificate is removed.
    h.apply::<FhirClientApp>(client_app("etl", spec("ClientSecret")))
        .await
        .unwrap();
    h.eventually("switched back to a client secret", T, || {
        let (h, app_id) = (&h, &app_id);
        async move {
            let a = app(h, app_id).await;
            let (pw, keys) = (ids(&a, "passwordCredentials"), ids(&a, "keyCredentials"));
            Ok::<_, String>((pw.len() == 1 && keys.is_empty()).then_some(()))
        }
    })
    .await;
    let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert!(
        !d.contains_key("client-certificate.pem") && !d.contains_key("tls.key"),
        "no private key left in the Secret"
    );
    h.token_from_secret(&d).await.unwrap();
    h.stop_operator().await;
}

/// An application deleted out of band and recreated: the certificate the Secret holds is registered
/// on the new application in the same reconcile, so the client is never Ready with a certificate
/// Entra does not know (the client-secret path of this is in operator_defects.rs).
#[tokio::test]
async fn a_recreated_application_gets_the_held_certificate_before_it_is_ready() {
    let mut h = Harness::with_resource_app_delta_only("op-cert-re").await;
    h.apply::<FhirClientApp>(client_app(
        "etl",
        json!({
            "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
            "roles": ["globalReader"], "assignAppRoles": true, "credential": {"type": "Certificate"}
        }),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    let new = h.delete_application_out_of_band("etl").await;
    let d = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .unwrap();
    assert_eq!(
        d["AZURE_CLIENT_ID"],
        new["status"]["clientId"].as_str().unwrap()
    );
    let claims = token_with_certificate(&h, &d, &d["client-certificate.pem"])
        .await
        .expect("the held certificate signs in to the recreated application");
    assert_eq!(claims["appid"], new["status"]["clientId"]);
    h.stop_operator().await;
}
