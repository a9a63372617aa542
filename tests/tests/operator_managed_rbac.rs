//! The managed FHIR service end to end: a client with `target.managed.dataRoles` gets Azure RBAC role
//! assignments on the FHIR service through Azure Resource Manager (the emulator's ARM surface), and
//! the emulator's stand-in for the service's authorisation decision answers its FHIR requests by
//! them — through ARM's replication lag, adoption of an existing assignment, removal, deletion and a
//! missing permission.

use std::time::Duration;

use fhir_app_operator::api::FhirClientApp;
use fhir_app_operator_tests::operator::{Harness, client_app, condition, secret_data};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(90);
const SCOPE: &str = "/subscriptions/6a1b2c3d-0000-4000-8000-000000000016/resourceGroups/health/providers/Microsoft.HealthcareApis/workspaces/ws1/fhirservices/fhir1";
const READER: &str = "4c8d0bbc-75d3-4935-991f-5f3c56d81508";
const WRITER: &str = "3f88fce4-5892-4214-ae73-ba5294559913";

/// The "constrain roles" condition for FHIR Data Reader and Writer (docs/permissions.md).
fn condition_for(guids: &[&str]) -> String {
    let set = guids.join(", ");
    format!(
        "((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{set}}})) AND ((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/delete'}})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{set}}}))"
    )
}

/// An emulator with the FHIR service, ARM's replication lag, a data-plane propagation delay and,
/// when `grant`, the operator's least-privilege right to assign FHIR Data Reader and Writer there;
/// the operator started with ARM at the emulator.
async fn harness(prefix: &str, grant: bool, lag_ms: u64) -> Harness {
    let mut h = emulator(prefix, grant, lag_ms).await;
    let mut cfg = h.config();
    cfg.arm_url = h.emu.base_url();
    cfg.stalled_retry = Duration::from_secs(3);
    h.start_operator(cfg).await;
    h
}

/// [`harness`] without the operator.
async fn emulator(prefix: &str, grant: bool, lag_ms: u64) -> Harness {
    Harness::with_emulator(prefix, |cfg, _| {
        let operator = cfg.tenants[0].apps[0].client_id.clone();
        cfg.arm.principal_lag_ms = lag_ms;
        cfg.arm.propagation_ms = 1500;
        cfg.arm.fhir_services = vec![entra_emulator::FhirServiceConfig {
            resource_id: SCOPE.into(),
            audience: None,
        }];
        if grant {
            cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
                scope: SCOPE.into(),
                role: "Role Based Access Control Administrator".into(),
                principal_client_id: Some(operator),
                condition: Some(condition_for(&[READER, WRITER])),
                ..Default::default()
            }];
        }
    })
    .await
}

fn managed(h: &Harness, roles: &[&str]) -> Value {
    json!({"type": "Service", "target": {"managed": {
        "resourceId": SCOPE,
        "fhirUrl": format!("{}/fhir/ws1-fhir1", h.emu.base_url()),
        "dataRoles": roles,
    }}})
}

/// Applies client `svc` wanting `roles` and waits until it is Ready; returns it and its service
/// principal's object id.
async fn apply_ready(h: &Harness, roles: &[&str]) -> (Value, String) {
    h.apply::<FhirClientApp>(client_app("svc", managed(h, roles)))
        .await
        .unwrap();
    let ready = h
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    let sp = ready["status"]["servicePrincipalObjectId"]
        .as_str()
        .unwrap()
        .to_string();
    (ready, sp)
}

/// Every live role assignment in the emulator's ARM.
async fn arm_assignments(h: &Harness) -> Vec<Value> {
    let v: Value = h
        .http
        .get(format!(
            "{}/_emulator/arm/role-assignments",
            h.emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

fn of_principal(all: &[Value], principal: &str) -> Vec<Value> {
    all.iter()
        .filter(|a| a["properties"]["principalId"] == principal)
        .cloned()
        .collect()
}

/// A FHIR request with a token got with nothing but the Secret's values; returns the status.
async fn fhir(
    h: &Harness,
    data: &std::collections::BTreeMap<String, String>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    let tok: Value = h
        .http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            data["AZURE_AUTHORITY_HOST"], data["AZURE_TENANT_ID"]
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", data["AZURE_CLIENT_ID"].as_str()),
            ("client_secret", data["AZURE_CLIENT_SECRET"].as_str()),
            ("scope", data["FHIR_SCOPE"].as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().expect("a token").to_string();
    let url = format!("{}/{path}", data["FHIR_URL"].trim_end_matches('/'));
    let mut req = h.http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_service_client_reads_a_patient_with_its_secret_alone_and_is_refused_once_its_roles_are_removed()
 {
    let h = harness("op-rbac-e2e", true, 3000).await;
    let (ready, sp) = apply_ready(&h, &["FHIR Data Reader", "FHIR Data Writer"]).await;
    // ARM did not see the new service principal at first; the operator retried until it did.
    let lagged = h
        .emu
        .calls()
        .iter()
        .filter(|c| c.operation == "arm.roleAssignments.put" && c.status == 400)
        .count();
    assert!(
        lagged >= 1,
        "expected PrincipalNotFound answers: {:?}",
        h.call_counts()
    );
    let recorded = ready["status"]["roleAssignments"].as_array().unwrap();
    assert_eq!(recorded.len(), 2, "{}", ready["status"]);
    assert_eq!(recorded[0]["role"], "FHIR Data Reader");
    assert_eq!(recorded[0]["scope"], SCOPE);
    let arm = of_principal(&arm_assignments(&h).await, &sp);
    assert_eq!(arm.len(), 2, "{arm:?}");
    for a in &arm {
        assert_eq!(a["properties"]["principalType"], "ServicePrincipal");
        assert!(recorded.iter().any(|r| r["name"] == a["name"]), "{a}");
    }
    let data = secret_data(&h.client, &h.ns.name, "svc-fhir-client")
        .await
        .unwrap();
    assert_eq!(
        data["FHIR_AUDIENCE"],
        "https://ws1-fhir1.fhir.azurehealthcareapis.com"
    );
    // After the propagation delay the service answers the client's write and read.
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Chalmers"}]});
    h.eventually("the Patient write is allowed", T, || async {
        let s = fhir(
            &h,
            &data,
            reqwest::Method::PUT,
            "Patient/p1",
            Some(patient.clone()),
        )
        .await;
        if s == 201 || s == 200 {
            Ok(Some(()))
        } else {
            Err(format!("PUT {s}"))
        }
    })
    .await;
    assert_eq!(
        fhir(&h, &data, reqwest::Method::GET, "Patient/p1", None).await,
        200
    );
    // The consumer a job would use, with nothing but the Secret: azure-identity's
    // EnvironmentCredential and requests (the same Service client as against the open-source server).
    let tools = fhir_app_operator_tests::fhir::installed();
    let calls = fhir_app_operator_tests::fhir::service_calls(
        &h,
        &tools,
        &data,
        &Default::default(),
        &["read:p1", "write"],
    )
    .await;
    let statuses: Vec<_> = calls.iter().map(|c| c["status"].clone()).collect();
    assert_eq!(statuses, [json!(200), json!(201)], "{calls:?}");
    assert_eq!(calls[0]["resourceType"], "Patient", "{calls:?}");
    // Roles no longer wanted are removed; the service then refuses the client.
    let (done, _) = apply_ready(&h, &[]).await;
    assert!(
        done["status"]["roleAssignments"].is_null(),
        "{}",
        done["status"]
    );
    assert!(of_principal(&arm_assignments(&h).await, &sp).is_empty());
    h.eventually("the Patient read is refused", T, || async {
        let s = fhir(&h, &data, reqwest::Method::GET, "Patient/p1", None).await;
        if s == 403 {
            Ok(Some(()))
        } else {
            Err(format!("GET {s}"))
        }
    })
    .await;
}

#[tokio::test]
async fn without_the_right_to_assign_roles_the_client_stalls_naming_it_and_recovers_once_granted() {
    let h = harness("op-rbac-denied", false, 0).await;
    h.apply::<FhirClientApp>(client_app("svc", managed(&h, &["FHIR Data Reader"])))
        .await
        .unwrap();
    let stalled = h
        .wait_condition::<FhirClientApp>("svc", "Stalled", "True", T)
        .await;
    let c = condition(&stalled, "Stalled");
    assert_eq!(c["reason"], "RoleAssignmentPermissionMissing", "{c}");
    let msg = c["message"].as_str().unwrap();
    for needle in [
        "Microsoft.Authorization/roleAssignments/write",
        "Role Based Access Control Administrator",
        "az role assignment create",
        SCOPE,
    ] {
        assert!(msg.contains(needle), "{needle} not in: {msg}");
    }
    assert_ne!(condition(&stalled, "Ready")["status"], "True");
    // The administrator grants it (constrained to the FHIR data roles); the next retry succeeds.
    let r = h
        .http
        .post(format!("{}/_emulator/arm/role-assignments", h.emu.base_url()))
        .json(&json!({"scope": SCOPE, "role": "Role Based Access Control Administrator",
            "principal_client_id": h.emu.client_id(), "condition": condition_for(&[READER, WRITER])}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ready = h
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    assert_eq!(
        ready["status"]["roleAssignments"][0]["role"],
        "FHIR Data Reader"
    );
}

#[tokio::test]
async fn an_existing_assignment_is_adopted_and_deletion_leaves_no_assignment() {
    let h = harness("op-rbac-adopt", true, 0).await;
    let (_, sp) = apply_ready(&h, &[]).await;
    // Someone assigned FHIR Data Reader by hand, under a name of their own.
    let made: Value = h
        .http
        .post(format!(
            "{}/_emulator/arm/role-assignments",
            h.emu.base_url()
        ))
        .json(&json!({"scope": SCOPE, "role": "FHIR Data Reader", "principal_id": sp}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "svc",
        managed(&h, &["FHIR Data Reader", "FHIR Data Writer"]),
    ))
    .await
    .unwrap();
    let ready = h
        .eventually("both roles recorded", T, || async {
            let o = h
                .api::<FhirClientApp>()
                .get("svc")
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&o).unwrap();
            let n = v["status"]["roleAssignments"]
                .as_array()
                .map_or(0, Vec::len);
            if n == 2 {
                Ok(Some(v))
            } else {
                Err(v["status"].to_string())
            }
        })
        .await;
    let reader = &ready["status"]["roleAssignments"][0];
    assert_eq!(reader["role"], "FHIR Data Reader");
    assert_eq!(
        reader["name"], made["name"],
        "the existing assignment is adopted"
    );
    assert_eq!(of_principal(&arm_assignments(&h).await, &sp).len(), 2);
    // Deleting the client removes every assignment of its service principal.
    h.delete::<FhirClientApp>("svc").await.unwrap();
    h.eventually("the client is gone", T, || async {
        match h
            .api::<FhirClientApp>()
            .get_opt("svc")
            .await
            .map_err(|e| e.to_string())?
        {
            None => Ok(Some(())),
            Some(_) => Err("still there".into()),
        }
    })
    .await;
    let left = of_principal(&arm_assignments(&h).await, &sp);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// ARM calls per managed client: on create (a list, one PUT per role) and per resync (one list, no
/// write), counted in the emulator's request log. Prints the figures the closing note quotes.
#[tokio::test]
async fn arm_calls_per_managed_client_on_create_and_per_resync() {
    const N: usize = 5;
    let h = harness("op-rbac-count", true, 0).await;
    for i in 0..N {
        h.apply::<FhirClientApp>(client_app(
            &format!("c{i}"),
            managed(&h, &["FHIR Data Reader", "FHIR Data Writer"]),
        ))
        .await
        .unwrap();
    }
    for i in 0..N {
        h.wait_condition::<FhirClientApp>(&format!("c{i}"), "Ready", "True", T)
            .await;
    }
    let arm = |calls: &[entra_emulator::CallRecord]| {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for c in calls.iter().filter(|c| c.operation.starts_with("arm.")) {
            *m.entry(format!("{} {}", c.operation, c.status))
                .or_default() += 1;
        }
        m
    };
    let create = arm(&h.emu.calls());
    println!("ARM calls for {N} managed clients with 2 roles each, on create: {create:?}");
    assert_eq!(create.get("arm.roleAssignments.put 201"), Some(&(2 * N)));
    assert_eq!(create.get("arm.roleAssignments.list 200"), Some(&N));
    // The operator's own metric agrees with the emulator's log.
    assert_eq!(
        h.metrics
            .counter_sum("fhir_operator_arm_calls_total", "putRoleAssignment"),
        (2 * N) as f64
    );
    // Resyncs (every 3 s in the tests): one list per client each, nothing written.
    let before = h.emu.calls().len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let calls = h.emu.calls();
    let resync = arm(&calls[before..]);
    let lists = resync
        .get("arm.roleAssignments.list 200")
        .copied()
        .unwrap_or(0);
    let graph = calls[before..]
        .iter()
        .filter(|c| !c.operation.starts_with("arm.") && c.operation != "token")
        .count();
    println!(
        "ARM calls in 10 s of resyncs (3 s period) for {N} clients: {resync:?}; Graph calls meanwhile: {graph}"
    );
    assert!(
        lists >= N,
        "each client's resync lists its assignments: {resync:?}"
    );
    assert_eq!(
        resync
            .keys()
            .filter(|k| !k.starts_with("arm.roleAssignments.list"))
            .count(),
        0,
        "{resync:?}"
    );
}

/// ARM's replication lag longer than one reconcile's retries: the client reports Reconciling with
/// reason PrincipalNotFound (not Stalled, not Ready), then becomes Ready by itself.
#[tokio::test]
async fn a_long_replication_lag_is_reported_as_reconciling_and_then_ready() {
    let h = harness("op-rbac-lag", true, 15_000).await;
    h.apply::<FhirClientApp>(client_app("svc", managed(&h, &["FHIR Data Reader"])))
        .await
        .unwrap();
    let waiting = h
        .wait_condition::<FhirClientApp>("svc", "Reconciling", "True", T)
        .await;
    let c = condition(&waiting, "Reconciling");
    assert_eq!(c["reason"], "PrincipalNotFound", "{c}");
    assert_ne!(condition(&waiting, "Stalled")["status"], "True");
    assert_ne!(condition(&waiting, "Ready")["status"], "True");
    let ready = h
        .wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    assert_eq!(
        ready["status"]["roleAssignments"][0]["role"],
        "FHIR Data Reader"
    );
}

/// An assignment removed out of band (in the portal, by `az role assignment delete`) is put back
/// under the same name at the next resync.
#[tokio::test]
async fn an_assignment_removed_out_of_band_is_restored_at_the_next_resync() {
    let h = harness("op-rbac-drift", true, 0).await;
    let (ready, sp) = apply_ready(&h, &["FHIR Data Reader"]).await;
    let name = ready["status"]["roleAssignments"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Deleted through ARM itself, with the operator's own identity (it may delete FHIR roles there).
    let tok: Value = h
        .http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            h.emu.authority_host(),
            h.emu.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", h.emu.client_id().as_str()),
            ("client_secret", h.emu.client_secret().as_str()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}{SCOPE}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
        h.emu.base_url()
    );
    let r = h
        .http
        .delete(&url)
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(of_principal(&arm_assignments(&h).await, &sp).is_empty());
    h.eventually("the assignment is back", T, || async {
        let now = of_principal(&arm_assignments(&h).await, &sp);
        match now.as_slice() {
            [a] if a["name"] == name.as_str() => Ok(Some(())),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// ARM at an address nothing listens on (a wrong `FHIR_OP_ARM_URL`, or an operator started without
/// the emulator's ARM endpoint): the client says which host it cannot reach and which setting to
/// check, as a reason of its own, and keeps retrying.
#[tokio::test]
async fn an_arm_endpoint_that_cannot_be_reached_is_named_in_the_condition() {
    let mut h = emulator("op-rbac-unreachable", true, 0).await;
    let closed = testenv::free_port();
    let mut cfg = h.config();
    cfg.arm_url = format!("http://127.0.0.1:{closed}");
    h.start_operator(cfg).await;
    h.apply::<FhirClientApp>(client_app("svc", managed(&h, &["FHIR Data Reader"])))
        .await
        .unwrap();
    let api = h.api::<FhirClientApp>();
    let c = h
        .eventually("Reconciling with reason Unreachable", T, || async {
            let o = api.get("svc").await.map_err(|e| e.to_string())?;
            let c = condition(&serde_json::to_value(&o).unwrap(), "Reconciling");
            if c["status"] == "True" && c["reason"] == "Unreachable" {
                Ok(Some(c))
            } else {
                Err(c.to_string())
            }
        })
        .await;
    assert_eq!(
        c["message"],
        format!("cannot reach 127.0.0.1:{closed}: connection refused (is FHIR_OP_ARM_URL right?)"),
        "{c}"
    );
}

/// Issue 23 item 5: a managed target named by its Azure Health Data Services URL alone (no
/// `resourceId`) gets that URL as its audience, not the retired Azure API for FHIR's generic one.
#[tokio::test]
async fn an_ahds_url_alone_gives_its_own_audience() {
    let mut h = harness("op-ahds-url", false, 0).await;
    let url = "https://contosohealth-fhir.fhir.azurehealthcareapis.com";
    h.apply::<FhirClientApp>(client_app(
        "svc",
        json!({"type": "Service", "target": {"managed": {"fhirUrl": url}}}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirClientApp>("svc", "Ready", "True", T)
        .await;
    let data = secret_data(&h.client, &h.ns.name, "svc-fhir-client")
        .await
        .unwrap();
    assert_eq!(data["FHIR_AUDIENCE"], url);
    assert_eq!(data["FHIR_SCOPE"], format!("{url}/.default"));
    h.stop_operator().await;
}
