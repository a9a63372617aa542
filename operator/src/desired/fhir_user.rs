//! The `fhirUser` claim (issue 25), as pure functions: the directory extension's name, the
//! claims-mapping policy's definition and display name, whether the resource app may accept mapped
//! claims at all, the ConfigMap keys, and the `FhirUserClaim` condition's words.
//!
//! Facts (docs/entra-facts/claims-and-delta.md §A1–A4): the extension is
//! `extension_{appId without hyphens}_{name}` on the owner application (Graph
//! `extensibility-overview`); a claims-mapping policy emits it as `JwtClaimType` with
//! `Source: user` + `ExtensionID` (Entra `reference-claims-mapping-policy-type`); a policy on a
//! service principal changes the tokens whose audience it is (access tokens of the API, ID tokens of
//! a client); the audience application needs `api.acceptMappedClaims` (AADSTS50146), which Entra
//! honours only for a token audience that is the application's GUID or on a verified domain
//! (AADSTS501461), and which must not be set on multi-tenant applications
//! (Entra `jwt-claims-customization`).

use serde_json::json;

use crate::api::{FhirResourceAppSpec, SignInAudience};

/// The condition on both kinds that says whether the claim is in place.
pub const CONDITION: &str = "FhirUserClaim";
/// The JWT claim's name (SMART App Launch; microsoft/fhir-server's `FhirUserClaim` default).
pub const CLAIM: &str = "fhirUser";
/// The directory extension's short name (the AHDS sample's).
pub const EXTENSION_NAME: &str = "fhirUser";
/// ConfigMap key: the claim the FHIR server reads the user's FHIR resource from.
pub const KEY_CLAIM: &str = "FHIR_USER_CLAIM";
/// ConfigMap key: the extension attribute provisioning writes each user's value to.
pub const KEY_EXTENSION: &str = "FHIR_USER_EXTENSION_ATTRIBUTE";
/// Graph permission that creates, updates, deletes and assigns claims-mapping policies (Learn
/// `claimsmappingpolicy-post-claimsmappingpolicies`; assignment also accepts it with
/// `Application.ReadWrite.OwnedBy`, `serviceprincipal-post-claimsmappingpolicies`).
pub const POLICY_PERMISSION: &str = "Policy.ReadWrite.ApplicationConfiguration";
/// Prefix of the policy's display name; the rest is the FhirResourceApp's uid, so that the policy
/// is found again after a crash between its create and the status write (no duplicates).
pub const POLICY_NAME_PREFIX: &str = "fhirapps.io fhirUser ";

/// Whether the spec asks for the claim.
pub fn wanted(spec: &FhirResourceAppSpec) -> bool {
    spec.smart
        .as_ref()
        .is_some_and(|s| s.enabled && s.fhir_user_claim == Some(true))
}

/// `extension_{appId without hyphens}_fhirUser` (Graph `extensibility-overview`).
pub fn extension_attribute(app_id: &str) -> String {
    format!("extension_{}_{EXTENSION_NAME}", app_id.replace('-', ""))
}

/// The body of `POST /applications/{id}/extensionProperties` (the AHDS sample's).
pub fn extension_body() -> serde_json::Value {
    json!({"name": EXTENSION_NAME, "dataType": "String", "targetObjects": ["User"]})
}

/// The policy's display name: the prefix, the resource's `namespace/name` for people, its uid for
/// the operator (a re-created resource of the same name has another uid).
pub fn policy_display_name(namespace: &str, name: &str, uid: &str) -> String {
    format!("{POLICY_NAME_PREFIX}{namespace}/{name} {uid}")
}

/// Whether a policy's display name marks it as the one of the resource with `uid`.
pub fn is_policy_of(display_name: &str, uid: &str) -> bool {
    display_name.starts_with(POLICY_NAME_PREFIX) && display_name.ends_with(&format!(" {uid}"))
}

/// The policy's definition string: basic claims kept, the extension emitted as `fhirUser`.
pub fn policy_definition(extension: &str) -> String {
    json!({"ClaimsMappingPolicy": {
        "Version": 1,
        "IncludeBasicClaimSet": "true",
        "ClaimsSchema": [{"Source": "user", "ExtensionID": extension, "JwtClaimType": CLAIM}],
    }})
    .to_string()
}

/// Whether a stored definition (Graph's string collection) says what [`policy_definition`] says:
/// compared as JSON, so Graph's spacing or key order is no difference.
pub fn definition_matches(stored: &[String], extension: &str) -> bool {
    let want: serde_json::Value =
        serde_json::from_str(&policy_definition(extension)).expect("our own JSON");
    stored.len() == 1
        && serde_json::from_str::<serde_json::Value>(&stored[0]).is_ok_and(|v| v == want)
}

/// Why the resource app cannot accept mapped claims, as a condition (reason, message); `None` when
/// it can. `identifier_uri` is the registered one (Graph already refused an `https://` URI off a
/// verified domain, so such a URI is on one).
pub fn refusal(
    spec: &FhirResourceAppSpec,
    token_version: i32,
    identifier_uri: &str,
    app_id: &str,
) -> Option<(&'static str, String)> {
    if spec.sign_in_audience.unwrap_or_default() != SignInAudience::AzureADMyOrg {
        return Some((
            "MultiTenantApp",
            "the fhirUser claim is not set up: Entra advises never to set acceptMappedClaims on a \
             multi-tenant application (anyone could then map claims into its tokens); use \
             signInAudience AzureADMyOrg"
                .into(),
        ));
    }
    if token_version == 2 || audience_is_app_guid_or_verified(identifier_uri, app_id) {
        return None;
    }
    Some((
        "AudienceNotVerified",
        format!(
            "the fhirUser claim is not set up: with v1 access tokens the audience is {identifier_uri}, \
             and Entra refuses mapped claims (AADSTS501461) for an audience that is neither the \
             application's ID nor on a verified domain; set requestedAccessTokenVersion: 2, or an \
             identifierUri on a verified domain (https://...) or \"api://{{appId}}\""
        ),
    ))
}

/// Why a SMART client cannot accept mapped claims (reason, message): a multi-tenant client, for
/// the same reason as a multi-tenant resource app. Its ID token's audience is its appId, so the
/// AADSTS501461 audience rule never applies to it.
pub fn client_refusal(audience: Option<SignInAudience>) -> Option<(&'static str, String)> {
    (audience.unwrap_or_default() != SignInAudience::AzureADMyOrg).then(|| {
        (
            "MultiTenantApp",
            "this client's ID tokens carry no fhirUser claim: Entra advises never to set \
             acceptMappedClaims on a multi-tenant application; use signInAudience AzureADMyOrg"
                .into(),
        )
    })
}

/// `api://{appId}` (the GUID's own URI) or an `https://` URI (Graph registers those only on a
/// verified domain of the tenant, `HostNameNotOnVerifiedDomain`).
fn audience_is_app_guid_or_verified(identifier_uri: &str, app_id: &str) -> bool {
    let uri = identifier_uri.trim_end_matches('/');
    uri.eq_ignore_ascii_case(app_id)
        || uri.eq_ignore_ascii_case(&format!("api://{app_id}"))
        || uri.to_ascii_lowercase().starts_with("https://")
}

/// The keys the resource app's ConfigMap (and Secret) gets while the claim is in place.
pub fn output_keys(extension: &str) -> [(String, String); 2] {
    [
        (KEY_CLAIM.into(), CLAIM.into()),
        (KEY_EXTENSION.into(), extension.into()),
    ]
}

/// The condition message when another claims-mapping policy holds the service principal (Entra
/// assigns one per service principal): the operator does not take it away.
pub fn taken(sp_id: &str, other_name: &str, other_id: &str) -> String {
    format!(
        "the fhirUser claim is not set up: service principal {sp_id} already has the \
         claims-mapping policy '{}' ({}), and Entra allows one; unassign it (DELETE \
         /servicePrincipals/{sp_id}/claimsMappingPolicies/{}/$ref) or add the fhirUser claim to it",
        other_name, other_id, other_id
    )
}

/// What a FhirResourceApp that stands for an Azure Health Data Services FHIR service's audience
/// (its `fhirUrl` is the service's) needs done outside Entra: AHDS accepts no claim mapping on its
/// first-party application, so its SMART sample registers a custom resource app as the service's
/// audience (docs/entra-facts/claims-and-delta.md §A4); the operator does not change the service
/// through ARM. `None` for any other FHIR server.
pub fn managed_service_note(fhir_url: &str, audience: &str) -> Option<String> {
    let host = fhir_url.split("://").nth(1)?.split(['/', ':']).next()?;
    let host = host.to_ascii_lowercase();
    host.ends_with(".fhir.azurehealthcareapis.com").then(|| {
        format!(
            "fhirUrl is an Azure Health Data Services FHIR service: the operator does not change \
             the service, so set its audience to this app's ({audience}) yourself: az resource \
             update --ids <FHIR service resource id> --set \
             properties.authenticationConfiguration.audience={audience}; SMART users also need the \
             'FHIR SMART User' role on the service (docs/smart-fhir-user.md, managed service)"
        )
    })
}

/// The condition message when the operator may not write claims-mapping policies.
pub fn not_permitted(graph_message: &str) -> String {
    format!(
        "the fhirUser claim is not set up: the operator lacks the Graph application permission \
         {POLICY_PERMISSION} to create and assign claims-mapping policies (grant it with admin \
         consent, see docs/permissions.md); the rest of the app works without the claim. Graph \
         said: {graph_message}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FhirResourceAppSpec {
        serde_json::from_value(json!({"fhirUrl": "https://fhir.contoso.example",
            "smart": {"enabled": true, "fhirUserClaim": true}}))
        .unwrap()
    }

    const APP: &str = "b7d8e648-520f-41d3-b9c0-fdeb91768a0a";

    #[test]
    fn the_extension_is_named_after_the_app_id_without_hyphens() {
        assert_eq!(
            extension_attribute(APP),
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_fhirUser"
        );
        assert_eq!(
            extension_body(),
            json!({"name": "fhirUser", "dataType": "String", "targetObjects": ["User"]})
        );
    }

    #[test]
    fn the_definition_is_the_documented_schema_and_compares_as_json() {
        let ext = extension_attribute(APP);
        let d = policy_definition(&ext);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["ClaimsMappingPolicy"]["Version"], 1);
        assert_eq!(v["ClaimsMappingPolicy"]["IncludeBasicClaimSet"], "true");
        assert_eq!(
            v["ClaimsMappingPolicy"]["ClaimsSchema"],
            json!([{"Source": "user", "ExtensionID": ext, "JwtClaimType": "fhirUser"}])
        );
        let spaced = serde_json::to_string_pretty(&v).unwrap();
        assert!(definition_matches(&[spaced], &ext));
        assert!(!definition_matches(
            std::slice::from_ref(&d),
            "extension_other_fhirUser"
        ));
        assert!(!definition_matches(&[d.clone(), d], &ext), "one string");
    }

    #[test]
    fn the_policy_is_found_by_the_uid_in_its_name_only() {
        let name = policy_display_name("ns", "fhir", "uid-1");
        assert!(is_policy_of(&name, "uid-1"));
        assert!(!is_policy_of(&name, "uid-2"));
        assert!(!is_policy_of("someone's policy uid-1", "uid-1"));
    }

    #[test]
    fn only_a_single_tenant_app_with_an_acceptable_audience_may_accept_mapped_claims() {
        let s = spec();
        assert!(wanted(&s));
        assert_eq!(
            refusal(&s, 2, "api://fhir", APP),
            None,
            "v2: aud is the GUID"
        );
        assert_eq!(refusal(&s, 1, &format!("api://{APP}"), APP), None);
        assert_eq!(refusal(&s, 1, "https://fhir.contoso.example", APP), None);
        let (reason, message) = refusal(&s, 1, "api://fhir", APP).unwrap();
        assert_eq!(reason, "AudienceNotVerified");
        assert!(
            message.contains("requestedAccessTokenVersion: 2"),
            "{message}"
        );
        assert!(message.contains("AADSTS501461"), "{message}");
        let mut multi = spec();
        multi.sign_in_audience = Some(SignInAudience::AzureADMultipleOrgs);
        assert_eq!(
            refusal(&multi, 2, "api://fhir", APP).unwrap().0,
            "MultiTenantApp"
        );
    }

    #[test]
    fn the_claim_is_opt_in_and_only_with_smart() {
        let mut s = spec();
        s.smart.as_mut().unwrap().enabled = false;
        assert!(!wanted(&s));
        s.smart = None;
        assert!(!wanted(&s));
        let keys = output_keys("extension_x_fhirUser");
        assert_eq!(keys[0], ("FHIR_USER_CLAIM".into(), "fhirUser".into()));
        assert_eq!(
            keys[1],
            (
                "FHIR_USER_EXTENSION_ATTRIBUTE".into(),
                "extension_x_fhirUser".into()
            )
        );
        assert!(not_permitted("Insufficient privileges").contains(POLICY_PERMISSION));
    }

    #[test]
    fn an_ahds_fhir_url_gets_the_audience_step_the_operator_does_not_do() {
        let aud = "https://fhir-app.contoso.example";
        let note = managed_service_note("https://ws-fhir.fhir.azurehealthcareapis.com/", aud);
        let note = note.unwrap();
        assert!(
            note.contains(&format!(
                "properties.authenticationConfiguration.audience={aud}"
            )),
            "{note}"
        );
        assert!(note.contains("FHIR SMART User"), "{note}");
        assert_eq!(
            managed_service_note("https://fhir.contoso.example", aud),
            None
        );
        assert_eq!(managed_service_note("not a url", aud), None);
    }
}
