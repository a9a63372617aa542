#![recursion_limit = "256"]
//! entra-emulator: a local, stateful stand-in for Microsoft Entra ID — the Microsoft Graph v1.0
//! application-registration surface and the identity platform's token endpoint — served over HTTPS
//! with a CA generated at start. See README.md.
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

mod admin;
mod arm;
mod authorize;
mod consent;
pub mod crypto;
mod device;
pub mod directory;
mod flows;
mod grants;
mod graph;
mod login;
mod pages;
mod query;
mod server;
mod signout;
mod state_file;
pub mod store;

pub use arm::{ArmConfig, FhirServiceConfig, SeedAssignment};
pub use directory::{GroupConfig, UserConfig};
pub use server::CallRecord;

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

/// The emulator's CA certificate: kept in memory, written to a file only when one is asked for.
struct CaFile {
    pem: String,
    /// `Config::ca_file`: written at start and left in place.
    configured: Option<PathBuf>,
    /// Otherwise the file [`Running::ca_file`] wrote, in a directory removed on drop.
    on_demand: std::sync::OnceLock<PathBuf>,
    port: u16,
}

impl CaFile {
    fn path(&self) -> PathBuf {
        if let Some(p) = &self.configured {
            return p.clone();
        }
        self.on_demand
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!(
                    "entra-emulator-{}-{}",
                    std::process::id(),
                    self.port
                ));
                let file = dir.join("ca.pem");
                if let Err(e) =
                    std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&file, &self.pem))
                {
                    panic!("writing the emulator's CA file {}: {e}", file.display());
                }
                file
            })
            .clone()
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        if let Some(dir) = self.on_demand.get().and_then(|f| f.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A running emulator.
pub struct Running {
    shared: Arc<server::Shared>,
    ca: CaFile,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    first_tenant: String,
    first_client_id: String,
    first_client_secret: String,
}

impl Running {
    /// `https://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// `base_url + "/v1.0"`
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }
    /// `base_url + "/"`
    pub fn authority_host(&self) -> String {
        format!("{}/", self.shared.base_url)
    }
    pub fn ca_pem(&self) -> String {
        self.ca.pem.clone()
    }
    /// A file holding the CA certificate: `Config::ca_file` when set, else one written now into a
    /// directory of this emulator's own under the temp directory, removed when it is dropped.
    pub fn ca_file(&self) -> PathBuf {
        self.ca.path()
    }
    /// The first tenant's id.
    pub fn tenant_id(&self) -> String {
        self.first_tenant.clone()
    }
    /// The first tenant's first bootstrap app.
    pub fn client_id(&self) -> String {
        self.first_client_id.clone()
    }
    pub fn client_secret(&self) -> String {
        self.first_client_secret.clone()
    }
    /// A Graph token for `tenant` with Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All and
    /// DelegatedPermissionGrant.ReadWrite.All (same as `POST /_emulator/tenants/{tid}/admin-token`).
    pub fn admin_token(&self, tenant: &str) -> String {
        login::admin_token(&self.shared, tenant)
    }
    /// Current realism knobs.
    pub fn realism(&self) -> Realism {
        self.shared.realism.lock().unwrap().clone()
    }
    /// Replace the realism knobs (reseeds the fault generator).
    pub fn set_realism(&self, r: Realism) {
        self.shared.set_realism(r);
    }
    /// Replace the throttling bucket sizes.
    pub fn set_throttle_limits(&self, l: ThrottleLimits) {
        *self.shared.limits.lock().unwrap() = l;
    }
    /// The call log so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.lock().unwrap().clone()
    }
    /// Stop serving and wait for the listener to close.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Start the emulator; returns once it is listening.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    server::start(config).await
}

#[doc(hidden)]
pub fn __running(
    shared: Arc<server::Shared>,
    ca_file: Option<PathBuf>,
    ca_pem: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    first: (String, String, String),
) -> Running {
    let port = shared
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Running {
        shared,
        ca: CaFile {
            pem: ca_pem,
            configured: ca_file,
            on_demand: std::sync::OnceLock::new(),
            port,
        },
        shutdown,
        task,
        first_tenant: first.0,
        first_client_id: first.1,
        first_client_secret: first.2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_yaml_and_json() {
        let y = r#"
listen: 127.0.0.1:8443
tenants:
  - tenant_id: 72f988bf-0000-4000-8000-000000000001
    verified_domains: [contoso.onmicrosoft.com]
    apps:
      - client_id: 11111111-2222-3333-4444-555555555555
        client_secret: s
        federated:
          - issuer: https://kubernetes.default.svc.cluster.local
            subject: system:serviceaccount:ns:sa
        permissions: [Application.ReadWrite.OwnedBy]
realism: {latency_ms: 20, replication_lag_ms: 2000}
"#;
        let c: Config = serde_yaml::from_str(y).unwrap();
        assert_eq!(c.listen.port(), 8443);
        assert_eq!(
            c.tenants[0].apps[0].federated[0].subject,
            "system:serviceaccount:ns:sa"
        );
        assert_eq!(c.tenants[0].apps[0].display_name, "fhir-app-operator");
        assert_eq!(c.realism.replication_lag_ms, 2000);
        assert_eq!(c.throttle_limits, ThrottleLimits::default());
        let j: Config = serde_json::from_str(r#"{"realism":{"throttling":true}}"#).unwrap();
        assert!(j.realism.throttling);
        assert_eq!(j.tenants.len(), 1);
        assert_eq!(
            j.tenants[0].apps[0].permissions,
            vec!["Application.ReadWrite.OwnedBy"]
        );
    }

    #[test]
    fn secrets_look_like_entra_secrets() {
        let s = random_secret();
        assert_eq!(s.len(), 40);
        assert_eq!(&s[4..6], "Q~");
    }
}
