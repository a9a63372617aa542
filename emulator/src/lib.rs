#![recursion_limit = "256"]
//! entra-emulator: a local, stateful stand-in for Microsoft Entra ID — the Microsoft Graph v1.0
//! application-registration surface and the identity platform's token endpoint — served over HTTPS
//! with a CA generated at start. See README.md.
//!
//! Layers, bottom up (no module imports one above it):
//! - [`config`] (what an operator sets), `crypto`, `request` (the request context, the call-log
//!   entry, the caller), `state` (the store, each surface's in-memory part, the call log, realism,
//!   seeding) and `bearer` (the one bearer-token check);
//! - the surfaces, one folder each: `identity` (login.microsoftonline.com), `graph` (Microsoft
//!   Graph), `arm` (Azure Resource Manager and the FHIR stand-ins), `admin` (`/_emulator/…`);
//! - `server`: the listener, the route table naming every operation, and the request pipeline.
use std::path::PathBuf;
use std::sync::Arc;

mod admin;
mod arm;
mod bearer;
pub mod config;
pub mod crypto;
mod graph;
mod identity;
mod request;
mod server;
mod state;

pub use config::{
    ArmConfig, BootstrapApp, Config, DeltaConfig, FederatedTrust, FhirServiceConfig, GroupConfig,
    Realism, SeedAssignment, TenantConfig, ThrottleLimits, TrustedIssuer, UserConfig,
    random_secret,
};
pub use state::calls::CallRecord;

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
    shared: Arc<state::Shared>,
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
    /// Azure Resource Manager's endpoint (role assignments under `/subscriptions/…` and
    /// `/providers/…` on the same listener): `base_url`, as the operator's `FHIR_OP_ARM_URL` wants it.
    pub fn arm_url(&self) -> String {
        self.shared.base_url.clone()
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
        identity::token::admin_token(&self.shared, tenant)
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
    let ca_file = config.ca_file.clone();
    let server::Started {
        shared,
        ca_pem,
        shutdown,
        task,
        first,
    } = server::start(config).await?;
    let port = shared
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Ok(Running {
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
    })
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
