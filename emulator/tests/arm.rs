//! The emulator's Azure Resource Manager surface: role-assignment rules (permission at the scope or a
//! parent, the "constrain roles" condition, 409 for the same grant under another name, names that
//! cannot be reused, list filters, api-version) and the managed FHIR stand-in's decision (audience,
//! assignment, propagation delay).
mod common;
use common::*;
use serde_json::{Value, json};

const SUB: &str = "/subscriptions/11111111-0000-4000-8000-000000000001";
const SCOPE: &str = "/subscriptions/11111111-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/f";
const READER: &str = "4c8d0bbc-75d3-4935-991f-5f3c56d81508";
const CONTRIBUTOR: &str = "5a1fc7df-4bf1-4951-a576-89034ee01acd";

struct Arm {
    emu: entra_emulator::Running,
    c: reqwest::Client,
    token: String,
    principal: String,
}

/// An emulator whose bootstrap app may assign FHIR Data Reader only (RBAC Administrator with the
/// condition) on the FHIR service, and a new service principal to assign roles to.
async fn arm(propagation_ms: u64) -> Arm {
    let mut cfg = config();
    let operator = cfg.tenants[0].apps[0].client_id.clone();
    cfg.arm.propagation_ms = propagation_ms;
    cfg.arm.fhir_services = vec![entra_emulator::FhirServiceConfig {
        resource_id: SCOPE.into(),
        audience: None,
    }];
    cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
        scope: SCOPE.into(),
        role: "Role Based Access Control Administrator".into(),
        principal_client_id: Some(operator.clone()),
        condition: Some(format!(
            "((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{READER}}}))"
        )),
        ..Default::default()
    }];
    let (emu, c) = start(cfg).await;
    let (_, t) = secret_token(
        &c,
        &emu,
        &operator,
        &emu.client_secret(),
        "https://management.azure.com/.default",
    )
    .await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let admin = emu.admin_token(&emu.tenant_id());
    let post = |path: &str, body: Value| {
        c.post(format!("{}{path}", emu.graph_url()))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let app: Value = post("/applications", json!({"displayName": "client"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sp: Value = post("/servicePrincipals", json!({"appId": app["appId"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Arm {
        principal: sp["id"].as_str().unwrap().into(),
        emu,
        c,
        token,
    }
}

impl Arm {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut r = self
            .c
            .request(
                method,
                format!("{}{path}{sep}api-version=2022-04-01", self.emu.base_url()),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    async fn put(&self, scope: &str, name: &str, role: &str) -> (u16, Value) {
        let body = json!({"properties": {"principalId": self.principal, "principalType": "ServicePrincipal",
            "roleDefinitionId": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}")}});
        self.call(
            reqwest::Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            Some(body),
        )
        .await
    }
}

#[tokio::test]
async fn role_assignment_rules() {
    let a = arm(0).await;
    let name = uuid();
    // The condition admits FHIR Data Reader only.
    let (st, v) = a.put(SCOPE, &uuid(), CONTRIBUTOR).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed")),
        "{v}"
    );
    // No right above the FHIR service.
    let (st, _) = a
        .put(&format!("{SUB}/resourceGroups/rg"), &uuid(), READER)
        .await;
    assert_eq!(st, 403);
    let (st, v) = a.put(SCOPE, &name, READER).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["properties"]["scope"], SCOPE);
    // Same PUT again: 200; same grant under another name: 409 naming the existing one.
    assert_eq!(a.put(SCOPE, &name, READER).await.0, 200);
    let (st, v) = a.put(SCOPE, &uuid(), READER).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&name.replace('-', ""))
    );
    // A name is never reused for another grant.
    let body = json!({"properties": {"principalId": uuid(), "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}")}});
    let (st, v) = a
        .call(
            reqwest::Method::PUT,
            &format!("{SCOPE}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            Some(body),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    // Lists: by principal (at, above, below) and atScope() (at and above).
    let filter = format!("$filter=principalId%20eq%20'{}'", a.principal);
    let (_, v) = a
        .call(
            reqwest::Method::GET,
            &format!("{SCOPE}/providers/Microsoft.Authorization/roleAssignments?{filter}"),
            None,
        )
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = a
        .call(
            reqwest::Method::GET,
            &format!("{SCOPE}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()"),
            None,
        )
        .await;
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        2,
        "the seed and ours: {v}"
    );
    // api-version is required.
    let r =
        a.c.get(format!(
            "{}{SCOPE}/providers/Microsoft.Authorization/roleAssignments",
            a.emu.base_url()
        ))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // DELETE: 200 with the assignment, then 204; GET then 404 RoleAssignmentNotFound.
    let path = format!("{SCOPE}/providers/Microsoft.Authorization/roleAssignments/{name}");
    assert_eq!(a.call(reqwest::Method::DELETE, &path, None).await.0, 200);
    assert_eq!(a.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    let (st, v) = a.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("RoleAssignmentNotFound"))
    );
    // A Graph token is not an ARM token.
    let r =
        a.c.get(format!("{}{path}?api-version=2022-04-01", a.emu.base_url()))
            .bearer_auth(a.emu.admin_token(&a.emu.tenant_id()))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_fhir_stand_in_answers_by_audience_and_role_assignment_after_propagation() {
    let a = arm(1500).await;
    // The client: a secret, and a token for the service's audience (and one for another audience).
    let admin = a.emu.admin_token(&a.emu.tenant_id());
    let apps: Value =
        a.c.get(format!(
            "{}/servicePrincipals/{}",
            a.emu.graph_url(),
            a.principal
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = apps["appId"].as_str().unwrap().to_string();
    let app: Value =
        a.c.get(format!(
            "{}/applications(appId='{app_id}')",
            a.emu.graph_url()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pw: Value =
        a.c.post(format!(
            "{}/applications/{}/addPassword",
            a.emu.graph_url(),
            app["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = pw["secretText"].as_str().unwrap();
    let tok = |scope: &'static str| {
        let (c, emu, app_id) = (&a.c, &a.emu, app_id.clone());
        async move {
            secret_token(c, emu, &app_id, secret, scope).await.1["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let fhir_tok = tok("https://ws-f.fhir.azurehealthcareapis.com/.default").await;
    let other_tok = tok("https://other-f.fhir.azurehealthcareapis.com/.default").await;
    let get = |t: String| {
        let url = format!("{}/fhir/ws-f/Patient/x", a.emu.base_url());
        let c = a.c.clone();
        async move {
            c.get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(other_tok).await, 401, "another service's audience");
    assert_eq!(get(fhir_tok.clone()).await, 403, "no role assignment");
    assert_eq!(a.put(SCOPE, &uuid(), READER).await.0, 201);
    assert_eq!(get(fhir_tok.clone()).await, 403, "not propagated yet");
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert_eq!(
        get(fhir_tok.clone()).await,
        404,
        "allowed: the Patient does not exist"
    );
    let put =
        a.c.put(format!("{}/fhir/ws-f/Patient/x", a.emu.base_url()))
            .bearer_auth(&fhir_tok)
            .json(&json!({"resourceType": "Patient"}))
            .send()
            .await
            .unwrap();
    assert_eq!(put.status(), 403, "a Reader may not write");
}
