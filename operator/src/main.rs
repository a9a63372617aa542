//! `fhir-app-operator` binary: flags/env → config, JSON logs, run until SIGTERM.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = fhir_app_operator::Cli::parse();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .init();
    let config = match cli.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fhir-app-operator: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!(tenant = %config.tenant_id, graph = %config.graph_url, cluster = %config.cluster_name, "starting");
    fhir_app_operator::run(config).await
}
