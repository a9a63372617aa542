//! The operator's credential and the bearer tokens it gets from Entra ID's token endpoint, cached per
//! audience (Graph, Azure Resource Manager) until shortly before they expire.
//!
//! Hand-written rather than on the `azure_identity` crate (1.1.0-beta.1 evaluated): its certificate
//! credential needs OpenSSL (feature `client_certificate = [openssl]`), which the operator's static
//! musl image does not carry, while the three credentials the operator uses (secret, certificate
//! assertion, workload-identity assertion) are one form POST each, with our own retry and rate
//! limits around them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::assertion::CertificateCredential;
use super::service::ServiceError;
use super::transport;
use crate::graph::error::{GraphError, classify_token_error};
use crate::metrics::Metrics;

/// How the operator authenticates to Entra ID.
#[derive(Clone)]
pub enum Credential {
    /// client_credentials with a client secret.
    Secret { client_id: String, secret: String },
    /// Workload identity: a federated token file, re-read for every token request (kubelet rotates it).
    FederatedTokenFile { client_id: String, path: PathBuf },
    /// A certificate (client_assertion signed with its private key).
    Certificate {
        client_id: String,
        certificate: CertificateCredential,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { client_id, .. } => {
                write!(f, "Secret {{ client_id: {client_id}, secret: *** }}")
            }
            Self::FederatedTokenFile { client_id, path } => write!(
                f,
                "FederatedTokenFile {{ client_id: {client_id}, path: {path:?} }}"
            ),
            Self::Certificate {
                client_id,
                certificate,
            } => write!(
                f,
                "Certificate {{ client_id: {client_id}, {certificate:?} }}"
            ),
        }
    }
}

impl Credential {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Secret { client_id, .. }
            | Self::FederatedTokenFile { client_id, .. }
            | Self::Certificate { client_id, .. } => client_id,
        }
    }
}

/// Token endpoint success body.
#[derive(serde::Deserialize, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The setting that chooses the token endpoint, named when it cannot be reached.
const AUTHORITY_SETTING: &str = "AZURE_AUTHORITY_HOST";

/// A token and when it expires.
type Cached = Option<(String, Instant)>;

/// Bearer tokens of one credential at one token endpoint (one tenant), cached per scope until 5
/// minutes before expiry. One lock per scope: a Graph token request does not hold up ARM's.
pub struct Tokens {
    http: reqwest::Client,
    token_endpoint: String,
    credential: Credential,
    metrics: Arc<Metrics>,
    by_scope: std::sync::Mutex<HashMap<String, Arc<Mutex<Cached>>>>,
}

impl Tokens {
    pub fn new(
        http: reqwest::Client,
        token_endpoint: String,
        credential: Credential,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            token_endpoint,
            credential,
            metrics,
            by_scope: Default::default(),
        }
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn slot(&self, scope: &str) -> Arc<Mutex<Cached>> {
        let mut slots = self.by_scope.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(scope.to_string()).or_default().clone()
    }

    /// An access token for `scope`, e.g. `https://graph.microsoft.com/.default`.
    pub async fn token(&self, scope: &str) -> Result<String, GraphError> {
        let slot = self.slot(scope);
        let mut cached = slot.lock().await;
        if let Some((tok, exp)) = cached.as_ref()
            && Instant::now() + Duration::from_secs(300) < *exp
        {
            return Ok(tok.clone());
        }
        let (tok, exp) = self.request(scope).await?;
        *cached = Some((tok.clone(), exp));
        Ok(tok)
    }

    /// Forgets the token for `scope` (the service refused it as expired or revoked).
    pub async fn forget(&self, scope: &str) {
        *self.slot(scope).lock().await = None;
    }

    /// One client_credentials request for `scope`: the token and when it expires.
    async fn request(&self, scope: &str) -> Result<(String, Instant), GraphError> {
        let form = self.form(scope).await?;
        let req = self.http.post(&self.token_endpoint).form(&form);
        let resp = transport::send(req, &self.token_endpoint, AUTHORITY_SETTING)
            .await
            .map_err(GraphError::from)?;
        self.metrics.graph_call("token", resp.status().as_u16());
        let answer = transport::read("token", resp, AUTHORITY_SETTING)
            .await
            .map_err(GraphError::from_failure)?;
        if answer.status != 200 {
            return Err(classify_token_error(answer.status, &answer.body));
        }
        let tr: TokenResponse = serde_json::from_str(&answer.body)
            .map_err(|e| GraphError::Decode(format!("token response: {e}")))?;
        let exp = Instant::now() + Duration::from_secs(tr.expires_in.max(60));
        Ok((tr.access_token, exp))
    }

    /// The token request's form: the grant, and the secret or the client assertion.
    async fn form(&self, scope: &str) -> Result<Vec<(&'static str, String)>, GraphError> {
        let mut form = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.credential.client_id().to_string()),
            ("scope", scope.to_string()),
        ];
        let assertion = match &self.credential {
            Credential::Secret { secret, .. } => {
                form.push(("client_secret", secret.clone()));
                return Ok(form);
            }
            Credential::FederatedTokenFile { path, .. } => tokio::fs::read_to_string(path)
                .await
                .map(|a| a.trim().to_string())
                .map_err(|e| GraphError::Auth {
                    code: "token_file".into(),
                    message: format!("reading {}: {e}", path.display()),
                    permanent: false,
                })?,
            Credential::Certificate {
                client_id,
                certificate,
            } => certificate
                .assertion(
                    client_id,
                    &self.token_endpoint,
                    jiff::Timestamp::now().as_second(),
                )
                .map_err(|message| GraphError::Auth {
                    code: "client_assertion".into(),
                    message,
                    permanent: true,
                })?,
        };
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ));
        form.push(("client_assertion", assertion));
        Ok(form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_stays_out_of_debug() {
        let cred = Credential::Secret {
            client_id: "c".into(),
            secret: "very-secret".into(),
        };
        assert!(!format!("{cred:?}").contains("very-secret"));
    }
}
