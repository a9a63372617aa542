//! fhir-app-operator: FhirResourceApp and FhirClientApp reconciled into Entra ID app registrations.

pub mod api;
pub mod arm;
pub mod config;
pub mod controller;
pub mod desired;
pub mod graph;
pub mod http;
pub mod lean;
pub mod metrics;
pub mod runtime;
pub mod url;
pub mod watch_backoff;

pub use config::{Cli, OperatorConfig};
pub use runtime::{run, run_with};

/// Installs the process-wide rustls crypto provider (ring) once; kube and reqwest both use it.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
