//! The operator against the real control plane and the Entra emulator: resource apps, clients,
//! credentials that work, waiting for a resource app, clear Stalled conditions.

use std::time::{Duration, Instant};

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{
    Harness, client_app, condition, full_permissions, resource_app, secret_data,
};
use k8s_openapi::api::core::v1::ConfigMap;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

#[tokio::test]
async fn resource_app_is_registered_with_fhir_roles_and_token_settings() {
    let mut h = Harness::new("op-res", full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://FHIR.contoso.example", "smart": {"enabled": true}}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let st = &obj["status"];
    let app_id = st["clientId"].as_str().unwrap().to_string();
    assert_eq!(
        st["audience"], "https://fhir.contoso.example",
        "v1 audience = lower-cased FHIR URL"
    );

    let (code, app) = h
        .graph(
            Method::GET,
            &format!("/applications(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{app}");
    assert_eq!(
        app["identifierUris"],
        json!(["https://fhir.contoso.example"])
    );
    let roles: Vec<&str> = app["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    for r in [
        "globalReader",
        "globalWriter",
        "globalExporter",
        "globalImporter",
        "globalConverter",
        "globalAdmin",
        "smartUser",
    ] {
        assert!(roles.contains(&r), "{r} in {roles:?}");
    }
    let scopes: Vec<&str> = app["api"]["oauth2PermissionScopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    for s in [
        "user_impersonation",
        "patient.all.read",
        "launch.patient",
        "fhirUser",
    ] {
        assert!(scopes.contains(&s), "{s} in {scopes:?}");
    }
    let (code, _) = h
        .graph(
            Method::GET,
            &format!("/servicePrincipals(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(code, 200, "service principal exists");

    let cm = h.api::<ConfigMap>().get("fhir-fhir-auth").await.unwrap();
    let d = cm.data.unwrap();
    let tid = h.emu.tenant_id();
    assert_eq!(d["FhirServer__Security__Enabled"], "true");
    assert_eq!(
        d["FhirServer__Security__Authentication__Audience"],
        "https://fhir.contoso.example"
    );
    assert_eq!(
        d["FhirServer__Security__Authentication__Authority"],
        format!("{}{tid}", h.emu.authority_host())
    );
    assert!(d["JWKS_URI"].ends_with("/discovery/keys"));

    // Deleting (default policy Delete) removes the application and its service principal.
    h.delete::<FhirResourceApp>("fhir").await.unwrap();
    h.eventually("application deleted", T, || {
        let h = &h;
        let app_id = app_id.clone();
        async move {
            let (code, _) = h
                .graph(
                    Method::GET,
                    &format!("/applications(appId='{app_id}')"),
                    None,
                )
                .await;
            Ok::<_, String>((code == 404).then_some(()))
        }
    })
    .await;
    let (code, _) = h
        .graph(
            Method::GET,
            &format!("/servicePrincipals(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(code, 404, "service principal deleted too");
    h.stop_operator().await;
}

#[tokio::test]
async fn service_client_secret_gets_a_token_with_the_fhir_audience_and_granted_roles() {
    let mut h = Harness::new("op-svc", full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let started = Instant::now();
    h.apply::<FhirClientApp>(client_app(
        "etl",
        json!({
            "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
            "roles": ["globalReader", "globalExporter"], "assignAppRoles": true
        }),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Ready", "True", T)
        .await;
    println!(
        "MEASURE service client create → Ready: {:?}",
        started.elapsed()
    );
    assert_eq!(obj["status"]["credential"]["type"], "ClientSecret");
    assert!(obj["status"]["credential"]["keyId"].is_string());
    let status_text = obj["status"].to_string();

    let data = secret_data(&h.client, &h.ns.name, "etl-fhir-client")
        .await
        .expect("output Secret");
    for k in [
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "FHIR_URL",
        "FHIR_AUDIENCE",
        "FHIR_SCOPE",
        "TOKEN_ENDPOINT",
    ] {
        assert!(data.contains_key(k), "Secret has {k}");
    }
    assert!(
        !status_text.contains(&data["AZURE_CLIENT_SECRET"]),
        "no secret value in status"
    );
    assert_eq!(data["FHIR_SCOPE"], "https://fhir.contoso.example/.default");

    // Exactly the Secret's contents get a token for the FHIR server with the granted roles
    // (a new secret may take a moment to be accepted: Entra replication).
    let claims = h
        .eventually("token from the Secret's contents", T, || {
            let (h, data) = (&h, &data);
            async move { h.token_from_secret(data).await.map(Some) }
        })
        .await;
    assert_eq!(claims["aud"], "https://fhir.contoso.example", "{claims}");
    let roles: Vec<&str> = claims["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(
        roles.contains(&"globalReader") && roles.contains(&"globalExporter"),
        "{claims}"
    );
    // What the resource app publishes for token validation matches the token the FHIR server gets.
    let cm: k8s_openapi::api::core::v1::ConfigMap = h.api().get("fhir-fhir-auth").await.unwrap();
    let cm = cm.data.unwrap_or_default();
    assert_eq!(cm["AUDIENCE"], claims["aud"].as_str().unwrap(), "{cm:?}");
    assert_eq!(cm["ISSUER"], claims["iss"].as_str().unwrap(), "{cm:?}");
    h.stop_operator().await;
}

#[tokio::test]
async fn client_created_before_its_resource_app_waits_then_becomes_ready() {
    let mut h = Harness::new("op-wait", full_permissions()).await;
    h.start_operator(h.config()).await;
    h.apply::<FhirClientApp>(client_app("portal", json!({
        "type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}}, "redirectUris": ["https://portal.contoso.example/cb"]
    })))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("portal", "Reconciling", "True", T)
        .await;
    let ready = condition(&obj, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "WaitingForResourceApp");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("FhirResourceApp"),
        "{ready}"
    );

    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("portal", "Ready", "True", T)
        .await;
    let (_, app) = h
        .graph(
            Method::GET,
            &format!(
                "/applications(appId='{}')",
                obj["status"]["clientId"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        app["web"]["redirectUris"],
        json!(["https://portal.contoso.example/cb"])
    );
    assert_eq!(
        app["requiredResourceAccess"][0]["resourceAccess"][0]["type"],
        "Scope"
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn unverified_domain_and_missing_permission_give_clear_stalled_conditions() {
    let mut h = Harness::new("op-stall", vec!["Application.ReadWrite.OwnedBy".into()]).await;
    // No resync within the test: the count below is about the stalled client's retries alone (a
    // resource app's resync reads its application, service principal and what is held on its API).
    let mut cfg = h.config();
    cfg.resync = Duration::from_secs(120);
    h.start_operator(cfg).await;
    h.apply::<FhirResourceApp>(resource_app(
        "elsewhere",
        json!({"fhirUrl": "https://fhir.not-verified.example"}),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirResourceApp>("elsewhere", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "HostNameNotOnVerifiedDomain");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("api://{appId}"),
        "says what to do: {stalled}"
    );

    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.apply::<FhirClientApp>(client_app("etl", json!({
        "type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"], "assignAppRoles": true
    })))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirClientApp>("etl", "Stalled", "True", T)
        .await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "PermissionDenied");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("AppRoleAssignment.ReadWrite.All"),
        "names the permission: {stalled}"
    );
    // No hot retries: the Graph call count stays flat while Stalled.
    let before = h.emu.calls().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = h.emu.calls().len();
    assert!(
        after - before <= 2,
        "stalled resources are not retried hot: {before} → {after}"
    );
    h.stop_operator().await;
}

#[tokio::test]
async fn removing_and_changing_app_roles_disables_them_first_and_keeps_ids_stable() {
    let mut h = Harness::new("op-roles", full_permissions()).await;
    h.start_operator(h.config()).await;
    let roles = |list: Value| {
        resource_app(
            "fhir",
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoles": list}),
        )
    };
    h.apply::<FhirResourceApp>(roles(
        json!([{"value": "globalReader"}, {"value": "globalWriter"}, {"value": "globalAdmin"}]),
    ))
    .await
    .unwrap();
    let obj = h
        .wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    let app_id = obj["status"]["clientId"].as_str().unwrap().to_string();
    let (_, before) = h
        .graph(
            Method::GET,
            &format!("/applications(appId='{app_id}')"),
            None,
        )
        .await;
    let id_of = |app: &Value, v: &str| {
        app["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["value"] == v)
            .map(|r| r["id"].clone())
    };

    let mark = h.emu.calls().len();
    // Remove globalAdmin and change globalWriter's description (both need "disable first" in Graph).
    h.apply::<FhirResourceApp>(roles(json!([{"value": "globalReader"}, {"value": "globalWriter", "description": "Write FHIR data"}]))).await.unwrap();
    h.eventually("roles updated", T, || {
        let (h, app_id) = (&h, &app_id);
        async move {
            let (_, app) = h
                .graph(
                    Method::GET,
                    &format!("/applications(appId='{app_id}')"),
                    None,
                )
                .await;
            let vals: Vec<String> = app["appRoles"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| r["value"].as_str().unwrap_or_default().to_string())
                .collect();
            let writer_desc = app["appRoles"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .find(|r| r["value"] == "globalWriter")
                .map(|r| r["description"].clone());
            let done = vals.len() == 2
                && !vals.contains(&"globalAdmin".to_string())
                && writer_desc == Some(json!("Write FHIR data"));
            Ok::<_, String>(
                done.then_some(app)
                    .ok_or(format!("{vals:?} {writer_desc:?}"))
                    .ok(),
            )
        }
    })
    .await;
    let (_, after) = h
        .graph(
            Method::GET,
            &format!("/applications(appId='{app_id}')"),
            None,
        )
        .await;
    assert_eq!(
        id_of(&before, "globalReader"),
        id_of(&after, "globalReader"),
        "role IDs are stable"
    );
    assert_eq!(
        id_of(&before, "globalWriter"),
        id_of(&after, "globalWriter")
    );
    let oid = obj["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let patches = h.emu.calls()[mark..]
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.contains(&oid) && c.status == 204)
        .count();
    assert!(
        patches >= 2,
        "a disable phase precedes the change: {patches} PATCHes"
    );
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", T)
        .await;
    h.stop_operator().await;
}
