//! The `fhirUser` claim end to end (issue 25 item 2): a FhirResourceApp with
//! `smart.fhirUserClaim` gets the directory extension, a claims-mapping policy assigned to its
//! service principal and to its SMART clients', and `acceptMappedClaims` on both applications, as
//! the AHDS SMART sample sets up by hand; a user whose extension value is set then signs in and
//! finds `fhirUser` in the FHIR API's access token and in the client's ID token, a user without
//! one finds none. Turned off, or the FhirResourceApp deleted, nothing is left in Entra; without
//! the policy permission the condition says which permission and the app stays Ready; a policy a
//! crashed reconcile left behind is found again, not duplicated.

use std::collections::BTreeMap;
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::operator::{
    Harness, claims, client_app, condition, full_permissions, resource_app, secret_data,
    sign_in_with_code,
};
use k8s_openapi::api::core::v1::ConfigMap;
use reqwest::Method;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Fhir-Passw0rd";
const CLINICIAN: &str = "clinician@contoso.example";
const CLINICIAN_OID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
const NURSE: &str = "nurse@contoso.example";
const REDIRECT: &str = "http://localhost:8400/signin-oidc";
const POLICY_PERMISSION: &str = "Policy.ReadWrite.ApplicationConfiguration";
const CLAIM: &str = "FhirUserClaim";

fn user(upn: &str, oid: Option<&str>) -> entra_emulator::UserConfig {
    entra_emulator::UserConfig {
        user_principal_name: upn.into(),
        password: PASSWORD.into(),
        object_id: oid.map(String::from),
        ..Default::default()
    }
}

/// The operator with (or without) the policy permission, two users, and a started operator.
async fn harness(prefix: &str, policy_permission: bool) -> Harness {
    let mut permissions = full_permissions();
    if policy_permission {
        permissions.push(POLICY_PERMISSION.into());
    }
    let mut h = Harness::with_emulator(prefix, |cfg, _| {
        cfg.tenants[0].apps[0].permissions = permissions;
        cfg.tenants[0].users = vec![user(CLINICIAN, Some(CLINICIAN_OID)), user(NURSE, None)];
    })
    .await;
    h.start_operator(h.config()).await;
    h
}

/// FhirResourceApp `fhir` with the claim (v2 tokens: the audience is the app ID, which Entra
/// accepts mapped claims for), any user of the tenant may get a token.
fn fhir_spec(claim: bool) -> Value {
    json!({"fhirUrl": "https://fhir.contoso.example", "requestedAccessTokenVersion": 2,
           "appRoleAssignmentRequired": false,
           "smart": {"enabled": true, "fhirUserClaim": claim}})
}

fn web_spec() -> Value {
    json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
           "redirectUris": [REDIRECT], "grantAdminConsent": true})
}

async fn get(h: &Harness, path: &str) -> Value {
    let (code, body) = h.graph(Method::GET, path, None).await;
    assert_eq!(code, 200, "GET {path}: {body}");
    body
}

async fn accepts_mapped_claims(h: &Harness, app_object_id: &str) -> bool {
    let app = get(h, &format!("/applications/{app_object_id}")).await;
    app["api"]["acceptMappedClaims"] == true
}

/// The service principals the policy applies to.
async fn applies_to(h: &Harness, policy: &str) -> Vec<String> {
    let list = get(
        h,
        &format!("/policies/claimsMappingPolicies/{policy}/appliesTo"),
    )
    .await;
    ids(&list)
}

fn ids(list: &Value) -> Vec<String> {
    let items = list["value"].as_array().cloned().unwrap_or_default();
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();
    items.iter().map(id).collect()
}

/// The operator's claims-mapping policies in the tenant (display names it tags).
async fn operator_policies(h: &Harness) -> Vec<Value> {
    let list = get(h, "/policies/claimsMappingPolicies").await;
    let items = list["value"].as_array().cloned().unwrap_or_default();
    let ours = |p: &Value| {
        p["displayName"]
            .as_str()
            .unwrap_or("")
            .starts_with("fhirapps.io fhirUser ")
    };
    items.into_iter().filter(ours).collect()
}

async fn config_map(h: &Harness) -> BTreeMap<String, String> {
    let cm = h.api::<ConfigMap>().get("fhir-fhir-auth").await.unwrap();
    cm.data.unwrap_or_default()
}

/// Both tokens of a sign-in by `upn` to the client of `data`: (access token, ID token) claims.
async fn tokens(h: &Harness, data: &BTreeMap<String, String>, upn: &str) -> (Value, Value) {
    let body = sign_in_with_code(&h.emu, data, REDIRECT, (upn, PASSWORD))
        .await
        .expect("sign-in");
    let access = claims(body["access_token"].as_str().expect("access token")).unwrap();
    let id = claims(body["id_token"].as_str().expect("ID token")).unwrap();
    (access, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_reaches_both_tokens_and_goes_when_turned_off() {
    let h = harness("fu-on", true).await;
    let fra = h
        .apply_and_wait::<FhirResourceApp>(resource_app("fhir", fhir_spec(true)), CLAIM, "True")
        .await;
    assert_eq!(condition(&fra, "Ready")["status"], "True", "{fra}");
    let st = &fra["status"];
    let app_id = st["clientId"].as_str().unwrap();
    let app_object = st["applicationObjectId"].as_str().unwrap().to_string();
    let ext = format!("extension_{}_fhirUser", app_id.replace('-', ""));
    assert_eq!(st["fhirUser"]["extensionAttribute"], ext.as_str(), "{st}");
    let policy = st["fhirUser"]["claimsMappingPolicyId"]
        .as_str()
        .unwrap()
        .to_string();

    // In Entra: the extension, the policy with the documented definition, acceptMappedClaims, the
    // assignment to the API's service principal.
    let exts = get(
        &h,
        &format!("/applications/{app_object}/extensionProperties"),
    )
    .await;
    let names: Vec<&str> = exts["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, vec![ext.as_str()]);
    let p = get(&h, &format!("/policies/claimsMappingPolicies/{policy}")).await;
    let def: Value = serde_json::from_str(p["definition"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        def["ClaimsMappingPolicy"]["ClaimsSchema"],
        json!([{"Source": "user", "ExtensionID": ext, "JwtClaimType": "fhirUser"}])
    );
    assert!(accepts_mapped_claims(&h, &app_object).await);
    let resource_sp = st["servicePrincipalObjectId"].as_str().unwrap().to_string();
    assert_eq!(applies_to(&h, &policy).await, vec![resource_sp.clone()]);
    let cm = config_map(&h).await;
    assert_eq!(
        cm.get("FHIR_USER_CLAIM").map(String::as_str),
        Some("fhirUser")
    );
    assert_eq!(cm.get("FHIR_USER_EXTENSION_ATTRIBUTE"), Some(&ext));

    // The SMART client gets the same policy on its own service principal.
    let web = h
        .apply_and_wait::<FhirClientApp>(client_app("web", web_spec()), "FhirUserClaim", "True")
        .await;
    let web_st = &web["status"];
    assert_eq!(web_st["fhirUser"]["claimsMappingPolicyId"], policy.as_str());
    let web_sp = web_st["servicePrincipalObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let web_app = web_st["applicationObjectId"].as_str().unwrap().to_string();
    let mut applied = applies_to(&h, &policy).await;
    applied.sort();
    let mut want = vec![resource_sp.clone(), web_sp.clone()];
    want.sort();
    assert_eq!(applied, want);
    assert!(accepts_mapped_claims(&h, &web_app).await);

    // Provisioning sets the clinician's value; both tokens carry it, the nurse's carry none.
    let (code, body) = h
        .graph(
            Method::PATCH,
            &format!("/users/{CLINICIAN_OID}"),
            Some(json!({ext.clone(): "Practitioner/123"})),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    h.wait_condition::<FhirClientApp>("web", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &h.ns.name, "web-fhir-client")
        .await
        .unwrap();
    let (access, id) = tokens(&h, &data, CLINICIAN).await;
    assert_eq!(
        access["aud"], app_id,
        "v2 access token for the FHIR API: {access}"
    );
    assert_eq!(access["fhirUser"], "Practitioner/123", "{access}");
    assert_eq!(id["aud"], data["AZURE_CLIENT_ID"].as_str(), "{id}");
    assert_eq!(id["fhirUser"], "Practitioner/123", "{id}");
    let (access, id) = tokens(&h, &data, NURSE).await;
    assert!(access.get("fhirUser").is_none(), "{access}");
    assert!(id.get("fhirUser").is_none(), "{id}");

    // Off: unassigned everywhere, policy and extension deleted, acceptMappedClaims off on both.
    h.apply::<FhirResourceApp>(resource_app("fhir", fhir_spec(false)))
        .await
        .unwrap();
    h.eventually("the claim taken off", T, || async {
        let fra = h
            .api::<FhirResourceApp>()
            .get("fhir")
            .await
            .map_err(|e| e.to_string())?;
        let web = h
            .api::<FhirClientApp>()
            .get("web")
            .await
            .map_err(|e| e.to_string())?;
        let (fs, ws) = (
            fra.status.unwrap_or_default(),
            web.status.unwrap_or_default(),
        );
        let gone = fs.fhir_user.is_none() && ws.fhir_user.is_none();
        let no_condition = |c: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
            !c.iter().any(|c| c.type_ == "FhirUserClaim")
        };
        (gone && no_condition(&fs.conditions) && no_condition(&ws.conditions))
            .then_some(Some(()))
            .ok_or(format!("{:?} / {:?}", fs.fhir_user, ws.fhir_user))
    })
    .await;
    assert!(operator_policies(&h).await.is_empty());
    let (code, _) = h
        .graph(
            Method::GET,
            &format!("/policies/claimsMappingPolicies/{policy}"),
            None,
        )
        .await;
    assert_eq!(code, 404);
    for sp in [&resource_sp, &web_sp] {
        let assigned = get(
            &h,
            &format!("/servicePrincipals/{sp}/claimsMappingPolicies"),
        )
        .await;
        assert!(ids(&assigned).is_empty(), "{assigned}");
    }
    let exts = get(
        &h,
        &format!("/applications/{app_object}/extensionProperties"),
    )
    .await;
    assert_eq!(exts["value"], json!([]), "{exts}");
    assert!(!accepts_mapped_claims(&h, &app_object).await);
    assert!(!accepts_mapped_claims(&h, &web_app).await);
    let cm = config_map(&h).await;
    assert!(
        !cm.contains_key("FHIR_USER_CLAIM") && !cm.contains_key("FHIR_USER_EXTENSION_ATTRIBUTE"),
        "{cm:?}"
    );
    // Tokens work without the claim.
    let (access, id) = tokens(&h, &data, CLINICIAN).await;
    assert!(access.get("fhirUser").is_none() && id.get("fhirUser").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_resource_app_leaves_no_policy_or_extension() {
    let h = harness("fu-del", true).await;
    let fra = h
        .apply_and_wait::<FhirResourceApp>(resource_app("fhir", fhir_spec(true)), CLAIM, "True")
        .await;
    let app_object = fra["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let web = h
        .apply_and_wait::<FhirClientApp>(client_app("web", web_spec()), "FhirUserClaim", "True")
        .await;
    let web_sp = web["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    let web_app = web["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(operator_policies(&h).await.len(), 1);
    h.delete::<FhirResourceApp>("fhir").await.unwrap();
    h.eventually("the FhirResourceApp gone", T, || async {
        let left = h
            .api::<FhirResourceApp>()
            .get_opt("fhir")
            .await
            .map_err(|e| e.to_string())?;
        left.is_none()
            .then_some(Some(()))
            .ok_or("still there".to_string())
    })
    .await;
    assert!(operator_policies(&h).await.is_empty());
    let assigned = get(
        &h,
        &format!("/servicePrincipals/{web_sp}/claimsMappingPolicies"),
    )
    .await;
    assert!(ids(&assigned).is_empty(), "{assigned}");
    // The application is soft-deleted: its extension was deleted before it.
    let (code, exts) = h
        .graph(
            Method::GET,
            &format!("/applications/{app_object}/extensionProperties"),
            None,
        )
        .await;
    assert!(code == 404 || exts["value"] == json!([]), "{code} {exts}");
    // The client, whose target is gone, takes acceptMappedClaims off its own application.
    h.eventually("the client's acceptMappedClaims off", T, || async {
        let web = h
            .api::<FhirClientApp>()
            .get("web")
            .await
            .map_err(|e| e.to_string())?;
        let recorded = web.status.and_then(|s| s.fhir_user).is_some();
        let on = accepts_mapped_claims(&h, &web_app).await;
        (!recorded && !on)
            .then_some(Some(()))
            .ok_or(format!("recorded {recorded}, on {on}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_policy_permission_the_condition_names_it_and_the_app_works() {
    let h = harness("fu-perm", false).await;
    let fra = h
        .apply_and_wait::<FhirResourceApp>(resource_app("fhir", fhir_spec(true)), CLAIM, "False")
        .await;
    assert_eq!(condition(&fra, "Ready")["status"], "True", "{fra}");
    let c = condition(&fra, "FhirUserClaim");
    assert_eq!(c["reason"], "PolicyWriteNotPermitted", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains(POLICY_PERMISSION),
        "{c}"
    );
    // The extension exists (provisioning can start); no policy, no acceptMappedClaims, no keys.
    let st = &fra["status"];
    assert!(st["fhirUser"]["extensionAttribute"].is_string(), "{st}");
    assert!(st["fhirUser"]["claimsMappingPolicyId"].is_null(), "{st}");
    let app_object = st["applicationObjectId"].as_str().unwrap();
    assert!(!accepts_mapped_claims(&h, app_object).await);
    assert!(!config_map(&h).await.contains_key("FHIR_USER_CLAIM"));
    // A SMART client of it is Ready too, and says why it has no claim.
    let web = h
        .apply_and_wait::<FhirClientApp>(client_app("web", web_spec()), "Ready", "True")
        .await;
    let c = condition(&web, "FhirUserClaim");
    assert_eq!(c["reason"], "WaitingForFhirUserClaim", "{web}");
    assert!(
        c["message"].as_str().unwrap().contains(POLICY_PERMISSION),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_left_by_a_crash_is_found_again_not_duplicated() {
    let mut h = harness("fu-crash", true).await;
    // The resource exists before the operator runs; a reconcile killed after creating its policy
    // (twice, even) left them, tagged with the resource's uid, and no status.
    h.stop_operator().await;
    let fra: FhirResourceApp = h
        .apply(resource_app("fhir", fhir_spec(true)))
        .await
        .unwrap();
    let uid = fra.metadata.uid.unwrap();
    let name = format!("fhirapps.io fhirUser {}/fhir {uid}", h.ns.name);
    let stale = r#"{"ClaimsMappingPolicy":{"Version":1,"IncludeBasicClaimSet":"true","ClaimsSchema":[{"Source":"user","ExtensionID":"extension_0_fhirUser","JwtClaimType":"fhirUser"}]}}"#;
    let mut left = vec![];
    for _ in 0..2 {
        let body = json!({"displayName": name, "definition": [stale]});
        let (code, p) = h
            .graph(Method::POST, "/policies/claimsMappingPolicies", Some(body))
            .await;
        assert_eq!(code, 201, "{p}");
        left.push(p["id"].as_str().unwrap().to_string());
    }
    h.start_operator(h.config()).await;
    let fra = h
        .wait_condition::<FhirResourceApp>("fhir", "FhirUserClaim", "True", T)
        .await;
    let policies = operator_policies(&h).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    let kept = policies[0]["id"].as_str().unwrap();
    assert!(
        left.contains(&kept.to_string()),
        "one of those left, not a new one"
    );
    assert_eq!(fra["status"]["fhirUser"]["claimsMappingPolicyId"], kept);
    // Its definition is the desired one again.
    let ext = fra["status"]["fhirUser"]["extensionAttribute"]
        .as_str()
        .unwrap();
    let def: Value = serde_json::from_str(policies[0]["definition"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        def["ClaimsMappingPolicy"]["ClaimsSchema"][0]["ExtensionID"],
        ext
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_audience_off_verified_domains_is_refused_with_the_fix() {
    let h = harness("fu-aud", true).await;
    // api://{tenantId}/fhir is allowed by the default identifier-URI policy but not on a verified domain.
    let tid = h.emu.tenant_id();
    let spec = json!({"fhirUrl": "https://fhir.contoso.example", "identifierUri": format!("api://{tid}/fhir"),
                      "smart": {"enabled": true, "fhirUserClaim": true}});
    let fra = h
        .apply_and_wait::<FhirResourceApp>(resource_app("fhir", spec), "FhirUserClaim", "False")
        .await;
    assert_eq!(condition(&fra, "Ready")["status"], "True", "{fra}");
    let c = condition(&fra, "FhirUserClaim");
    assert_eq!(c["reason"], "AudienceNotVerified", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("requestedAccessTokenVersion: 2"),
        "{c}"
    );
    assert!(operator_policies(&h).await.is_empty());
    assert!(fra["status"]["fhirUser"].is_null());
}

/// The operator killed right after it created the policy (every Graph call slowed, so the kill
/// lands before the status write) and started again: still one policy, the one it created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_creating_the_policy_makes_no_second_one() {
    let mut h = harness("fu-kill", true).await;
    h.apply_and_wait::<FhirResourceApp>(resource_app("fhir", fhir_spec(false)), "Ready", "True")
        .await;
    let fast = h.emu.realism();
    let mut slow = fast.clone();
    slow.latency_ms = 300;
    h.emu.set_realism(slow);
    h.apply::<FhirResourceApp>(resource_app("fhir", fhir_spec(true)))
        .await
        .unwrap();
    let created = |h: &Harness| {
        h.emu
            .calls()
            .iter()
            .any(|c| c.operation == "claimsMappingPolicies.create")
    };
    let deadline = std::time::Instant::now() + T;
    while !created(&h) {
        assert!(std::time::Instant::now() < deadline, "no policy created");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.kill_operator().await;
    let fra = h.api::<FhirResourceApp>().get("fhir").await.unwrap();
    let recorded = fra.status.and_then(|s| s.fhir_user);
    assert!(
        recorded.is_none(),
        "killed before the status write: {recorded:?}"
    );
    let left = operator_policies(&h).await;
    assert_eq!(left.len(), 1, "{left:?}");
    h.emu.set_realism(fast);
    h.start_operator(h.config()).await;
    let fra = h
        .wait_condition::<FhirResourceApp>("fhir", CLAIM, "True", T)
        .await;
    let policies = operator_policies(&h).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(policies[0]["id"], left[0]["id"]);
    assert_eq!(
        fra["status"]["fhirUser"]["claimsMappingPolicyId"],
        left[0]["id"]
    );
}

const SERVICE: &str = "/subscriptions/6a1b2c3d-0000-4000-8000-000000000025/resourceGroups/health/providers/Microsoft.HealthcareApis/workspaces/ws1/fhirservices/fhir1";
const SMART_USER_ROLE: &str = "4ba50f17-9666-485c-a643-ff00808643f0";
const AUDIENCE_URI: &str = "https://fhir-app.contoso.example";

/// The managed service (issue 25 item 4): a SMART client of it gets the `FHIR SMART User` role on
/// the service through ARM, and, through the FhirResourceApp that stands for the service's audience
/// (`target.managed.audienceResourceAppRef`), that app's audience and the `fhirUser` claim in both
/// tokens; its status says how to set the service's audience, the one step the operator leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_client_of_the_managed_service_gets_its_role_and_the_claim_through_the_audience_app()
 {
    let mut h = Harness::with_emulator("fu-managed", |cfg, _| {
        let operator = cfg.tenants[0].apps[0].client_id.clone();
        let mut permissions = full_permissions();
        permissions.push(POLICY_PERMISSION.into());
        cfg.tenants[0].apps[0].permissions = permissions;
        cfg.tenants[0].users = vec![user(CLINICIAN, Some(CLINICIAN_OID))];
        cfg.arm.fhir_services = vec![entra_emulator::FhirServiceConfig {
            resource_id: SERVICE.into(),
            audience: Some(AUDIENCE_URI.into()),
        }];
        cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
            scope: SERVICE.into(),
            role: "Role Based Access Control Administrator".into(),
            principal_client_id: Some(operator),
            ..Default::default()
        }];
    })
    .await;
    let mut cfg = h.config();
    cfg.arm_url = h.emu.base_url();
    h.start_operator(cfg).await;
    // v1 tokens whose audience is on a verified domain, as the AHDS sample registers it.
    let audience_app = json!({"fhirUrl": "https://ws1-fhir1.fhir.azurehealthcareapis.com",
        "identifierUri": AUDIENCE_URI, "appRoleAssignmentRequired": false,
        "smart": {"enabled": true, "fhirUserClaim": true}});
    let fra = h
        .apply_and_wait::<FhirResourceApp>(
            resource_app("ahds-audience", audience_app),
            CLAIM,
            "True",
        )
        .await;
    let notes = fra["status"]["notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains(&format!(
            "properties.authenticationConfiguration.audience={AUDIENCE_URI}"
        )),
        "{notes}"
    );
    let ext = fra["status"]["fhirUser"]["extensionAttribute"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = json!({"type": "Confidential", "redirectUris": [REDIRECT], "grantAdminConsent": true,
        "target": {"managed": {"resourceId": SERVICE, "dataRoles": ["FHIR SMART User"],
                               "audienceResourceAppRef": {"name": "ahds-audience"}}}});
    let web = h
        .apply_and_wait::<FhirClientApp>(client_app("smart", spec), CLAIM, "True")
        .await;
    assert_eq!(condition(&web, "Ready")["status"], "True", "{web}");
    let st = &web["status"];
    let roles = st["roleAssignments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(roles.iter().any(|r| r["role"] == "FHIR SMART User"), "{st}");
    let notes = st["notes"].as_str().unwrap_or_default();
    assert!(notes.contains(&format!("az resource update --ids {SERVICE} --set properties.authenticationConfiguration.audience={AUDIENCE_URI}")), "{notes}");
    let data = secret_data(&h.client, &h.ns.name, "smart-fhir-client")
        .await
        .unwrap();
    assert_eq!(data["FHIR_AUDIENCE"], AUDIENCE_URI);
    assert_eq!(
        data["FHIR_URL"],
        "https://ws1-fhir1.fhir.azurehealthcareapis.com"
    );
    // The role is on the service (ARM), for the client's service principal.
    let sp = st["servicePrincipalObjectId"].as_str().unwrap();
    let url = format!("{}/_emulator/arm/role-assignments", h.emu.base_url());
    let listed: Value = h.http.get(url).send().await.unwrap().json().await.unwrap();
    let held = listed["value"].as_array().unwrap().iter().any(|a| {
        a["properties"]["principalId"] == sp
            && a["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap_or("")
                .ends_with(SMART_USER_ROLE)
    });
    assert!(held, "{listed}");
    // A provisioned user's tokens: the access token is for the audience app and carries fhirUser,
    // as does the client's ID token.
    let (code, body) = h
        .graph(
            Method::PATCH,
            &format!("/users/{CLINICIAN_OID}"),
            Some(json!({ext: "Practitioner/7"})),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let (access, id) = tokens(&h, &data, CLINICIAN).await;
    assert_eq!(access["aud"], AUDIENCE_URI, "{access}");
    assert_eq!(access["fhirUser"], "Practitioner/7", "{access}");
    assert_eq!(id["fhirUser"], "Practitioner/7", "{id}");
}

/// `acceptMappedClaims` turned off out of band on a SMART client makes Entra refuse all its tokens
/// (AADSTS50146); the delta watcher names the application and the operator turns it back on, with
/// no full re-read in the test (`config_delta_only`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_mapped_claims_turned_off_out_of_band_comes_back_through_delta() {
    let mut permissions = full_permissions();
    permissions.push(POLICY_PERMISSION.into());
    let mut h = Harness::with_emulator("fu-drift", |cfg, _| {
        cfg.tenants[0].apps[0].permissions = permissions;
    })
    .await;
    h.start_operator(h.config_delta_only()).await;
    h.apply_and_wait::<FhirResourceApp>(resource_app("fhir", fhir_spec(true)), CLAIM, "True")
        .await;
    let web = h
        .apply_and_wait::<FhirClientApp>(client_app("web", web_spec()), CLAIM, "True")
        .await;
    let web_app = web["status"]["applicationObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(accepts_mapped_claims(&h, &web_app).await);
    let (code, body) = h
        .graph(
            Method::PATCH,
            &format!("/applications/{web_app}"),
            Some(json!({"api": {"acceptMappedClaims": false}})),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    h.eventually(
        "acceptMappedClaims back on",
        Duration::from_secs(30),
        || async { Ok::<_, String>(accepts_mapped_claims(&h, &web_app).await.then_some(())) },
    )
    .await;
}
