//! What an operator of the emulator configures: the config file's schema (YAML or JSON, every
//! field defaulted), the realism knobs and throttling sizes also changeable at run time, ARM's
//! set-up, and the users and groups of a tenant. Plain data: nothing here reads the state.
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How the emulator is set up. Every field has a default (`Config::default()`); a config file
/// (YAML or JSON) may give any subset of the fields.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    pub tenants: Vec<TenantConfig>,
    /// Persist the directory here (JSON), saved on every change and loaded at start.
    pub state_file: Option<PathBuf>,
    /// Where to write the CA certificate (PEM) at start. Default: none is written; the PEM stays in
    /// memory ([`Running::ca_pem`]) and [`Running::ca_file`] writes one on demand into a directory
    /// of its own that is removed when the [`Running`] is dropped.
    pub ca_file: Option<PathBuf>,
    pub realism: Realism,
    /// Token-bucket sizes for `realism.throttling`.
    pub throttle_limits: ThrottleLimits,
    /// External OIDC issuers trusted for federated-credential assertions.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// The token-signing key (RSA, PEM). Default: one key generated per process.
    pub signing_key_pem: Option<String>,
    /// `signInAudience` of an application created without one.
    pub default_sign_in_audience: String,
    /// Extra DNS names / IPs for the serving certificate (localhost and 127.0.0.1 are always in).
    pub hostnames: Vec<String>,
    /// Lifetime of issued access tokens, seconds.
    pub token_lifetime_secs: u64,
    /// Azure Resource Manager (role assignments) and the managed FHIR services' data-plane stand-in.
    pub arm: ArmConfig,
    /// Graph's delta queries on applications and service principals.
    pub delta: DeltaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            tenants: vec![TenantConfig::default()],
            state_file: None,
            ca_file: None,
            realism: Realism::default(),
            throttle_limits: ThrottleLimits::default(),
            trusted_issuers: vec![],
            signing_key_pem: None,
            default_sign_in_audience: "AzureADMyOrg".into(),
            hostnames: vec![],
            token_lifetime_secs: 3599,
            arm: ArmConfig::default(),
            delta: DeltaConfig::default(),
        }
    }
}

/// Delta queries (`GET /applications/delta`, `/servicePrincipals/delta`): docs/entra-facts/
/// claims-and-delta.md part B has the sources of the defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DeltaConfig {
    /// Objects per page. Graph does not document it; "more than 200 object pages (for DQ on /users)"
    /// is what Microsoft's PM was asked about (microsoftgraph/microsoft-graph-docs#5566).
    pub page_size: usize,
    /// How long a deltaLink can be used: "For directory objects, the limit is seven days" (Learn
    /// `delta-query-overview`, "Token duration").
    pub token_lifetime_secs: u64,
    /// Changes kept per tenant; a token older than the oldest kept one expires.
    pub retained_changes: usize,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig {
            page_size: 200,
            token_lifetime_secs: 7 * 24 * 3600,
            retained_changes: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantConfig {
    pub tenant_id: String,
    pub verified_domains: Vec<String>,
    pub apps: Vec<BootstrapApp>,
    /// Whether the "Azure Healthcare APIs" first-party service principal is in the tenant (it is
    /// once someone has used Azure Health Data Services there, or ran `az ad sp create --id …`).
    pub healthcare_service_principal: bool,
    /// Directory users who can sign in (none by default).
    pub users: Vec<UserConfig>,
    /// Security groups (users name theirs in `UserConfig::groups` too).
    pub groups: Vec<GroupConfig>,
    /// Directory objects the tenant may hold, soft-deleted ones included. None: the documented
    /// default, 300,000 with a verified custom domain, else 50,000 (`state::quota` has the sources).
    pub directory_quota: Option<u64>,
    /// Objects one non-admin creator may hold. None: the documented 250.
    pub creator_quota: Option<u64>,
    /// Whether the per-creator cap also applies to applications (app-only callers without a
    /// tenant-wide write permission). Off by default: the sources conflict and the recorded
    /// outcome says it does not (`state::quota`).
    pub creator_quota_applies_to_apps: bool,
}

impl Default for TenantConfig {
    /// A tenant with a random id, domains `contoso.onmicrosoft.com` and `contoso.example`, and a
    /// bootstrap operator app holding `Application.ReadWrite.OwnedBy`.
    fn default() -> Self {
        TenantConfig {
            tenant_id: uuid::Uuid::new_v4().to_string(),
            verified_domains: vec!["contoso.onmicrosoft.com".into(), "contoso.example".into()],
            apps: vec![BootstrapApp::default()],
            healthcare_service_principal: true,
            users: vec![],
            groups: vec![],
            directory_quota: None,
            creator_quota: None,
            creator_quota_applies_to_apps: false,
        }
    }
}

/// An application registration present from the start (the operator's own identity).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct BootstrapApp {
    pub client_id: String,
    pub display_name: String,
    pub client_secret: Option<String>,
    /// A certificate (PEM) registered as a key credential, for `client_assertion` sign-in.
    pub certificate_pem: Option<String>,
    pub federated: Vec<FederatedTrust>,
    /// Graph application permissions granted (app role assignments on Microsoft Graph).
    pub permissions: Vec<String>,
}

impl Default for BootstrapApp {
    fn default() -> Self {
        BootstrapApp {
            client_id: uuid::Uuid::new_v4().to_string(),
            display_name: "fhir-app-operator".into(),
            client_secret: Some(random_secret()),
            certificate_pem: None,
            federated: vec![],
            permissions: vec!["Application.ReadWrite.OwnedBy".into()],
        }
    }
}

/// A federated identity credential of a bootstrap app (named `bootstrap-N`).
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FederatedTrust {
    pub issuer: String,
    pub subject: String,
    /// Empty means `api://AzureADTokenExchange`.
    pub audience: String,
}

/// An external issuer (e.g. a Kubernetes service-account issuer). Without `jwks`, the emulator
/// fetches `{issuer}/.well-known/openid-configuration` and its `jwks_uri`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub jwks: Option<serde_json::Value>,
}

/// Realism knobs; all off by default. Changeable at run time via `PUT /_emulator/realism`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Realism {
    /// Added to every Graph and login call.
    pub latency_ms: u64,
    /// New objects (and new secrets) are invisible to other requests for this long.
    pub replication_lag_ms: u64,
    /// Graph's token buckets (per app+tenant; sizes in `Config::throttle_limits`) with 429 + Retry-After.
    pub throttling: bool,
    /// Fraction of Graph/login calls answered with a random 5xx.
    pub error_rate: f64,
    /// Fraction of Graph/login calls whose connection is dropped without an answer.
    pub drop_rate: f64,
    /// Seed of the fault generator: same seed and same call sequence, same faults.
    pub seed: u64,
}

/// Sizes of Graph's token buckets used when `Realism::throttling` is on. Also changeable through
/// `PUT /_emulator/realism` (fields `throttle_resource_units_per_10s`, `throttle_writes_per_150s`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ThrottleLimits {
    /// Resource units per 10 s per app+tenant (Graph: 3,500 for a small tenant).
    pub throttle_resource_units_per_10s: u64,
    /// Writes per 150 s per app+tenant (Graph: 3,000).
    pub throttle_writes_per_150s: u64,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            throttle_resource_units_per_10s: 3500,
            throttle_writes_per_150s: 3000,
        }
    }
}

/// A random client secret in Entra's style (40 characters with `~`).
pub fn random_secret() -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    let mut r = rand::thread_rng();
    let mut out: String = (0..3).map(|_| ALPHA[r.gen_range(0..52)] as char).collect();
    out.push_str(&r.gen_range(0..10).to_string());
    out.push_str("Q~");
    out.extend((0..34).map(|_| ALPHA[r.gen_range(0..ALPHA.len())] as char));
    out
}

/// ARM set-up in the emulator's config (`arm:`), also changeable through `PUT /_emulator/arm`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct ArmConfig {
    /// A new service principal is unknown to ARM (400 `PrincipalNotFound` on a role assignment PUT)
    /// for this long after it became visible in Graph: ARM reads a directory replica.
    pub principal_lag_ms: u64,
    /// A data-plane stand-in honours a new role assignment (and stops honouring a deleted one) this
    /// long after the ARM write (Azure: "up to 10 minutes"; Azure API for FHIR caches 5 minutes).
    pub propagation_ms: u64,
    /// Role assignments present from the start (e.g. the operator's right to assign roles).
    pub role_assignments: Vec<SeedAssignment>,
    /// Managed FHIR services the data-plane stand-in serves.
    pub fhir_services: Vec<FhirServiceConfig>,
}

/// A role assignment made by the emulator's set-up, without permission checks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SeedAssignment {
    pub scope: String,
    /// Role name (`Role Based Access Control Administrator`) or definition GUID.
    pub role: String,
    /// Object id of the principal, or …
    pub principal_id: Option<String>,
    /// … the appId of an application whose service principal is the principal.
    pub principal_client_id: Option<String>,
    /// ABAC condition (version 2.0), e.g. the "constrain roles" condition.
    pub condition: Option<String>,
}

/// A managed FHIR service the stand-in serves at `{base}/fhir/{workspace}-{name}` (AHDS) or
/// `{base}/fhir/{name}` (Azure API for FHIR).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct FhirServiceConfig {
    /// ARM resource id of the service (the scope its role assignments are checked at).
    pub resource_id: String,
    /// Token audience. Default: `https://{workspace}-{name}.fhir.azurehealthcareapis.com`
    /// (`https://{name}.azurehealthcareapis.com` for Azure API for FHIR).
    pub audience: Option<String>,
}

/// A user of a tenant, as given in the config file or `POST /_emulator/tenants/{tid}/users`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct UserConfig {
    pub user_principal_name: String,
    pub password: String,
    /// Default: the part of the user principal name before `@`.
    pub display_name: String,
    /// Default: a random GUID.
    pub object_id: Option<String>,
    /// Groups (display name or object id) the user is a member of; created when missing.
    pub groups: Vec<String>,
    /// A tenant administrator: may consent to Admin-type scopes for the whole organisation.
    pub admin: bool,
}

impl UserConfig {
    /// Parses a `--user UPN:PASSWORD[:DISPLAY NAME[:GROUP,GROUP…]]` flag.
    pub fn parse_flag(v: &str) -> anyhow::Result<Self> {
        let mut parts = v.splitn(4, ':');
        let upn = parts.next().unwrap_or_default().to_string();
        let password = parts.next().unwrap_or_default().to_string();
        if upn.is_empty() || password.is_empty() {
            anyhow::bail!("--user wants UPN:PASSWORD[:DISPLAY NAME[:GROUP,GROUP…]]");
        }
        Ok(Self {
            user_principal_name: upn,
            password,
            display_name: parts.next().unwrap_or_default().to_string(),
            groups: parts
                .next()
                .map(|g| {
                    g.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ..Default::default()
        })
    }
}

/// A security group, as given in the config file or `POST /_emulator/tenants/{tid}/groups`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GroupConfig {
    pub display_name: String,
    pub object_id: Option<String>,
}
