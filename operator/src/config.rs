//! Operator configuration: command-line flags, each also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::api::DeletionPolicy;
use crate::graph::{Credential, Endpoints};

/// Graph's write quota per application and tenant: 3,000 writes per 150 s, a bucket of 3,000
/// refilled at 20 per second (learn.microsoft.com/graph/throttling-limits, "Identity and access
/// service limits"; docs/entra-facts/claims-and-delta.md B5). The write budget starts there.
pub const DEFAULT_WRITE_RATE: f64 = 20.0;
pub const DEFAULT_WRITE_BURST: u32 = 3000;

/// Runtime configuration of the operator (built from [`Cli`] or directly by tests).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Identity of this cluster, part of every application's uniqueName.
    pub cluster_name: String,
    pub graph_url: String,
    pub graph_scope: String,
    pub authority_host: String,
    pub tenant_id: String,
    pub credential: Credential,
    pub extra_ca_file: Option<PathBuf>,
    /// Issuer of this cluster's service-account tokens (for workload-identity credentials).
    pub service_account_issuer: Option<String>,
    /// The full re-read of every object (the safety net under the delta watcher).
    pub resync: Duration,
    /// The full re-read of a tenant's objects while its delta watcher is off or failing.
    pub resync_unwatched: Duration,
    /// Poll interval of each tenant's Graph delta watcher; `None` turns it off.
    pub delta_poll: Option<Duration>,
    pub stalled_retry: Duration,
    /// Limit on one Graph or token request, body included (a slow or trickling server times out).
    pub graph_timeout: Duration,
    pub graph_rate_per_sec: f64,
    pub graph_burst: u32,
    pub graph_write_rate_per_sec: f64,
    pub graph_write_burst: u32,
    pub concurrency: u16,
    /// Address of /healthz, /readyz, /metrics; `None` disables the server.
    pub http_addr: Option<SocketAddr>,
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    /// Only watch this namespace (default: all namespaces).
    pub watch_namespace: Option<String>,
    /// Azure Resource Manager endpoint, for role assignments on the managed FHIR service.
    pub arm_url: String,
    /// Token scope requested for Azure Resource Manager.
    pub arm_scope: String,
    /// How long a stopping operator waits for in-flight reconciles before it exits without them.
    pub shutdown_grace: Duration,
    /// What deleting a resource without `spec.deletionPolicy` does in Entra ID.
    pub default_deletion_policy: DeletionPolicy,
}

impl OperatorConfig {
    pub fn endpoints(&self) -> Endpoints {
        let mut e = Endpoints::new(&self.graph_url, &self.authority_host);
        e.graph_scope = self.graph_scope.clone();
        e
    }

    /// Defaults for everything but the Entra connection (used by tests).
    pub fn new(
        tenant_id: &str,
        credential: Credential,
        graph_url: &str,
        authority_host: &str,
    ) -> Self {
        Self {
            cluster_name: "default".into(),
            graph_url: graph_url.into(),
            graph_scope: crate::graph::client::DEFAULT_GRAPH_SCOPE.into(),
            authority_host: authority_host.into(),
            tenant_id: tenant_id.into(),
            credential,
            extra_ca_file: None,
            service_account_issuer: None,
            resync: DEFAULT_RESYNC,
            resync_unwatched: Duration::from_secs(300),
            delta_poll: Some(Duration::from_secs(60)),
            stalled_retry: Duration::from_secs(300),
            graph_timeout: crate::graph::client::DEFAULT_TIMEOUT,
            graph_rate_per_sec: 100.0,
            graph_burst: 200,
            graph_write_rate_per_sec: DEFAULT_WRITE_RATE,
            graph_write_burst: DEFAULT_WRITE_BURST,
            concurrency: 8,
            http_addr: None,
            leader_election: false,
            lease_name: "fhir-app-operator".into(),
            lease_namespace: "default".into(),
            identity: hostname(),
            watch_namespace: None,
            arm_url: crate::arm::DEFAULT_ARM_URL.into(),
            arm_scope: crate::arm::DEFAULT_ARM_SCOPE.into(),
            shutdown_grace: Duration::from_secs(20),
            default_deletion_policy: DeletionPolicy::Delete,
        }
    }
}

/// The full re-read of every object while Graph delta watches its tenant. Delta names every change
/// to an application's or service principal's own properties and every deletion, within a poll
/// interval (docs/architecture.md, "Drift"); what it cannot see (app role assignments, delegated
/// grants, federated credentials, owners, the assigned app management policy) is read when delta
/// names the object and at this re-read. 24 h keeps a client's steady cost near 0.1 Graph reads an
/// hour (a full reconcile reads 2 to 3 times; with the delta polls, under 0.5 from about 350
/// clients in a tenant up, `make bench`) while a hand-made change delta cannot see is still undone
/// within a day. Such changes take access away (a removed grant or role assignment), never add it:
/// an operator that misses one for a day leaves a client with less than its spec, not more.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(24 * 3600);

fn hostname() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("fhir-app-operator-{}", uuid::Uuid::new_v4().simple()))
}

fn parse_deletion_policy(s: &str) -> Result<DeletionPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("{s:?}: expected Delete, Purge or Orphan"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::desired::duration::parse(s)
        .ok_or_else(|| format!("not a duration like 5m, 30s, 1h: {s}"))
}

/// fhir-app-operator: reconciles FhirResourceApp and FhirClientApp resources into Microsoft Entra ID
/// app registrations and Kubernetes Secrets/ConfigMaps.
///
/// Authentication to Entra ID uses the AZURE_* variables the Azure SDKs use: AZURE_CLIENT_SECRET for a
/// client secret, AZURE_CLIENT_CERTIFICATE_PATH for a certificate, or AZURE_FEDERATED_TOKEN_FILE
/// (injected by AKS workload identity) for a federated token. Logs are JSON on stdout; RUST_LOG sets the level (default info).
#[derive(Parser, Debug, Clone)]
#[command(name = "fhir-app-operator", version, about, long_about)]
pub struct Cli {
    /// Entra tenant ID the operator registers applications in (by default).
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant_id: String,
    /// Application (client) ID of the operator's own app registration.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: String,
    /// Client secret of the operator's app registration (prefer workload identity).
    #[arg(long, env = "AZURE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// PEM file with the certificate and RSA private key of the operator's app registration.
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH")]
    pub client_certificate_path: Option<PathBuf>,
    /// Federated token file (workload identity); re-read for every token request.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub federated_token_file: Option<PathBuf>,
    /// Entra authority host (sovereign clouds, the emulator).
    #[arg(
        long,
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com/"
    )]
    pub authority_host: String,
    /// Microsoft Graph endpoint including the version.
    #[arg(
        long,
        env = "FHIR_OP_GRAPH_URL",
        default_value = "https://graph.microsoft.com/v1.0"
    )]
    pub graph_url: String,
    /// Token scope requested for Microsoft Graph (sovereign clouds: e.g. https://graph.microsoft.us/.default).
    #[arg(
        long,
        env = "FHIR_OP_GRAPH_SCOPE",
        default_value = "https://graph.microsoft.com/.default"
    )]
    pub graph_scope: String,
    /// Extra CA bundle (PEM) trusted for Graph and the token endpoint, in addition to the system roots.
    #[arg(long, env = "FHIR_OP_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    /// Name of this cluster; part of every application's uniqueName, so two clusters never share an app.
    #[arg(long, env = "FHIR_OP_CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,
    /// Issuer URL of this cluster's service-account tokens (needed for WorkloadIdentity credentials).
    #[arg(long, env = "FHIR_OP_SERVICE_ACCOUNT_ISSUER")]
    pub service_account_issuer: Option<String>,
    /// On SIGTERM, how long in-flight reconciles may finish before the operator exits without them
    /// (each is idempotent; the next leader redoes it). Below Kubernetes' default 30 s grace period.
    #[arg(long, env = "FHIR_OP_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// What deleting a FhirClientApp or FhirResourceApp without its own `spec.deletionPolicy` does in
    /// Entra ID: Delete (soft delete, restorable 30 days), Purge (for good) or Orphan.
    #[arg(long, env = "FHIR_OP_DEFAULT_DELETION_POLICY", default_value = "Delete", value_parser = parse_deletion_policy)]
    pub default_deletion_policy: DeletionPolicy,
    /// Period of the full re-read of every resource in Graph while the delta watcher watches its
    /// tenant (the safety net: delta finds changes to applications and service principals within
    /// --delta-poll; this finds what delta cannot see, such as role assignments and grants).
    #[arg(long, env = "FHIR_OP_RESYNC", default_value = "24h", value_parser = parse_duration)]
    pub resync: Duration,
    /// Period of the full re-read while a tenant is not watched through Graph delta (the watcher is
    /// off, Graph refuses delta with 403, or its rounds keep failing): the pace before delta.
    #[arg(long, env = "FHIR_OP_RESYNC_UNWATCHED", default_value = "5m", value_parser = parse_duration)]
    pub resync_unwatched: Duration,
    /// Poll interval of the per-tenant Graph delta watcher (GET /applications/delta and
    /// /servicePrincipals/delta): a change made in Entra out of band is healed within about this
    /// plus Graph's replication delay. 0 turns the watcher off (every object is then re-read every
    /// --resync-unwatched).
    #[arg(long, env = "FHIR_OP_DELTA_POLL", default_value = "60s", value_parser = parse_duration)]
    pub delta_poll: Duration,
    /// Retry period of a Stalled resource (permanent error).
    #[arg(long, env = "FHIR_OP_STALLED_RETRY", default_value = "5m", value_parser = parse_duration)]
    pub stalled_retry: Duration,
    /// Limit on one Graph or token-endpoint request, response body included.
    #[arg(long, env = "FHIR_OP_GRAPH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub graph_timeout: Duration,
    /// Graph requests (reads and writes) per second per tenant (token bucket); the few Azure
    /// Resource Manager calls (role assignments) count too. Graph allows an application 3,500 to
    /// 8,000 resource units per 10 s per tenant (a read costs 1 or 2).
    #[arg(long, env = "FHIR_OP_GRAPH_RATE", default_value_t = 100.0)]
    pub graph_rate: f64,
    /// Burst of the per-tenant request bucket.
    #[arg(long, env = "FHIR_OP_GRAPH_BURST", default_value_t = 200)]
    pub graph_burst: u32,
    /// Ceiling of the adaptive per-tenant write budget (Graph and ARM writes per second), on top of
    /// the request limit. Graph allows an application 3,000 writes per 150 s per tenant, a token
    /// bucket of 3,000 refilled at 20 per second (learn.microsoft.com/graph/throttling-limits,
    /// "Identity and access service limits"); the defaults are that bucket, so a large apply uses
    /// all of it and no more. The budget starts here, halves on each 429 (the tenant's writes wait
    /// out `Retry-After`), and climbs back by a tenth of this every 5 s without one. Set it lower to
    /// cap the operator below Graph's limit (for example when other applications share the
    /// tenant's 18,000 writes per 5 min, or the operator's application writes elsewhere too).
    #[arg(long, env = "FHIR_OP_GRAPH_WRITE_RATE", default_value_t = DEFAULT_WRITE_RATE)]
    pub graph_write_rate: f64,
    /// Burst of the per-tenant write bucket (shrinks with the budget while it is lowered).
    #[arg(long, env = "FHIR_OP_GRAPH_WRITE_BURST", default_value_t = DEFAULT_WRITE_BURST)]
    pub graph_write_burst: u32,
    /// Resources reconciled in parallel per kind.
    #[arg(long, env = "FHIR_OP_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Listen address of /healthz, /readyz and /metrics.
    #[arg(long, env = "FHIR_OP_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Elect a leader with a Lease (run several replicas; only the leader reconciles).
    #[arg(long, env = "FHIR_OP_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "FHIR_OP_LEASE_NAME", default_value = "fhir-app-operator")]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (usually the operator's own, via the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Only watch resources in this namespace (default: all namespaces).
    #[arg(long, env = "FHIR_OP_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Azure Resource Manager endpoint, for the managed FHIR service's role assignments (sovereign
    /// clouds: e.g. https://management.usgovcloudapi.net; the emulator).
    #[arg(
        long,
        env = "FHIR_OP_ARM_URL",
        default_value = "https://management.azure.com"
    )]
    pub arm_url: String,
    /// Token scope requested for Azure Resource Manager (sovereign clouds: e.g.
    /// https://management.usgovcloudapi.net/.default).
    #[arg(
        long,
        env = "FHIR_OP_ARM_SCOPE",
        default_value = "https://management.azure.com/.default"
    )]
    pub arm_scope: String,
}

impl Cli {
    pub fn into_config(self) -> Result<OperatorConfig, String> {
        let credential = match (
            self.client_secret,
            self.client_certificate_path,
            self.federated_token_file,
        ) {
            (Some(secret), _, _) if !secret.is_empty() => Credential::Secret {
                client_id: self.client_id.clone(),
                secret,
            },
            (_, Some(path), _) => {
                let pem =
                    std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let certificate = crate::http::assertion::CertificateCredential::from_pem(&pem)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Credential::Certificate {
                    client_id: self.client_id.clone(),
                    certificate,
                }
            }
            (_, _, Some(path)) => Credential::FederatedTokenFile {
                client_id: self.client_id.clone(),
                path,
            },
            _ => {
                return Err("set AZURE_CLIENT_SECRET (--client-secret), AZURE_CLIENT_CERTIFICATE_PATH (--client-certificate-path) or AZURE_FEDERATED_TOKEN_FILE (--federated-token-file)".into());
            }
        };
        let mut c = OperatorConfig::new(
            &self.tenant_id,
            credential,
            &self.graph_url,
            &self.authority_host,
        );
        c.cluster_name = self.cluster_name;
        c.graph_scope = self.graph_scope;
        c.extra_ca_file = self.extra_ca_file;
        c.service_account_issuer = self.service_account_issuer;
        c.resync = self.resync;
        c.resync_unwatched = self.resync_unwatched;
        c.delta_poll = Some(self.delta_poll).filter(|d| !d.is_zero());
        c.stalled_retry = self.stalled_retry;
        c.graph_timeout = self.graph_timeout;
        c.graph_rate_per_sec = self.graph_rate;
        c.graph_burst = self.graph_burst;
        c.graph_write_rate_per_sec = self.graph_write_rate;
        c.graph_write_burst = self.graph_write_burst;
        c.concurrency = self.concurrency;
        c.http_addr = Some(self.http_addr);
        c.leader_election = self.leader_election;
        c.lease_name = self.lease_name;
        c.lease_namespace = self.lease_namespace;
        c.watch_namespace = self.watch_namespace;
        c.arm_url = self.arm_url;
        c.arm_scope = self.arm_scope;
        c.shutdown_grace = self.shutdown_grace;
        c.default_deletion_policy = self.default_deletion_policy;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_an_env_var_and_help() {
        let cmd = Cli::command();
        for a in cmd.get_arguments().filter(|a| {
            a.get_long().is_some() && !matches!(a.get_id().as_str(), "help" | "version")
        }) {
            assert!(
                a.get_env().is_some(),
                "--{} has no environment variable",
                a.get_long().unwrap()
            );
            assert!(
                a.get_help().is_some(),
                "--{} has no help",
                a.get_long().unwrap()
            );
        }
    }

    #[test]
    fn needs_a_credential_and_parses_durations() {
        let cli = Cli::try_parse_from([
            "op",
            "--tenant-id",
            "t",
            "--client-id",
            "c",
            "--resync",
            "30s",
        ])
        .unwrap();
        let mut no_cred = cli.clone();
        no_cred.client_secret = None;
        no_cred.federated_token_file = None;
        no_cred.client_certificate_path = None;
        assert!(no_cred.into_config().is_err());
        let mut with = cli;
        with.client_secret = Some("s".into());
        let c = with.into_config().unwrap();
        assert_eq!(c.resync, Duration::from_secs(30));
        assert_eq!(c.delta_poll, Some(Duration::from_secs(60)));
        assert_eq!(c.resync_unwatched, Duration::from_secs(300));
        assert!(!format!("{:?}", c.credential).contains("\"s\""));
    }
}
