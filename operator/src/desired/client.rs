//! FhirClientApp spec → desired Graph application and output Secret data.

use std::collections::BTreeMap;

use base64::Engine;

use super::application::{Application, RedirectUris, RequiredResourceAccess, ResourceAccess};
use super::naming::ResourceIdentity;
use super::resource::Entitlement;
use super::smart;
use crate::api::{ClientType, CredentialType, FhirClientAppSpec, PublicPlatform};

/// App ID of Microsoft's first-party "Azure Healthcare APIs" application (managed FHIR service).
pub const MANAGED_FHIR_APP_ID: &str = "4f6778d8-5aef-43dc-a1ff-b073724b9495";
/// Default audience of the managed FHIR service.
pub const MANAGED_FHIR_AUDIENCE: &str = "https://azurehealthcareapis.com";

/// What the client's target publishes, as resolved from the FhirResourceApp or the managed service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// App ID of the resource application.
    pub app_id: String,
    /// FHIR server URL.
    pub fhir_url: String,
    /// Token audience.
    pub audience: String,
    /// Published delegated scopes (empty when unknown, e.g. managed service).
    pub scopes: Vec<Entitlement>,
    /// Published app roles (empty when unknown).
    pub roles: Vec<Entitlement>,
    /// Whether this is the managed FHIR service.
    pub managed: bool,
}

/// A requested scope or role that the target does not publish.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} '{value}' is not published by the target (published: {published})")]
pub struct UnknownEntitlement {
    pub kind: &'static str,
    pub value: String,
    pub published: String,
}

/// Delegated scope values requested (SMART notation mapped), default `user_impersonation` for
/// Confidential and Public clients.
pub fn requested_scopes(spec: &FhirClientAppSpec) -> Vec<String> {
    match (&spec.scopes, spec.r#type) {
        (Some(s), _) => s.iter().filter_map(|s| smart::to_entra(s)).collect(),
        (None, ClientType::Service) => vec![],
        (None, _) => vec![super::resource::DEFAULT_SCOPE.to_string()],
    }
}

/// App role values requested.
pub fn requested_roles(spec: &FhirClientAppSpec) -> Vec<String> {
    spec.roles.clone().unwrap_or_default()
}

/// `{fhirUrl}/AadSmartOnFhirProxy/callback/{base64url(replyUrl)}` (no padding).
pub fn smart_proxy_callback(fhir_url: &str, reply_url: &str) -> String {
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(reply_url.as_bytes());
    format!(
        "{}/AadSmartOnFhirProxy/callback/{enc}",
        crate::url::without_slash(fhir_url)
    )
}

/// `requiredResourceAccess` for what the target publishes of the requested scopes and roles, and
/// the requested ones it does not publish. The registration holds only what exists: a scope
/// renamed or removed on the resource app leaves the client's registration (and its grant), not
/// just its status. The managed service is checked against what its service principal publishes
/// in the tenant, like a FhirResourceApp.
pub fn resource_access(
    spec: &FhirClientAppSpec,
    target: &ResolvedTarget,
) -> (Vec<RequiredResourceAccess>, Vec<UnknownEntitlement>) {
    let Granted {
        scopes,
        roles,
        unknown,
    } = granted(spec, target);
    let access = |kind: &'static str| {
        move |e: &&Entitlement| ResourceAccess {
            id: e.id.clone(),
            r#type: kind,
        }
    };
    let access: Vec<ResourceAccess> = (scopes.iter().map(access("Scope")))
        .chain(roles.iter().map(access("Role")))
        .collect();
    if access.is_empty() {
        return (vec![], unknown);
    }
    let required = RequiredResourceAccess {
        resource_app_id: target.app_id.clone(),
        resource_access: access,
    };
    (vec![required], unknown)
}

/// The requested scopes and app roles the target publishes (in the order requested), and the
/// requested ones it does not: what the registration requests, what consent and role assignment
/// grant, and what the client is Stalled for all come from this one reading.
pub struct Granted<'t> {
    pub scopes: Vec<&'t Entitlement>,
    pub roles: Vec<&'t Entitlement>,
    pub unknown: Vec<UnknownEntitlement>,
}

pub fn granted<'t>(spec: &FhirClientAppSpec, target: &'t ResolvedTarget) -> Granted<'t> {
    let mut unknown = Vec::new();
    let mut pick = |kind: &'static str, list: &'t [Entitlement], wanted: Vec<String>| {
        let mut found = Vec::new();
        for value in wanted {
            match list.iter().find(|e| e.value == value) {
                Some(e) => found.push(e),
                None => unknown.push(UnknownEntitlement {
                    kind,
                    value,
                    published: list
                        .iter()
                        .map(|e| e.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        }
        found
    };
    let scopes = pick("scope", &target.scopes, requested_scopes(spec));
    let roles = pick("app role", &target.roles, requested_roles(spec));
    Granted {
        scopes,
        roles,
        unknown,
    }
}

/// Desired Graph application body for a client; errors name the first requested scope or role the
/// target does not publish.
pub fn desired_application(
    spec: &FhirClientAppSpec,
    id: &ResourceIdentity<'_>,
    target: &ResolvedTarget,
) -> Result<Application, UnknownEntitlement> {
    let (app, unknown) = desired_application_partial(spec, id, target);
    match unknown.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(app),
    }
}

/// Desired Graph application body for a client (only the properties the operator manages), with
/// what the target publishes of the request, and the requested entitlements it does not publish.
/// Every platform is always sent (empty when unused), so drift is corrected.
pub fn desired_application_partial(
    spec: &FhirClientAppSpec,
    id: &ResourceIdentity<'_>,
    target: &ResolvedTarget,
) -> (Application, Vec<UnknownEntitlement>) {
    let uris: Vec<String> = spec.redirect_uris.clone().unwrap_or_default();
    // The FHIR server's SMART proxy redeems codes at its callback server-side, with no Origin: under
    // spa Entra refuses that (AADSTS9002327, SPA codes are redeemable only cross-origin), so a Public
    // client's callbacks are mobile/desktop redirects (a public client's redemption, no credential) and
    // a Confidential client's are web redirects (the proxy passes the app's secret on).
    let callbacks: Vec<String> = match spec.smart_proxy_callback {
        Some(true) => (uris.iter())
            .map(|u| smart_proxy_callback(&target.fhir_url, u))
            .collect(),
        _ => vec![],
    };
    let (mut web, spa, mut public, fallback) =
        match (spec.r#type, spec.public_platform.unwrap_or_default()) {
            (ClientType::Confidential, _) => (uris, vec![], vec![], false),
            (ClientType::Service, _) => (vec![], vec![], vec![], false),
            (ClientType::Public, PublicPlatform::Spa) => (vec![], uris, vec![], false),
            (ClientType::Public, PublicPlatform::MobileDesktop) => (vec![], vec![], uris, true),
        };
    match spec.r#type {
        ClientType::Public => public.extend(callbacks),
        _ => web.extend(callbacks),
    }
    let (access, unknown) = resource_access(spec, target);
    let platform = |redirect_uris| Some(RedirectUris { redirect_uris });
    let app = Application {
        display_name: (spec.display_name.clone())
            .unwrap_or_else(|| format!("{}/{}", id.namespace, id.name)),
        sign_in_audience: spec.sign_in_audience.unwrap_or_default().as_str(),
        tags: id.tags(),
        web: platform(web),
        spa: platform(spa),
        public_client: platform(public),
        is_fallback_public_client: Some(fallback),
        required_resource_access: Some(access),
        ..Default::default()
    };
    (app, unknown)
}

/// Requested entitlements the target does not publish, as one error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}; nothing is requested or granted for {}, the rest of the registration is in place: fix the spec or publish {} on the target", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "), if .0.len() == 1 { "it" } else { "them" }, if .0.len() == 1 { "it" } else { "them" })]
pub struct UnknownEntitlements(pub Vec<UnknownEntitlement>);

/// Effective credential type: explicit, else ClientSecret for Confidential/Service, none for Public.
pub fn credential_type(spec: &FhirClientAppSpec) -> Option<CredentialType> {
    match (&spec.credential, spec.r#type) {
        (Some(c), ClientType::Confidential | ClientType::Service) => Some(c.r#type),
        (None, ClientType::Confidential | ClientType::Service) => {
            Some(CredentialType::ClientSecret)
        }
        (_, ClientType::Public) => None,
    }
}

/// Inputs of the output Secret.
pub struct SecretInputs<'a> {
    pub client_id: &'a str,
    pub tenant_id: &'a str,
    /// Authority host with a trailing `/` (what the Azure SDKs read from `AZURE_AUTHORITY_HOST`).
    pub authority_host: &'a str,
    pub target: &'a ResolvedTarget,
    pub client_secret: Option<&'a str>,
    /// Federated token file path for workload identity (the AKS webhook's default if `None`).
    pub federated_token_file: Option<&'a str>,
    pub credential: Option<CredentialType>,
    /// Certificate files (Certificate credential).
    pub certificate: Option<&'a CertificateFiles>,
    /// What a client that signs users in needs (Confidential and Public clients).
    pub sign_in: Option<SignIn>,
}

/// The Secret keys of a client that signs users in: where to send them and what to ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignIn {
    /// The first of `spec.redirectUris` (none registered: `None`).
    pub redirect_uri: Option<String>,
    /// Requested delegated scope values (SMART notation mapped).
    pub scopes: Vec<String>,
}

/// [`SignIn`] for Confidential and Public clients; `None` for Service clients.
pub fn sign_in(spec: &FhirClientAppSpec) -> Option<SignIn> {
    (spec.r#type != ClientType::Service).then(|| SignIn {
        redirect_uri: spec.redirect_uris.as_ref().and_then(|u| u.first().cloned()),
        scopes: requested_scopes(spec),
    })
}

/// What a Certificate credential puts in the output Secret.
pub struct CertificateFiles {
    /// Private key + certificate, PEM.
    pub bundle: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The previous certificate (public part) while it overlaps.
    pub previous_cert_pem: Option<String>,
}

/// Output Secret data (`envFrom`-ready for the Azure SDKs' environment credential).
pub fn secret_data(i: &SecretInputs<'_>) -> BTreeMap<String, String> {
    let host = crate::url::with_slash(i.authority_host);
    let mut d = BTreeMap::from([
        ("AZURE_CLIENT_ID".to_string(), i.client_id.to_string()),
        ("AZURE_TENANT_ID".to_string(), i.tenant_id.to_string()),
        ("AZURE_AUTHORITY_HOST".to_string(), host.clone()),
        ("FHIR_URL".to_string(), i.target.fhir_url.clone()),
        ("FHIR_AUDIENCE".to_string(), i.target.audience.clone()),
        (
            "FHIR_SCOPE".to_string(),
            crate::url::join(&i.target.audience, ".default"),
        ),
        (
            "TOKEN_ENDPOINT".to_string(),
            format!("{host}{}/oauth2/v2.0/token", i.tenant_id),
        ),
    ]);
    if let Some(si) = &i.sign_in {
        let audience = crate::url::without_slash(&i.target.audience);
        d.insert("AUTHORITY".into(), format!("{host}{}", i.tenant_id));
        d.insert(
            "AUTHORIZE_ENDPOINT".into(),
            format!("{host}{}/oauth2/v2.0/authorize", i.tenant_id),
        );
        let scopes: Vec<String> = si
            .scopes
            .iter()
            .map(|s| format!("{audience}/{s}"))
            .collect();
        d.insert("FHIR_DELEGATED_SCOPES".into(), scopes.join(" "));
        if let Some(u) = &si.redirect_uri {
            d.insert("REDIRECT_URI".into(), u.clone());
        }
    }
    match i.credential {
        Some(CredentialType::ClientSecret) => {
            if let Some(s) = i.client_secret {
                d.insert("AZURE_CLIENT_SECRET".into(), s.to_string());
            }
        }
        Some(CredentialType::Certificate) => {
            if let Some(c) = i.certificate {
                use super::certificate as cert;
                d.insert(
                    "AZURE_CLIENT_CERTIFICATE_PATH".into(),
                    format!("{}/{}", cert::DEFAULT_MOUNT_DIR, cert::BUNDLE_KEY),
                );
                d.insert(cert::BUNDLE_KEY.into(), c.bundle.clone());
                d.insert(cert::CERT_KEY.into(), c.cert_pem.clone());
                d.insert(cert::PRIVATE_KEY_KEY.into(), c.key_pem.clone());
                if let Some(p) = &c.previous_cert_pem {
                    d.insert(cert::PREVIOUS_CERT_KEY.into(), p.clone());
                }
            }
        }
        Some(CredentialType::WorkloadIdentity) => {
            d.insert(
                "AZURE_FEDERATED_TOKEN_FILE".into(),
                i.federated_token_file
                    .unwrap_or("/var/run/secrets/azure/tokens/azure-identity-token")
                    .to_string(),
            );
        }
        None => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::naming::AppKind;
    use serde_json::{Value, json};

    const ID: ResourceIdentity<'static> = ResourceIdentity {
        cluster: "c",
        kind: AppKind::Client,
        namespace: "ns",
        name: "portal",
    };

    fn spec(v: Value) -> FhirClientAppSpec {
        serde_json::from_value(v).unwrap()
    }
    fn target() -> ResolvedTarget {
        ResolvedTarget {
            app_id: "res-app".into(),
            fhir_url: "https://fhir.contoso.example/".into(),
            audience: "https://fhir.contoso.example".into(),
            scopes: vec![
                Entitlement {
                    id: "s1".into(),
                    value: "user_impersonation".into(),
                },
                Entitlement {
                    id: "s2".into(),
                    value: "patient.all.read".into(),
                },
            ],
            roles: vec![Entitlement {
                id: "r1".into(),
                value: "globalReader".into(),
            }],
            managed: false,
        }
    }

    #[test]
    fn confidential_client_uses_web_and_default_scope() {
        let s = spec(
            json!({"type":"Confidential","target":{"resourceAppRef":{"name":"fhir"}},"redirectUris":["https://app.example/cb"]}),
        );
        let app = desired_application(&s, &ID, &target()).unwrap().body();
        assert_eq!(
            app["web"]["redirectUris"],
            json!(["https://app.example/cb"])
        );
        assert_eq!(app["spa"]["redirectUris"], json!([]));
        assert_eq!(app["isFallbackPublicClient"], false);
        assert_eq!(
            app["requiredResourceAccess"],
            json!([{"resourceAppId":"res-app","resourceAccess":[{"id":"s1","type":"Scope"}]}])
        );
        assert_eq!(credential_type(&s), Some(CredentialType::ClientSecret));
    }

    #[test]
    fn public_clients_use_spa_or_fallback_public_client_and_no_credential() {
        let s = spec(
            json!({"type":"Public","target":{"resourceAppRef":{"name":"fhir"}},"redirectUris":["http://localhost:3000"],"scopes":["patient/*.read"]}),
        );
        let app = desired_application(&s, &ID, &target()).unwrap().body();
        assert_eq!(app["spa"]["redirectUris"], json!(["http://localhost:3000"]));
        assert_eq!(
            app["requiredResourceAccess"][0]["resourceAccess"],
            json!([{"id":"s2","type":"Scope"}])
        );
        assert_eq!(credential_type(&s), None);
        let m = spec(
            json!({"type":"Public","publicPlatform":"MobileDesktop","target":{"resourceAppRef":{"name":"fhir"}},"redirectUris":["myapp://auth"]}),
        );
        let app = desired_application(&m, &ID, &target()).unwrap().body();
        assert_eq!(app["publicClient"]["redirectUris"], json!(["myapp://auth"]));
        assert_eq!(app["isFallbackPublicClient"], true);
    }

    #[test]
    fn service_client_requests_roles_only() {
        let s = spec(
            json!({"type":"Service","target":{"resourceAppRef":{"name":"fhir"}},"roles":["globalReader"]}),
        );
        let app = desired_application(&s, &ID, &target()).unwrap().body();
        assert_eq!(
            app["requiredResourceAccess"][0]["resourceAccess"],
            json!([{"id":"r1","type":"Role"}])
        );
        assert_eq!(app["web"]["redirectUris"], json!([]));
    }

    #[test]
    fn what_the_target_no_longer_publishes_leaves_the_registration_and_is_reported() {
        // `records.read` was renamed on the resource app; `globalReader` still exists.
        let s = spec(
            json!({"type":"Confidential","target":{"resourceAppRef":{"name":"fhir"}},
            "redirectUris":["https://p/cb"],"scopes":["records.read","user_impersonation"],"roles":["globalReader"]}),
        );
        let (app, unknown) = desired_application_partial(&s, &ID, &target());
        let app = app.body();
        assert_eq!(
            app["requiredResourceAccess"],
            json!([{"resourceAppId": "res-app", "resourceAccess": [
                {"id": "s1", "type": "Scope"}, {"id": "r1", "type": "Role"}]}])
        );
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].value, "records.read");
        let e = UnknownEntitlements(unknown).to_string();
        assert!(
            e.starts_with("scope 'records.read' is not published"),
            "{e}"
        );
    }

    #[test]
    fn a_managed_target_refuses_roles_its_service_principal_does_not_publish() {
        let t = ResolvedTarget {
            app_id: MANAGED_FHIR_APP_ID.into(),
            scopes: vec![Entitlement {
                id: "s1".into(),
                value: "user_impersonation".into(),
            }],
            roles: vec![],
            managed: true,
            ..target()
        };
        let s = spec(
            json!({"type":"Service","target":{"managed":{"fhirUrl":"https://ws-fhir.fhir.azurehealthcareapis.com"}},
            "roles":["globalReader"]}),
        );
        let (app, unknown) = desired_application_partial(&s, &ID, &t);
        let app = app.body();
        assert_eq!(app["requiredResourceAccess"], json!([]));
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].kind, "app role");
    }

    #[test]
    fn unknown_role_is_reported_with_what_is_published() {
        let s = spec(
            json!({"type":"Service","target":{"resourceAppRef":{"name":"fhir"}},"roles":["nope"]}),
        );
        let e = desired_application(&s, &ID, &target()).unwrap_err();
        assert_eq!(e.value, "nope");
        assert!(e.to_string().contains("globalReader"), "{e}");
    }

    #[test]
    fn smart_proxy_callback_wraps_each_reply_url() {
        assert_eq!(
            smart_proxy_callback("https://fhir.example/", "https://app.example/cb"),
            "https://fhir.example/AadSmartOnFhirProxy/callback/aHR0cHM6Ly9hcHAuZXhhbXBsZS9jYg"
        );
        let s = spec(
            json!({"type":"Public","target":{"resourceAppRef":{"name":"fhir"}},"redirectUris":["https://app.example/cb"],"smartProxyCallback":true}),
        );
        let app = desired_application(&s, &ID, &target()).unwrap().body();
        // The proxy redeems server-side: a Public client's callback is a mobile/desktop redirect.
        assert_eq!(
            app["spa"]["redirectUris"],
            json!(["https://app.example/cb"])
        );
        assert_eq!(
            app["publicClient"]["redirectUris"],
            json!([
                "https://fhir.contoso.example/AadSmartOnFhirProxy/callback/aHR0cHM6Ly9hcHAuZXhhbXBsZS9jYg"
            ])
        );
        let s = spec(
            json!({"type":"Confidential","target":{"resourceAppRef":{"name":"fhir"}},"redirectUris":["https://app.example/cb"],"smartProxyCallback":true}),
        );
        let app = desired_application(&s, &ID, &target()).unwrap().body();
        assert_eq!(app["web"]["redirectUris"].as_array().unwrap().len(), 2);
        assert_eq!(app["publicClient"]["redirectUris"], json!([]));
    }

    #[test]
    fn managed_target_without_known_scopes_requests_nothing() {
        let t = ResolvedTarget {
            app_id: MANAGED_FHIR_APP_ID.into(),
            scopes: vec![],
            roles: vec![],
            managed: true,
            ..target()
        };
        let s = spec(
            json!({"type":"Service","target":{"managed":{"fhirUrl":"https://ws-fhir.fhir.azurehealthcareapis.com"}}}),
        );
        assert_eq!(
            desired_application(&s, &ID, &t).unwrap().body()["requiredResourceAccess"],
            json!([])
        );
    }

    #[test]
    fn secret_has_the_environment_credential_keys() {
        let t = target();
        let d = secret_data(&SecretInputs {
            client_id: "cid",
            tenant_id: "tid",
            authority_host: "https://login.example",
            target: &t,
            client_secret: Some("s3cr3t"),
            federated_token_file: None,
            credential: Some(CredentialType::ClientSecret),
            certificate: None,
            sign_in: None,
        });
        assert_eq!(d["AZURE_CLIENT_ID"], "cid");
        assert_eq!(d["AZURE_TENANT_ID"], "tid");
        assert_eq!(d["AZURE_CLIENT_SECRET"], "s3cr3t");
        assert_eq!(d["AZURE_AUTHORITY_HOST"], "https://login.example/");
        assert_eq!(d["FHIR_SCOPE"], "https://fhir.contoso.example/.default");
        assert_eq!(
            d["TOKEN_ENDPOINT"],
            "https://login.example/tid/oauth2/v2.0/token"
        );
        assert_eq!(d["FHIR_URL"], "https://fhir.contoso.example/");
        let wi = secret_data(&SecretInputs {
            client_secret: None,
            credential: Some(CredentialType::WorkloadIdentity),
            ..SecretInputs {
                client_id: "cid",
                tenant_id: "tid",
                authority_host: "https://login.example/",
                target: &t,
                client_secret: None,
                federated_token_file: None,
                credential: None,
                certificate: None,
                sign_in: None,
            }
        });
        assert!(!wi.contains_key("AZURE_CLIENT_SECRET"));
        assert!(wi.contains_key("AZURE_FEDERATED_TOKEN_FILE"));
        assert!(!wi.contains_key("REDIRECT_URI") && !wi.contains_key("FHIR_DELEGATED_SCOPES"));
    }

    #[test]
    fn a_client_that_signs_users_in_gets_its_redirect_uri_scopes_and_authority() {
        let t = target();
        let web = spec(
            json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
            "redirectUris": ["http://localhost:5000/callback", "https://b.example/cb"],
            "scopes": ["user_impersonation", "patient/*.read"]}),
        );
        let d = secret_data(&SecretInputs {
            client_id: "cid",
            tenant_id: "tid",
            authority_host: "https://login.example",
            target: &t,
            client_secret: Some("s3cr3t"),
            federated_token_file: None,
            credential: Some(CredentialType::ClientSecret),
            certificate: None,
            sign_in: sign_in(&web),
        });
        assert_eq!(d["REDIRECT_URI"], "http://localhost:5000/callback");
        assert_eq!(d["AUTHORITY"], "https://login.example/tid");
        assert_eq!(
            d["AUTHORIZE_ENDPOINT"],
            "https://login.example/tid/oauth2/v2.0/authorize"
        );
        assert_eq!(
            d["FHIR_DELEGATED_SCOPES"],
            "https://fhir.contoso.example/user_impersonation https://fhir.contoso.example/patient.all.read"
        );
        let daemon =
            spec(json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}}));
        assert_eq!(sign_in(&daemon), None);
        let public =
            spec(json!({"type": "Public", "target": {"resourceAppRef": {"name": "fhir"}}}));
        assert_eq!(
            sign_in(&public),
            Some(SignIn {
                redirect_uri: None,
                scopes: vec!["user_impersonation".into()]
            })
        );
    }
}
