//! `entra-emulator`: run the Entra ID emulator (Microsoft Graph app registrations + token endpoint).
use clap::Parser;
use entra_emulator::{BootstrapApp, Config, FederatedTrust, TenantConfig, TrustedIssuer};
use std::path::PathBuf;

/// A local, stateful emulator of Microsoft Entra ID: the Microsoft Graph v1.0 application-registration
/// API (applications, credentials, federated identity credentials, service principals, app role
/// assignments, oauth2PermissionGrants, deleted items) and the identity platform's token endpoint
/// (client credentials with a secret, a certificate assertion or a federated assertion), over HTTPS;
/// and users signing in: directory users and groups (--user), /{tenant}/oauth2/v2.0/authorize (and v1
/// /oauth2/authorize) with sign-in and consent pages, authorization codes with PKCE, refresh tokens,
/// the device-code flow (/oauth2/v2.0/devicecode, /devicelogin), logout and /oidc/userinfo.
///
/// At start it generates a CA, writes the CA certificate (PEM) to --ca-file, and once it is serving
/// prints lines a shell can `eval`:
///
///   GRAPH_URL=https://127.0.0.1:PORT/v1.0
///   AZURE_AUTHORITY_HOST=https://127.0.0.1:PORT/
///   AZURE_TENANT_ID=…  AZURE_CLIENT_ID=…  AZURE_CLIENT_SECRET=…
///   FHIR_OP_GRAPH_URL=…  FHIR_OP_ARM_URL=…  FHIR_OP_EXTRA_CA_FILE=…
///   CA_FILE=… (printed last: once it is there, all are)
///
/// so `set -a; eval "$(entra-emulator …)"` configures fhir-app-operator directly (it reads the
/// AZURE_* and FHIR_OP_* names).
///
/// The client is the bootstrap "operator" application of the first tenant; it holds the Graph
/// application permissions given with --permission (default Application.ReadWrite.OwnedBy).
///
/// Admin API (same listener, no auth): GET /_emulator/state, GET|DELETE /_emulator/calls,
/// GET /_emulator/calls/summary, GET|PUT /_emulator/realism, POST /_emulator/tenants,
/// POST /_emulator/tenants/{tid}/admin-token, POST /_emulator/tenants/{tid}/users|groups,
/// POST /_emulator/sign-in/age, POST /_emulator/trusted-issuers.
/// Logs go to stderr (RUST_LOG=debug for more). Stops on SIGINT/SIGTERM.
#[derive(Parser, Debug)]
#[command(name = "entra-emulator", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", env = "ENTRA_EMULATOR_LISTEN")]
    listen: std::net::SocketAddr,
    /// A config file (YAML or JSON) with any fields of the library's `Config`: listen, tenants
    /// [{tenant_id, verified_domains, apps:[{client_id, display_name, client_secret, certificate_pem,
    /// federated:[{issuer, subject, audience}], permissions}], users:[{user_principal_name, password,
    /// display_name, object_id, groups, admin}], groups:[{display_name, object_id}]}], state_file, ca_file, realism{…},
    /// trusted_issuers [{issuer, jwks}], signing_key_pem, default_sign_in_audience, hostnames.
    /// Flags given on the command line override the file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Tenant id (GUID) of the first tenant; default random.
    #[arg(long)]
    tenant_id: Option<String>,
    /// Verified domain of the first tenant (repeatable); default contoso.onmicrosoft.com, contoso.example.
    #[arg(long = "verified-domain")]
    verified_domains: Vec<String>,
    /// Client id of the bootstrap operator app; default random.
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret of the bootstrap app; default random.
    #[arg(long)]
    client_secret: Option<String>,
    /// A PEM certificate file registered on the bootstrap app (certificate client assertions).
    #[arg(long)]
    client_certificate: Option<PathBuf>,
    /// A federated credential of the bootstrap app: ISSUER,SUBJECT[,AUDIENCE] (repeatable); e.g. a
    /// Kubernetes service-account issuer and `system:serviceaccount:NS:NAME`.
    #[arg(long = "federated")]
    federated: Vec<String>,
    /// Trust an OIDC issuer for federated assertions: ISSUER or ISSUER=JWKS_FILE (repeatable).
    /// Without a JWKS file the issuer's /.well-known/openid-configuration is fetched.
    #[arg(long = "trust-issuer")]
    trust_issuers: Vec<String>,
    /// Graph application permission of the bootstrap app (repeatable): Application.ReadWrite.OwnedBy,
    /// Application.ReadWrite.All, Application.Read.All, AppRoleAssignment.ReadWrite.All,
    /// DelegatedPermissionGrant.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All.
    #[arg(long = "permission")]
    permissions: Vec<String>,
    /// A directory user of the first tenant who can sign in (repeatable):
    /// UPN:PASSWORD[:DISPLAY NAME[:GROUP,GROUP…]], e.g. `ada@contoso.example:Passw0rd!:Ada Lovelace:clinicians`.
    #[arg(long = "user")]
    users: Vec<String>,
    /// Persist state to this JSON file (loaded at start, saved on every change).
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Write the CA certificate (PEM) here; default a file in the temp directory.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Extra host name / IP for the serving certificate (repeatable).
    #[arg(long = "hostname")]
    hostnames: Vec<String>,
    /// Latency added to every Graph and login call, ms.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Replication lag: new objects and secrets are invisible to other requests for this long, ms.
    #[arg(long)]
    replication_lag_ms: Option<u64>,
    /// Enable Graph's throttling token buckets (429 + Retry-After).
    #[arg(long)]
    throttling: bool,
    /// Resource units per 10 s per app+tenant when throttling (Graph: 3500).
    #[arg(long)]
    throttle_resource_units: Option<u64>,
    /// Writes per 150 s per app+tenant when throttling (Graph: 3000).
    #[arg(long)]
    throttle_writes: Option<u64>,
    /// Fraction (0..1) of calls answered with a random 5xx.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Fraction (0..1) of calls whose connection is dropped.
    #[arg(long)]
    drop_rate: Option<f64>,
    /// Seed of the fault generator (same seed, same faults).
    #[arg(long)]
    seed: Option<u64>,
}

fn load_config(path: &PathBuf) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)?;
    if text.trim_start().starts_with('{') {
        Ok(serde_json::from_str(&text)?)
    } else {
        Ok(serde_yaml::from_str(&text)?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let cfg = config(&a)?;
    let running = entra_emulator::start(cfg).await?;
    print_settings(&running)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("entra-emulator: shutting down");
    running.shutdown().await;
    Ok(())
}

/// The config: the file's (or the defaults), with the flags given on top.
fn config(a: &Args) -> anyhow::Result<Config> {
    let mut cfg = match &a.config {
        Some(p) => load_config(p)?,
        None => Config::default(),
    };
    if cfg.tenants.is_empty() {
        cfg.tenants.push(TenantConfig::default());
    }
    cfg.listen = if a.config.is_some() && a.listen.to_string() == "127.0.0.1:0" {
        cfg.listen
    } else {
        a.listen
    };
    first_tenant_flags(a, &mut cfg.tenants[0])?;
    for ti in &a.trust_issuers {
        let (issuer, jwks) = match ti.split_once('=') {
            Some((i, f)) => (
                i.to_string(),
                Some(serde_json::from_str(&std::fs::read_to_string(f)?)?),
            ),
            None => (ti.clone(), None),
        };
        cfg.trusted_issuers.push(TrustedIssuer { issuer, jwks });
    }
    if a.state_file.is_some() {
        cfg.state_file = a.state_file.clone();
    }
    if a.ca_file.is_some() {
        cfg.ca_file = a.ca_file.clone();
    }
    cfg.hostnames.extend(a.hostnames.iter().cloned());
    realism_flags(a, &mut cfg);
    Ok(cfg)
}

/// The flags about the first tenant and its bootstrap app.
fn first_tenant_flags(a: &Args, t: &mut TenantConfig) -> anyhow::Result<()> {
    if let Some(tid) = &a.tenant_id {
        t.tenant_id = tid.clone();
    }
    if !a.verified_domains.is_empty() {
        t.verified_domains = a.verified_domains.clone();
    }
    if t.apps.is_empty() {
        t.apps.push(BootstrapApp::default());
    }
    let app = &mut t.apps[0];
    if let Some(c) = &a.client_id {
        app.client_id = c.clone();
    }
    if let Some(sec) = &a.client_secret {
        app.client_secret = Some(sec.clone());
    }
    if let Some(p) = &a.client_certificate {
        app.certificate_pem = Some(std::fs::read_to_string(p)?);
    }
    for f in &a.federated {
        let parts: Vec<&str> = f.splitn(3, ',').collect();
        if parts.len() < 2 {
            anyhow::bail!("--federated needs ISSUER,SUBJECT[,AUDIENCE]");
        }
        app.federated.push(FederatedTrust {
            issuer: parts[0].into(),
            subject: parts[1].into(),
            audience: parts.get(2).map(|s| s.to_string()).unwrap_or_default(),
        });
    }
    if !a.permissions.is_empty() {
        app.permissions = a.permissions.clone();
    }
    for u in &a.users {
        t.users.push(entra_emulator::UserConfig::parse_flag(u)?);
    }
    Ok(())
}

/// The realism and throttling flags.
fn realism_flags(a: &Args, cfg: &mut Config) {
    if let Some(v) = a.latency_ms {
        cfg.realism.latency_ms = v
    }
    if let Some(v) = a.replication_lag_ms {
        cfg.realism.replication_lag_ms = v
    }
    if a.throttling {
        cfg.realism.throttling = true
    }
    if let Some(v) = a.throttle_resource_units {
        cfg.throttle_limits.throttle_resource_units_per_10s = v
    }
    if let Some(v) = a.throttle_writes {
        cfg.throttle_limits.throttle_writes_per_150s = v
    }
    if let Some(v) = a.error_rate {
        cfg.realism.error_rate = v
    }
    if let Some(v) = a.drop_rate {
        cfg.realism.drop_rate = v
    }
    if let Some(v) = a.seed {
        cfg.realism.seed = v
    }
}

/// The settings an operator (fhir-app-operator, or a shell) reads, as `eval`-able lines; `CA_FILE`
/// last, so a reader that has it has them all.
fn print_settings(running: &entra_emulator::Running) -> anyhow::Result<()> {
    println!("GRAPH_URL={}", running.graph_url());
    println!("AZURE_AUTHORITY_HOST={}", running.authority_host());
    println!("AZURE_TENANT_ID={}", running.tenant_id());
    println!("AZURE_CLIENT_ID={}", running.client_id());
    println!(
        "AZURE_CLIENT_SECRET='{}'",
        running.client_secret().replace('\'', "'\\''")
    );
    let ca_file = shell_quote(&running.ca_file().display().to_string());
    // The same values under the names fhir-app-operator reads.
    println!("FHIR_OP_GRAPH_URL={}", running.graph_url());
    println!("FHIR_OP_ARM_URL={}", running.arm_url());
    println!("FHIR_OP_EXTRA_CA_FILE={ca_file}");
    println!("CA_FILE={ca_file}");
    use std::io::Write;
    std::io::stdout().flush()?;
    eprintln!(
        "entra-emulator serving on {} (CA: {})",
        running.base_url(),
        running.ca_file().display()
    );

    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
