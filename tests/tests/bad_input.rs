//! Bad input is refused by the real API server at apply time, with a message that says what to fix.
//!
//! Every manifest is POSTed (create) with `fieldValidation=Strict`, exactly as `kubectl apply
//! --validate=strict` / `kubectl create` sends it, so unknown fields (e.g. a `kind` in a reference, which the
//! schema does not have) are refused too. A few valid
//! manifests in the same table must be accepted, so the test cannot pass by refusing everything.

use fhir_app_operator_tests::operator::{client_app, install_crds, resource_app};
use fhir_app_operator_tests::{TestNamespace, kube_client};
use kube::Client;
use serde_json::{Value, json};

/// What the API server must do with a manifest.
enum Want {
    /// Refuse it (HTTP 422 or 400) with a message containing this text.
    Refused(&'static str),
    /// Accept it.
    Accepted,
}
use Want::*;

/// Creates `obj` with strict field validation; `Err((code, message))` when refused.
async fn create(client: &Client, ns: &str, obj: &Value) -> Result<(), (u16, String)> {
    let plural = match obj["kind"].as_str().unwrap() {
        "FhirResourceApp" => "fhirresourceapps",
        "FhirClientApp" => "fhirclientapps",
        k => panic!("unexpected kind {k}"),
    };
    let req = http::Request::post(format!(
        "/apis/fhirapps.io/v1alpha1/namespaces/{ns}/{plural}?fieldValidation=Strict&fieldManager=bad-input-test"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(obj).unwrap())
    .unwrap();
    match client.request::<Value>(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) => Err((s.code, s.message.clone())),
        Err(e) => panic!("transport error creating {obj}: {e}"),
    }
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

#[tokio::test]
async fn invalid_manifests_are_refused_with_messages_a_user_understands() {
    let client = kube_client().await;
    install_crds(&client).await.unwrap();
    let ns = TestNamespace::new(&client, "bad-input").await;

    let fhir = "https://fhir.contoso.example";
    let target = json!({"resourceAppRef": {"name": "fhir"}});
    let roles101: Vec<Value> = (0..101)
        .map(|i| json!({"value": format!("role{i}")}))
        .collect();
    let uris101: Vec<String> = (0..101)
        .map(|i| format!("https://app.example/cb{i}"))
        .collect();
    let tenant = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

    // (kind, spec, expectation). R = FhirResourceApp, C = FhirClientApp.
    let table: Vec<(char, Value, Want)> = vec![
        // ---- FhirResourceApp: refused ----
        ('R', json!({}), Refused("spec.fhirUrl: Required value")),
        (
            'R',
            json!({"fhirUrl": 42}),
            Refused("spec.fhirUrl in body must be of type string"),
        ),
        (
            'R',
            json!({"fhirUrl": "http://fhir.contoso.example"}),
            Refused("fhirUrl must be an https:// URL"),
        ),
        (
            'R',
            json!({"fhirUrl": "http://localhost.evil.example"}),
            Refused("fhirUrl must be an https:// URL"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://"}),
            Refused("fhirUrl must be an https:// URL"),
        ),
        (
            'R',
            json!({"fhirUrl": "fhir.contoso.example"}),
            Refused("fhirUrl must be an https:// URL"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir contoso.example"}),
            Refused("fhirUrl must be an https:// URL"),
        ),
        (
            'R',
            json!({"fhirUrl": format!("https://{}.example", long(2100))}),
            Refused("spec.fhirUrl: Too long"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "identifierUri": "urn:fhir"}),
            Refused("identifierUri must be an https:// or api:// URI"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "displayName": long(257)}),
            Refused("spec.displayName: Too long"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": [{"value": "globalReader"}, {"value": "globalReader"}]}),
            Refused("spec.appRoles[1]: Duplicate value"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "scopes": [{"value": "user_impersonation"}, {"value": "user_impersonation"}]}),
            Refused("spec.scopes[1]: Duplicate value"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": roles101}),
            Refused("spec.appRoles: Too many: 101"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": "globalReader"}),
            Refused("spec.appRoles in body must be of type array"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": [{"value": "global reader"}]}),
            Refused("spec.appRoles[0].value in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": [{"value": "globalReader", "description": long(1025)}]}),
            Refused("spec.appRoles[0].description: Too long"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": [{"value": "globalReader", "allowedMemberTypes": ["Robot"]}]}),
            Refused("spec.appRoles[0].allowedMemberTypes[0]: Unsupported value: \"Robot\""),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "scopes": [{"value": "patient/*.read"}]}),
            Refused("spec.scopes[0].value in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "scopes": [{"value": "x", "type": "Everyone"}]}),
            Refused("spec.scopes[0].type: Unsupported value: \"Everyone\""),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "requestedAccessTokenVersion": 3}),
            Refused("spec.requestedAccessTokenVersion in body should be less than or equal to 2"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "requestedAccessTokenVersion": "two"}),
            Refused("spec.requestedAccessTokenVersion in body must be of type integer"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "signInAudience": "Everyone"}),
            Refused("spec.signInAudience: Unsupported value: \"Everyone\""),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "signInAudience": "AzureADandPersonalMicrosoftAccount"}),
            Refused("needs requestedAccessTokenVersion: 2"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "appRoles": [{"value": "reader"}], "scopes": [{"value": "reader"}]}),
            Refused("a value cannot be both an app role and a scope"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"scopes": ["launch"]}}),
            Refused("spec.smart.enabled: Required value"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["launch", "launch"]}}),
            Refused("spec.smart.scopes[1]: Duplicate value"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["patient/Observation.rs?category=laboratory"]}}),
            Refused("a query-qualified (granular) SMART scope"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["patient/Patient.sr"]}}),
            Refused("a SMART scope must be <patient|user|system>/<Type or *>.<level>"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["user/*.cruds", "patient/Patient.rx"]}}),
            Refused("a SMART scope must be <patient|user|system>/<Type or *>.<level>"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["patient/Patient."]}}),
            Refused("a SMART scope must be <patient|user|system>/<Type or *>.<level>"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "scopes": ["patient/Patient.rs", "user/*.cruds", "patient/*.read", "system/Observation.r", "launch/patient", "fhirUser"]}}),
            Accepted,
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": false, "fhirUserClaim": true}}),
            Refused("smart.fhirUserClaim needs smart.enabled: true"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "smart": {"enabled": true, "fhirUserClaim": true}}),
            Accepted,
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "deletionPolicy": "Keep"}),
            Refused("spec.deletionPolicy: Unsupported value: \"Keep\""),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "output": {"configMapName": "My_Config"}}),
            Refused("spec.output.configMapName in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "tenant": {"tenantId": "contoso"}}),
            Refused("spec.tenant.tenantId in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "tenant": {"credentialsSecretRef": {"name": "creds"}}}),
            Refused("tenant.credentialsSecretRef needs tenant.tenantId"),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "identifierURI": "api://fhir"}),
            Refused("unknown field \"spec.identifierURI\""),
        ),
        (
            'R',
            json!({"fhirUrl": fhir, "adopt": "yes"}),
            Refused("spec.adopt in body must be of type boolean"),
        ),
        // ---- FhirClientApp: refused ----
        (
            'C',
            json!({"target": target}),
            Refused("spec.type: Required value"),
        ),
        (
            'C',
            json!({"type": "Confidential"}),
            Refused("spec.target: Required value"),
        ),
        (
            'C',
            json!({"type": "Robot", "target": target}),
            Refused("spec.type: Unsupported value: \"Robot\""),
        ),
        (
            'C',
            json!({"type": 5, "target": target}),
            Refused("spec.type in body must be of type string"),
        ),
        (
            'C',
            json!({"type": "Public", "target": target, "credential": {"type": "ClientSecret"}}),
            Refused("a Public client has no credential"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["http://portal.contoso.example/cb"]}),
            Refused("redirectUris must be https://"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["http://localhost.evil.example/cb"]}),
            Refused("redirectUris must be https://"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["http://localhost@evil.example/cb"]}),
            Refused("redirectUris must be https://"),
        ),
        (
            'C',
            json!({"type": "Public", "target": target, "redirectUris": ["myapp://auth"]}),
            Refused("custom schemes only for Public MobileDesktop clients"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["https://portal.contoso.example/cb#x"]}),
            Refused("redirectUris must not contain a fragment"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["https://a.example/cb", "https://a.example/cb"]}),
            Refused("spec.redirectUris[1]: Duplicate value"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": uris101}),
            Refused("spec.redirectUris: Too many: 101"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": "https://a.example/cb"}),
            Refused("spec.redirectUris in body must be of type array"),
        ),
        // ---- issue 18: cross-namespace references, the access policy, users and groups ----
        (
            'C',
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir", "namespace": "other"}}}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir", "namespace": "Other_NS"}}}),
            Refused("spec.target.resourceAppRef.namespace in body should match"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir", "namespace": "other", "kind": "x"}}}),
            Refused("unknown field \"spec.target.resourceAppRef.kind\""),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"appRoles": ["globalReader"]}]}}),
            Refused("spec.accessPolicy.rules[0].namespaces: Required value"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"namespaces": []}]}}),
            Refused("spec.accessPolicy.rules[0].namespaces in body should have at least 1 items"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"namespaces": ["team-*"]}]}}),
            Refused("spec.accessPolicy.rules[0].namespaces[0] in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"namespaces": ["portal"], "redirectHosts": ["*"]}]}}),
            Refused("'*' would admit any host"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"namespaces": ["portal"], "redirectHosts": ["https://portal.contoso.example/"]}]}}),
            Refused("spec.accessPolicy.rules[0].redirectHosts[0] in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "accessPolicy": {"rules": [{"namespace": "portal"}]}}),
            Refused("unknown field \"spec.accessPolicy.rules[0].namespace\""),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignments": [{"principalType": "Group", "principalId": "readers", "appRole": "globalReader"}]}),
            Refused("spec.appRoleAssignments[0].principalId in body should match"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignments": [{"principalType": "ServicePrincipal", "principalId": tenant, "appRole": "globalReader"}]}),
            Refused(
                "spec.appRoleAssignments[0].principalType: Unsupported value: \"ServicePrincipal\"",
            ),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignments": [{"principalType": "Group", "principalId": tenant}]}),
            Refused("spec.appRoleAssignments[0].appRole: Required value"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignments": [
                {"principalType": "Group", "principalId": tenant, "appRole": "globalReader"},
                {"principalType": "User", "principalId": tenant, "appRole": "globalReader"}]}),
            Refused("Duplicate value"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignmentRequired": "yes"}),
            Refused("spec.appRoleAssignmentRequired in body must be of type boolean"),
        ),
        (
            'R',
            json!({"fhirUrl": "https://fhir.contoso.example", "appRoleAssignmentRequired": false,
                   "accessPolicy": {"privilegedRoles": ["globalExporter"], "rules": [
                       {"namespaces": ["ingest"], "appRoles": ["globalWriter", "*"], "scopes": ["*"]},
                       {"namespaces": ["portal"], "scopes": ["user_impersonation"], "redirectHosts": ["portal.contoso.example", "*.apps.contoso.example"]}]},
                   "appRoleAssignments": [{"principalType": "Group", "principalId": tenant, "appRole": "globalReader"}]}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "other/fhir"}}}),
            Refused("spec.target.resourceAppRef.name in body should match"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": {}}),
            Refused("set exactly one of target.resourceAppRef or target.managed"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}, "managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com"}}}),
            Refused("set exactly one of target.resourceAppRef or target.managed"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"fhirUrl": "http://ws-fhir.fhir.azurehealthcareapis.com"}}}),
            Refused("target.managed.fhirUrl must be an https:// URL"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com", "audience": "azurehealthcareapis"}}}),
            Refused("target.managed.audience must be an https:// URL"),
        ),
        // target.managed.resourceId / dataRoles (issue 16).
        (
            'C',
            json!({"type": "Service", "target": {"managed": {}}}),
            Refused(
                "target.managed needs resourceId (the FHIR service's ARM resource id) or fhirUrl",
            ),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x"}}}),
            Refused("target.managed.resourceId must be a FHIR service's ARM resource id"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices"}}}),
            Refused("target.managed.resourceId must be a FHIR service's ARM resource id"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/services/fhir"}}}),
            Refused("target.managed.resourceId must be a FHIR service's ARM resource id"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/f", "dataRoles": ["FHIR Data Owner"]}}}),
            Refused("Unsupported value: \"FHIR Data Owner\""),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com", "dataRoles": ["FHIR Data Reader"]}}}),
            Refused(
                "target.managed.dataRoles are assigned on the FHIR service named by target.managed.resourceId",
            ),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/f", "dataRoles": ["FHIR Data Reader", "FHIR Data Reader"]}}}),
            Refused("Duplicate value"),
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourcegroups/rg/providers/microsoft.healthcareapis/workspaces/ws/fhirservices/f",
                "dataRoles": ["FHIR Data Reader", "FHIR Data Writer", "FHIR Data Contributor", "FHIR Data Exporter", "FHIR Data Importer", "FHIR Data Converter", "FHIR SMART User", "FHIR Data Bulk Operator"]}}}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/services/legacy-fhir", "dataRoles": ["FHIR Data Reader"]}}}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "redirectUris": ["https://a.example/cb"]}),
            Refused("a Service client signs in without a user"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "scopes": ["user_impersonation"]}),
            Refused("a Service client gets app roles (spec.roles), not delegated scopes"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "roles": ["globalReader"]}),
            Refused("app roles (spec.roles) are for Service clients"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "roles": ["globalReader", "globalReader"]}),
            Refused("spec.roles[1]: Duplicate value"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "scopes": ["user_impersonation", "user_impersonation"]}),
            Refused("spec.scopes[1]: Duplicate value"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "scopes": ["patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"]}),
            Refused("a query-qualified (granular) SMART scope"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "scopes": ["patient.Observation.rs?code=loinc.org|85354-9"]}),
            Refused("a query-qualified (granular) SMART scope"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "scopes": ["user/Observation.dr"]}),
            Refused("a SMART scope must be <patient|user|system>/<Type or *>.<level>"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "scopes": ["patient/Patient.rs", "patient.Patient.rs", "user/*.cruds", "user_impersonation"]}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "publicPlatform": "Spa"}),
            Refused("publicPlatform applies only to type Public"),
        ),
        (
            'C',
            json!({"type": "Public", "target": target, "publicPlatform": "Desktop"}),
            Refused("spec.publicPlatform: Unsupported value: \"Desktop\""),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "smartProxyCallback": true}),
            Refused("smartProxyCallback needs at least one redirect URI"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "assignAppRoles": true}),
            Refused("assignAppRoles applies only to Service clients"),
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "grantAdminConsent": "yes"}),
            Refused("spec.grantAdminConsent in body must be of type boolean"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "Password"}}),
            Refused("spec.credential.type: Unsupported value: \"Password\""),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "WorkloadIdentity"}}),
            Refused("credential.type WorkloadIdentity needs credential.serviceAccountName"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "serviceAccountName": "reader"}}),
            Refused("credential.serviceAccountName applies only to type WorkloadIdentity"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "WorkloadIdentity", "serviceAccountName": "reader", "rotation": {"validity": "24h"}}}),
            Refused("a WorkloadIdentity credential has nothing to rotate"),
        ),
        (
            'C',
            json!({"type": "Public", "target": target, "redirectUris": ["http://localhost:3000"], "credential": {"type": "Certificate"}}),
            Refused("a Public client has no credential"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "WorkloadIdentity", "serviceAccountName": "Reader SA"}}),
            Refused("spec.credential.serviceAccountName in body should match"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"validity": "1 year"}}}),
            Refused("spec.credential.rotation.validity in body should match"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"overlap": "-1h"}}}),
            Refused("spec.credential.rotation.overlap in body should match"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"validity": "24h", "renewBefore": "24h"}}}),
            Refused(
                "rotation.renewBefore (default 720h) must be shorter than rotation.validity (default 8760h)",
            ),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"renewBefore": "9000h"}}}),
            Refused(
                "rotation.renewBefore (default 720h) must be shorter than rotation.validity (default 8760h)",
            ),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"validity": "24h"}}}),
            Refused(
                "rotation.renewBefore (default 720h) must be shorter than rotation.validity (default 8760h)",
            ),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "credential": {"type": "ClientSecret", "rotation": {"validity": "30m"}}}),
            Refused("rotation.validity must be at least 1h"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "secretName": "My Secret"}),
            Refused("spec.secretName in body should match"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "displayName": long(300)}),
            Refused("spec.displayName: Too long"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "tenant": {"tenantId": "not-a-guid"}}),
            Refused("spec.tenant.tenantId in body should match"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "tenant": {"credentialsSecretRef": {"name": "creds"}}}),
            Refused("tenant.credentialsSecretRef needs tenant.tenantId"),
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "namespace": "other"}),
            Refused("unknown field \"spec.namespace\""),
        ),
        // ---- valid manifests: accepted ----
        ('R', json!({"fhirUrl": fhir}), Accepted),
        (
            'R',
            json!({"fhirUrl": "http://localhost:8080", "identifierUri": "api://{appId}", "signInAudience": "AzureADandPersonalMicrosoftAccount",
            "requestedAccessTokenVersion": 2, "displayName": long(256),
            "appRoles": [{"value": "globalReader", "allowedMemberTypes": ["User", "Application"]}, {"value": "globalWriter"}],
            "scopes": [{"value": "user_impersonation", "type": "Admin"}, {"value": "patient.all.read"}],
            "smart": {"enabled": true, "scopes": ["launch", "patient/*.read"]},
            "output": {"configMapName": "fhir-auth", "secretName": "fhir-auth"}, "deletionPolicy": "Orphan"}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["https://portal.contoso.example/cb", "http://localhost:3000/callback"],
            "scopes": ["user_impersonation"], "credential": {"type": "ClientSecret", "rotation": {"validity": "720h", "renewBefore": "1.5h", "overlap": "30m"}},
            "secretName": "portal-creds", "smartProxyCallback": true}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Public", "target": target, "publicPlatform": "MobileDesktop", "redirectUris": ["msal0b1c2d3e://auth", "http://127.0.0.1:5000/cb"]}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Service", "target": {"managed": {"fhirUrl": "https://ws-fhir.fhir.azurehealthcareapis.com", "audience": "https://azurehealthcareapis.com"}},
            "roles": ["globalReader", "globalWriter"], "assignAppRoles": true, "credential": {"type": "WorkloadIdentity", "serviceAccountName": "fhir-reader"}}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Confidential", "target": target, "redirectUris": ["https://portal.contoso.example/cb"],
            "credential": {"type": "Certificate", "rotation": {"validity": "2160h", "renewBefore": "720h", "overlap": "48h"}}}),
            Accepted,
        ),
        (
            'C',
            json!({"type": "Service", "target": target, "tenant": {"tenantId": tenant, "credentialsSecretRef": {"name": "fabrikam-creds"}}}),
            Accepted,
        ),
    ];

    let (mut refused, mut accepted, mut failures) = (0, 0, Vec::new());
    for (i, (kind, spec, want)) in table.into_iter().enumerate() {
        let name = format!("case-{i}");
        let obj = match kind {
            'R' => resource_app(&name, spec),
            _ => client_app(&name, spec),
        };
        match (create(&client, &ns.name, &obj).await, want) {
            (Err((code, msg)), Refused(want)) => {
                refused += 1;
                if !(code == 422 || code == 400) || !msg.contains(want) {
                    failures.push(format!(
                        "case {i}: refused with HTTP {code} {msg:?}; want 422/400 containing {want:?}"
                    ));
                }
            }
            (Ok(()), Accepted) => accepted += 1,
            (Ok(()), Refused(want)) => failures.push(format!(
                "case {i}: ACCEPTED but should be refused with {want:?}: {}",
                obj["spec"]
            )),
            (Err((code, msg)), Accepted) => failures.push(format!(
                "case {i}: valid manifest refused (HTTP {code}): {msg}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "bad input: {refused} manifests refused with their message, {accepted} valid ones accepted"
    );
    assert!(
        refused >= 30 && accepted >= 5,
        "{refused} refused, {accepted} accepted"
    );
}
