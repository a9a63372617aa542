//! Test support shared by `kube-local`, the integration tests (`tests/`) and the benchmark
//! (`bench/`): a local control plane, free loopback ports, the project's CRDs, and the emulator and
//! operator run as processes. One place each, so the three never drift apart.

pub mod binaries;
mod control_plane;
pub mod crds;
mod emulator;
mod operator;
mod pki;
pub mod plane;
mod ports;

pub use control_plane::ControlPlane;
pub use emulator::EmulatorProcess;
pub use operator::OperatorProcess;
pub use ports::free_port;

/// A client for the cluster `kubeconfig` names (its current context).
pub async fn client_from_kubeconfig(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
