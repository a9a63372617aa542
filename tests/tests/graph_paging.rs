//! Graph pages collections (100 items by default, `@odata.nextLink` to the next page): the
//! operator's Graph client reads every page, so a service principal with more than one page of
//! app role assignments is read whole (a first page alone made the operator re-assign or keep roles
//! it could not see).

use std::sync::Arc;

use fhir_app_operator::graph::ratelimit::{Limit, RateLimiter};
use fhir_app_operator::graph::{Credential, Endpoints, GraphClient, http_client};
use fhir_app_operator::metrics::Metrics;
use fhir_app_operator_tests::operator::{Harness, full_permissions};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn every_page_of_a_service_principals_assignments_is_read() {
    let h = Harness::new("paging", full_permissions()).await;
    let roles: Vec<Value> = (0..105)
        .map(|i| {
            json!({"id": uuid::Uuid::new_v4(), "value": format!("role{i}"), "displayName": format!("role {i}"),
                   "description": "r", "allowedMemberTypes": ["Application"], "isEnabled": true})
        })
        .collect();
    let (code, resource) = h
        .graph(
            Method::POST,
            "/applications",
            Some(json!({"displayName": "paged resource", "appRoles": roles})),
        )
        .await;
    assert_eq!(code, 201, "{resource}");
    let sp = |app: &Value| json!({"appId": app["appId"]});
    let (_, resource_sp) = h
        .graph(Method::POST, "/servicePrincipals", Some(sp(&resource)))
        .await;
    let (_, client) = h
        .graph(
            Method::POST,
            "/applications",
            Some(json!({"displayName": "paged client"})),
        )
        .await;
    let (_, client_sp) = h
        .graph(Method::POST, "/servicePrincipals", Some(sp(&client)))
        .await;
    for role in &roles {
        let (code, body) = h
            .graph(
                Method::POST,
                &format!("/servicePrincipals/{}/appRoleAssignedTo", resource_sp["id"].as_str().unwrap()),
                Some(json!({"principalId": client_sp["id"], "resourceId": resource_sp["id"], "appRoleId": role["id"]})),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }
    let graph = GraphClient::new(
        http_client(Some(h.emu.ca_pem().as_bytes())).unwrap(),
        Endpoints::new(&h.emu.graph_url(), &h.emu.authority_host()),
        h.emu.tenant_id(),
        Credential::Secret {
            client_id: h.emu.client_id(),
            secret: h.emu.client_secret(),
        },
        Arc::new(RateLimiter::new(
            Limit {
                per_sec: 100.0,
                burst: 100,
            },
            Limit {
                per_sec: 100.0,
                burst: 100,
            },
        )),
        Arc::new(Metrics::default()),
    );
    let all = graph
        .list_app_role_assignments(client_sp["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(all.len(), 105, "both pages");
    let distinct: std::collections::BTreeSet<_> = all.iter().map(|a| &a.app_role_id).collect();
    assert_eq!(distinct.len(), 105);
}
