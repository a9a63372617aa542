//! Workload identity: no secret at all. A federated identity credential lets the client's
//! ServiceAccount token (from the cluster's service-account issuer) sign in as the application.

use kube::ResourceExt;

use super::{Inputs, Prepared};
use crate::api::CredentialStatus;
use crate::controller::application::WRITE_APPS;
use crate::controller::{Error, needs};

/// Where the AKS workload-identity webhook projects the token.
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

/// The federated credential's name for a ServiceAccount: `k8s-<ns>-<sa>`, Graph's allowed
/// characters, at most 120.
fn credential_name(ns: &str, sa: &str) -> String {
    format!("k8s-{ns}-{sa}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect()
}

pub async fn prepare(i: &Inputs<'_>) -> Result<Prepared, Error> {
    let issuer = i.ctx.config.service_account_issuer.clone().ok_or_else(|| {
        Error::MissingConfig("WorkloadIdentity needs the cluster's service-account issuer: start the operator with --service-account-issuer (FHIR_OP_SERVICE_ACCOUNT_ISSUER)".into())
    })?;
    let ns = i.obj.namespace().unwrap_or_default();
    let sa = i
        .obj
        .spec
        .credential
        .as_ref()
        .and_then(|c| c.service_account_name.clone())
        .unwrap_or_default();
    let name = credential_name(&ns, &sa);
    let subject = format!("system:serviceaccount:{ns}:{sa}");
    let have = i
        .graph
        .list_federated_credentials(&i.app.id)
        .await
        .map_err(needs("read federated credentials", WRITE_APPS))?;
    if !have
        .iter()
        .any(|f| f.name == name && f.issuer == issuer && f.subject == subject)
    {
        i.graph
            .upsert_federated_credential(&i.app.id, &name, &issuer, &subject)
            .await
            .map_err(needs("add a federated credential", WRITE_APPS))?;
        i.ctx
            .event(
                i.obj,
                false,
                "FederatedCredentialSet",
                format!("service account {ns}/{sa} may sign in as this application"),
            )
            .await;
    }
    Ok(Prepared {
        federated_token_file: Some(TOKEN_FILE.into()),
        status: Some(CredentialStatus {
            r#type: "WorkloadIdentity".into(),
            key_id: Some(name),
            expires_at: None,
        }),
        ..Default::default()
    })
}
