//! The project's CustomResourceDefinitions, installed the way a chart or `kubectl apply` would.

use anyhow::{Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{conditions, wait::await_condition};
use std::time::Duration;

/// The committed `crds/` (generated from the operator's types by `make crds`).
const PROJECT_CRDS: [(&str, &str); 2] = [
    (
        "fhirresourceapps.yaml",
        include_str!("../../crds/fhirresourceapps.yaml"),
    ),
    (
        "fhirclientapps.yaml",
        include_str!("../../crds/fhirclientapps.yaml"),
    ),
];

/// Server-side applies the committed CRDs as field manager `manager` and waits until each is
/// Established, for at most `within` each.
pub async fn install_crds(client: &kube::Client, manager: &str, within: Duration) -> Result<()> {
    for (file, text) in PROJECT_CRDS {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(text).with_context(|| format!("parsing crds/{file}"))?;
        install_crd(client, &crd, manager, within).await?;
    }
    Ok(())
}

/// Server-side applies `crd` as field manager `manager` and waits until it is Established, for at
/// most `within`.
pub async fn install_crd(
    client: &kube::Client,
    crd: &CustomResourceDefinition,
    manager: &str,
    within: Duration,
) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().context("a CRD without a name")?;
    api.patch(
        &name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(crd),
    )
    .await
    .with_context(|| format!("applying CRD {name}"))?;
    tokio::time::timeout(
        within,
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .with_context(|| format!("CRD {name} not Established after {within:?}"))?
    .with_context(|| format!("watching CRD {name}"))?;
    Ok(())
}
