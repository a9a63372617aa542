//! A small Microsoft Graph client: token acquisition, retries, rate limiting, metrics.
//!
//! Hand-written rather than on the `azure_identity` crate (1.1.0-beta.1 evaluated): its certificate
//! credential needs OpenSSL (feature `client_certificate = [openssl]`), which the operator's static
//! musl image does not carry, while the three credentials the operator uses (secret, certificate
//! assertion, workload-identity assertion) are one form POST each, with our own retry and rate
//! limits around them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::error::{GraphError, classify, classify_token_error};
use super::ratelimit::RateLimiter;
use super::types::*;
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
        certificate: super::assertion::CertificateCredential,
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

/// Token scope of Microsoft Graph in the public cloud.
pub const DEFAULT_GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Settings shared by every tenant's client.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// e.g. `https://graph.microsoft.com/v1.0`
    pub graph_url: String,
    /// e.g. `https://login.microsoftonline.com/` (always ends with `/`)
    pub authority_host: String,
    /// Token scope for Graph, e.g. `https://graph.microsoft.com/.default` (Graph's identifier, which is
    /// not the Graph URL's host for emulators and proxies).
    pub graph_scope: String,
}

impl Endpoints {
    pub fn new(graph_url: &str, authority_host: &str) -> Self {
        Self {
            graph_url: crate::url::without_slash(graph_url).to_string(),
            authority_host: crate::url::with_slash(authority_host),
            graph_scope: DEFAULT_GRAPH_SCOPE.into(),
        }
    }
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}{tenant}/oauth2/v2.0/token", self.authority_host)
    }
}

/// Default limit on one Graph or token-endpoint request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body the client reads; a larger one is refused instead of buffered
/// (a page of 999 applications is a few MB).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Builds the HTTP client (rustls; optional extra CA bundle in PEM) with the default timeout.
pub fn http_client(extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, GraphError> {
    http_client_with_timeout(extra_ca_pem, DEFAULT_TIMEOUT)
}

/// Builds the HTTP client; `timeout` bounds each request from connect to the last body byte, so a
/// server that trickles its response cannot hold a reconcile forever.
pub fn http_client_with_timeout(
    extra_ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, GraphError> {
    crate::init_crypto();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    if let Some(pem) = extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| GraphError::Transport(format!("extra CA bundle: {e}")))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| GraphError::Transport(e.to_string()))
}

/// Retry policy.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn backoff(&self, attempt: u32) -> Duration {
        (self.base * 2u32.saturating_pow(attempt.min(16))).min(self.max_backoff)
    }
}

/// Graph client for one tenant and one credential.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    tenant_id: String,
    credential: Credential,
    token: Arc<Mutex<Option<(String, Instant)>>>,
    /// Tokens of the same credential for other audiences (Azure Resource Manager), by scope.
    other_tokens: Arc<Mutex<std::collections::HashMap<String, (String, Instant)>>>,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
}

/// The retry policy of a call, by its class: what a 404 means for it. Throttling, 5xx and dropped
/// connections are retried for every class (honouring `Retry-After`), a stale token once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lag {
    /// Reading or changing what was just written: a 404 is replication lag, retried.
    Retry,
    /// A lookup before a delete: absence is the common answer, so a 404 is retried only a few
    /// times (about 7 s), long enough for an object created moments ago to appear.
    Brief,
    /// A lookup where absence is an answer: a 404 is returned at once.
    NoRetry,
}

/// Attempts within which [`Lag::Brief`] retries a 404 (waits of 1, 2 and 4 s).
const BRIEF_LAG_ATTEMPTS: u32 = 3;

impl Lag {
    /// The wait before attempt `attempt + 1` of a call of this class that failed with `err`, or
    /// `None` when the error is its answer (a stale token is handled by the caller).
    fn wait(self, err: &GraphError, attempt: u32, retry: &RetryPolicy) -> Option<Duration> {
        match err {
            GraphError::Throttled { .. }
            | GraphError::Transient { .. }
            | GraphError::Transport(_) => {
                Some(err.retry_after().unwrap_or_else(|| retry.backoff(attempt)))
            }
            GraphError::ReplicationLag { .. } => Some(retry.backoff(attempt)),
            GraphError::NotFound { .. } if self == Lag::Retry => Some(retry.backoff(attempt)),
            GraphError::NotFound { .. } if self == Lag::Brief && attempt <= BRIEF_LAG_ATTEMPTS => {
                Some(retry.backoff(attempt))
            }
            _ => None,
        }
    }
}

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        tenant_id: String,
        credential: Credential,
        limiter: Arc<RateLimiter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            endpoints,
            tenant_id,
            credential,
            token: Arc::new(Mutex::new(None)),
            other_tokens: Arc::default(),
            limiter,
            metrics,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Whether two clients share one token cache (a clone of the same client).
    #[cfg(test)]
    pub(crate) fn shares_token_cache(&self, other: &GraphClient) -> bool {
        Arc::ptr_eq(&self.token, &other.token)
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    /// The client ID this client signs in as.
    pub fn client_id(&self) -> &str {
        self.credential.client_id()
    }
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// An access token for Graph (cached until 5 minutes before expiry).
    pub async fn token(&self) -> Result<String, GraphError> {
        let mut cached = self.token.lock().await;
        if let Some((tok, exp)) = cached.as_ref()
            && Instant::now() + Duration::from_secs(300) < *exp
        {
            return Ok(tok.clone());
        }
        let (tok, exp) = self.request_token(&self.endpoints.graph_scope).await?;
        *cached = Some((tok.clone(), exp));
        Ok(tok)
    }

    /// An access token of the same credential for another resource, e.g. Azure Resource Manager's
    /// `https://management.azure.com/.default` (cached per scope until 5 minutes before expiry).
    pub async fn token_for(&self, scope: &str) -> Result<String, GraphError> {
        let mut cached = self.other_tokens.lock().await;
        if let Some((tok, exp)) = cached.get(scope)
            && Instant::now() + Duration::from_secs(300) < *exp
        {
            return Ok(tok.clone());
        }
        let (tok, exp) = self.request_token(scope).await?;
        cached.insert(scope.to_string(), (tok.clone(), exp));
        Ok(tok)
    }

    /// Forgets the cached token for `scope` (the resource refused it as expired or revoked).
    pub async fn forget_token_for(&self, scope: &str) {
        self.other_tokens.lock().await.remove(scope);
    }

    /// One client_credentials request for `scope`: the token and when it expires.
    async fn request_token(&self, scope: &str) -> Result<(String, Instant), GraphError> {
        let scope = scope.to_string();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.credential.client_id().to_string()),
            ("scope", scope),
        ];
        match &self.credential {
            Credential::Secret { secret, .. } => form.push(("client_secret", secret.clone())),
            Credential::FederatedTokenFile { path, .. } => {
                let assertion =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| GraphError::Auth {
                            code: "token_file".into(),
                            message: format!("reading {}: {e}", path.display()),
                            permanent: false,
                        })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion.trim().to_string()));
            }
            Credential::Certificate {
                client_id,
                certificate,
            } => {
                let endpoint = self.endpoints.token_endpoint(&self.tenant_id);
                let assertion = certificate
                    .assertion(client_id, &endpoint, jiff::Timestamp::now().as_second())
                    .map_err(|message| GraphError::Auth {
                        code: "client_assertion".into(),
                        message,
                        permanent: true,
                    })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        let resp = self
            .http
            .post(self.endpoints.token_endpoint(&self.tenant_id))
            .form(&form)
            .send()
            .await
            .map_err(|e| GraphError::Transport(without_url(e)))?;
        let status = resp.status().as_u16();
        self.metrics.graph_call("token", status);
        let body = read_body("token", resp).await?;
        if status != 200 {
            return Err(classify_token_error(status, &body));
        }
        let tr: TokenResponse = serde_json::from_str(&body)
            .map_err(|e| GraphError::Decode(format!("token response: {e}")))?;
        let exp = Instant::now() + Duration::from_secs(tr.expires_in.max(60));
        Ok((tr.access_token, exp))
    }

    async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        lag: Lag,
    ) -> Result<Option<Value>, GraphError> {
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoints.graph_url)
        };
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            self.limiter
                .acquire(&self.tenant_id, method != Method::GET)
                .await;
            let token = self.token().await?;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let err = match req.send().await {
                Err(e) => GraphError::Transport(without_url(e)),
                Ok(resp) => {
                    let status = resp.status();
                    self.metrics.graph_call(op, status.as_u16());
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let content_type = resp
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_string();
                    let text = read_body(op, resp).await?;
                    if status.is_success() {
                        if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
                            return Ok(None);
                        }
                        return parse_json_body(op, &content_type, &text).map(Some);
                    }
                    classify(status.as_u16(), retry_after.as_deref(), &text)
                }
            };
            attempt += 1;
            let wait = match &err {
                // A token the directory no longer accepts: a fresh one, once, at once.
                GraphError::Auth {
                    permanent: false, ..
                } if !reauthed => {
                    reauthed = true;
                    *self.token.lock().await = None;
                    Duration::ZERO
                }
                _ => match lag.wait(&err, attempt, &self.retry) {
                    Some(wait) => wait,
                    None => return Err(err),
                },
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            tracing::debug!(
                operation = op,
                category = err.category(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying Graph call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// GET `path`, `None` on 404 (after `lag`'s retries of it).
    async fn get_opt(
        &self,
        op: &'static str,
        path: &str,
        lag: Lag,
    ) -> Result<Option<Value>, GraphError> {
        match self.send(op, Method::GET, path, None, &[], lag).await {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => Err(GraphError::Decode(format!("{op}: empty body"))),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn application_path(unique_name: &str) -> String {
        format!("/applications(uniqueName='{}')", odata_quote(unique_name))
    }

    /// Raw application JSON by `uniqueName`, `None` when absent.
    pub async fn get_application_by_unique_name(
        &self,
        unique_name: &str,
    ) -> Result<Option<Value>, GraphError> {
        self.get_opt(
            "getApplication",
            &Self::application_path(unique_name),
            Lag::NoRetry,
        )
        .await
    }

    /// Tags of the application (if any) that holds identifier URI `uri`, to name it in an error.
    pub async fn application_tags_with_identifier_uri(
        &self,
        uri: &str,
    ) -> Result<Option<Vec<String>>, GraphError> {
        let path = format!(
            "/applications?$filter=identifierUris/any(x:x eq '{}')&$select=id,tags",
            odata_quote(uri)
        );
        let v = self
            .send(
                "listApplications",
                Method::GET,
                &path,
                None,
                &[],
                Lag::NoRetry,
            )
            .await?
            .unwrap_or(json!({"value": []}));
        Ok(v["value"].as_array().and_then(|a| a.first()).map(|app| {
            app["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        }))
    }

    /// The application to delete by `uniqueName`, `None` when absent. A 404 is retried for a few
    /// seconds first: an application created moments ago (perhaps by a reconcile cut short) may not be
    /// readable yet (replication lag), and taking it as absent would leave it behind when its
    /// resource is deleted right after being created.
    pub async fn find_application_to_delete(
        &self,
        unique_name: &str,
    ) -> Result<Option<Value>, GraphError> {
        self.get_opt(
            "getApplication",
            &Self::application_path(unique_name),
            Lag::Brief,
        )
        .await
    }

    /// Upsert by `uniqueName` (`Prefer: create-if-missing`). Returns the application (201 body or a
    /// follow-up GET after 204) and whether it was created.
    pub async fn upsert_application(
        &self,
        unique_name: &str,
        body: &Value,
    ) -> Result<(Value, bool), GraphError> {
        let path = format!("/applications(uniqueName='{}')", odata_quote(unique_name));
        match self
            .send(
                "upsertApplication",
                Method::PATCH,
                &path,
                Some(body),
                &[("Prefer", "create-if-missing")],
                Lag::NoRetry,
            )
            .await?
        {
            Some(app) => Ok((app, true)),
            None => {
                let app = self
                    .send("getApplication", Method::GET, &path, None, &[], Lag::Retry)
                    .await?;
                Ok((
                    app.ok_or_else(|| GraphError::Decode("getApplication: empty body".into()))?,
                    false,
                ))
            }
        }
    }

    pub async fn patch_application(&self, object_id: &str, body: &Value) -> Result<(), GraphError> {
        self.send(
            "patchApplication",
            Method::PATCH,
            &format!("/applications/{object_id}"),
            Some(body),
            &[],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_application(&self, object_id: &str) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(
                "deleteApplication",
                Method::DELETE,
                &format!("/applications/{object_id}"),
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    /// Adds a client secret. The returned credential holds `secretText` — never log it.
    pub async fn add_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: jiff::Timestamp,
    ) -> Result<PasswordCredential, GraphError> {
        let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end.to_string()}});
        let v = self
            .send(
                "addPassword",
                Method::POST,
                &format!("/applications/{object_id}/addPassword"),
                Some(&body),
                &[],
                Lag::Retry,
            )
            .await?;
        decode(
            "addPassword",
            v.ok_or_else(|| GraphError::Decode("addPassword: empty body".into()))?,
        )
    }

    pub async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), GraphError> {
        let body = json!({"keyId": key_id});
        ignore_not_found(
            self.send(
                "removePassword",
                Method::POST,
                &format!("/applications/{object_id}/removePassword"),
                Some(&body),
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    pub async fn get_service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, GraphError> {
        let op = "getServicePrincipal";
        let path = format!("/servicePrincipals(appId='{}')", odata_quote(app_id));
        self.get_opt(op, &path, Lag::NoRetry)
            .await?
            .map(|v| parse_service_principal(op, v))
            .transpose()
    }

    /// Creates the service principal of an app (retrying replication lag); an existing one is returned.
    pub async fn ensure_service_principal(
        &self,
        app_id: &str,
    ) -> Result<ServicePrincipal, GraphError> {
        Ok(self.service_principal_for(app_id, false).await?.0)
    }

    /// The service principal of an app, created if missing, and whether this call created it. For an
    /// app created a moment ago (`app_is_new`) it cannot exist yet, so the lookup is skipped: one
    /// Graph round trip less per new client. A 409 (it did exist) falls back to reading it.
    pub async fn service_principal_for(
        &self,
        app_id: &str,
        app_is_new: bool,
    ) -> Result<(ServicePrincipal, bool), GraphError> {
        if !app_is_new && let Some(sp) = self.get_service_principal_by_app_id(app_id).await? {
            return Ok((sp, false));
        }
        let body = json!({"appId": app_id});
        match self
            .send(
                "createServicePrincipal",
                Method::POST,
                "/servicePrincipals",
                Some(&body),
                &[],
                Lag::Retry,
            )
            .await
        {
            Ok(Some(v)) => Ok((parse_service_principal("createServicePrincipal", v)?, true)),
            Ok(None) => Err(GraphError::Decode(
                "createServicePrincipal: empty body".into(),
            )),
            Err(GraphError::Conflict { .. }) => {
                let sp = self
                    .send(
                        "getServicePrincipal",
                        Method::GET,
                        &format!("/servicePrincipals(appId='{}')", odata_quote(app_id)),
                        None,
                        &[],
                        Lag::Retry,
                    )
                    .await?;
                let sp = parse_service_principal(
                    "getServicePrincipal",
                    sp.ok_or_else(|| GraphError::Decode("getServicePrincipal: empty body".into()))?,
                )?;
                Ok((sp, false))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete_service_principal(&self, object_id: &str) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(
                "deleteServicePrincipal",
                Method::DELETE,
                &format!("/servicePrincipals/{object_id}"),
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    /// App role assignments held by a client service principal.
    pub async fn list_app_role_assignments(
        &self,
        client_sp: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.list_all(
            "listAppRoleAssignments",
            &format!("/servicePrincipals/{client_sp}/appRoleAssignments"),
            Lag::Retry,
        )
        .await
    }

    pub async fn assign_app_role(
        &self,
        client_sp: &str,
        resource_sp: &str,
        role_id: &str,
    ) -> Result<(), GraphError> {
        self.assign(client_sp, resource_sp, role_id, Lag::Retry)
            .await
    }

    /// Assigns a user or group (given by object ID in the spec) an app role of `resource_sp`. A 404
    /// is retried only briefly: it is far more often a wrong ID than a group created moments ago.
    pub async fn assign_app_role_to_principal(
        &self,
        principal: &str,
        resource_sp: &str,
        role_id: &str,
    ) -> Result<(), GraphError> {
        self.assign(principal, resource_sp, role_id, Lag::Brief)
            .await
    }

    async fn assign(
        &self,
        principal: &str,
        resource_sp: &str,
        role_id: &str,
        lag: Lag,
    ) -> Result<(), GraphError> {
        let body =
            json!({"principalId": principal, "resourceId": resource_sp, "appRoleId": role_id});
        match self
            .send(
                "assignAppRole",
                Method::POST,
                &format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo"),
                Some(&body),
                &[],
                lag,
            )
            .await
        {
            Ok(_) | Err(GraphError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn remove_app_role_assignment(
        &self,
        client_sp: &str,
        assignment_id: &str,
    ) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(
                "removeAppRoleAssignment",
                Method::DELETE,
                &format!("/servicePrincipals/{client_sp}/appRoleAssignments/{assignment_id}"),
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    /// The principals (users, groups, service principals) assigned app roles of `resource_sp`.
    pub async fn list_assigned_to(
        &self,
        resource_sp: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.list_all(
            "listAppRoleAssignedTo",
            &format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo"),
            Lag::Retry,
        )
        .await
    }

    /// Removes an assignment of `resource_sp`'s app role (to a user, group or service principal).
    pub async fn remove_assigned_to(
        &self,
        resource_sp: &str,
        assignment_id: &str,
    ) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(
                "removeAppRoleAssignedTo",
                Method::DELETE,
                &format!("/servicePrincipals/{resource_sp}/appRoleAssignedTo/{assignment_id}"),
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    /// Sets `appRoleAssignmentRequired` on a service principal.
    pub async fn set_assignment_required(
        &self,
        sp: &str,
        required: bool,
    ) -> Result<(), GraphError> {
        let body = json!({"appRoleAssignmentRequired": required});
        self.send(
            "patchServicePrincipal",
            Method::PATCH,
            &format!("/servicePrincipals/{sp}"),
            Some(&body),
            &[],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    /// Delegated grants of a client service principal.
    pub async fn list_grants(&self, client_sp: &str) -> Result<Vec<PermissionGrant>, GraphError> {
        let path = format!(
            "/oauth2PermissionGrants?$filter=clientId eq '{}'",
            odata_quote(client_sp)
        );
        self.list_all("listGrants", &path, Lag::NoRetry).await
    }

    /// Delegated grants on a resource service principal: admin consent and users' own consents of
    /// every client (Graph supports `$filter` on `resourceId` for oauth2PermissionGrants).
    pub async fn list_grants_on(
        &self,
        resource_sp: &str,
    ) -> Result<Vec<PermissionGrant>, GraphError> {
        let path = format!(
            "/oauth2PermissionGrants?$filter=resourceId eq '{}'",
            odata_quote(resource_sp)
        );
        self.list_all("listGrantsOnResource", &path, Lag::NoRetry)
            .await
    }

    pub async fn create_grant(
        &self,
        client_sp: &str,
        resource_sp: &str,
        scope: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"clientId": client_sp, "consentType": "AllPrincipals", "resourceId": resource_sp, "scope": scope});
        self.send(
            "createGrant",
            Method::POST,
            "/oauth2PermissionGrants",
            Some(&body),
            &[],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    pub async fn update_grant(&self, grant_id: &str, scope: &str) -> Result<(), GraphError> {
        self.send(
            "updateGrant",
            Method::PATCH,
            &format!("/oauth2PermissionGrants/{grant_id}"),
            Some(&json!({"scope": scope})),
            &[],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_grant(&self, grant_id: &str) -> Result<(), GraphError> {
        ignore_not_found(
            self.send(
                "deleteGrant",
                Method::DELETE,
                &format!("/oauth2PermissionGrants/{grant_id}"),
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }

    /// Upserts a federated identity credential by name.
    pub async fn upsert_federated_credential(
        &self,
        object_id: &str,
        name: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"name": name, "issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"],
            "description": "Kubernetes workload identity (fhir-app-operator)"});
        let path = format!(
            "/applications/{object_id}/federatedIdentityCredentials(name='{}')",
            odata_quote(name)
        );
        self.send(
            "upsertFederatedCredential",
            Method::PATCH,
            &path,
            Some(&body),
            &[("Prefer", "create-if-missing")],
            Lag::Retry,
        )
        .await
        .map(|_| ())
    }

    pub async fn list_federated_credentials(
        &self,
        object_id: &str,
    ) -> Result<Vec<FederatedIdentityCredential>, GraphError> {
        self.list_all(
            "listFederatedCredentials",
            &format!("/applications/{object_id}/federatedIdentityCredentials"),
            Lag::Retry,
        )
        .await
    }

    /// Every item of a Graph collection: the first page and each `@odata.nextLink` after it (Graph
    /// pages at 100 by default). At most [`MAX_PAGES`] pages, so a Graph that keeps linking cannot
    /// hold a reconcile forever.
    async fn list_all<T: DeserializeOwned + Default>(
        &self,
        op: &'static str,
        path: &str,
        lag: Lag,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let v = self.send(op, Method::GET, &url, None, &[], lag).await?;
            let page: Page<T> = decode(op, v.unwrap_or(json!({"value": []})))?;
            items.extend(page.value);
            next = page.next_link;
        }
        Err(GraphError::Decode(format!(
            "{op}: more than {MAX_PAGES} pages"
        )))
    }
}

/// Most pages [`GraphClient::list_all`] follows (100 000 items at Graph's default page size).
const MAX_PAGES: usize = 1000;

/// Reads a response body of at most [`MAX_RESPONSE_BYTES`]; a larger one is refused, not buffered.
async fn read_body(op: &str, mut resp: reqwest::Response) -> Result<String, GraphError> {
    let too_big = || {
        GraphError::Decode(format!(
            "{op}: response body larger than the {MAX_RESPONSE_BYTES}-byte limit"
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| GraphError::Transport(format!("{op}: reading response: {}", without_url(e))))?
    {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Parses a successful response body as JSON; the error names the operation and the content type.
pub fn parse_json_body(op: &str, content_type: &str, text: &str) -> Result<Value, GraphError> {
    serde_json::from_str(text).map_err(|e| {
        GraphError::Decode(format!(
            "{op}: response is not valid JSON (content type {content_type}, {} bytes): {e}",
            text.len()
        ))
    })
}

fn decode<T: DeserializeOwned>(op: &str, v: Value) -> Result<T, GraphError> {
    serde_json::from_value(v).map_err(|e| GraphError::Decode(format!("{op}: {e}")))
}

fn ignore_not_found(r: Result<Option<Value>, GraphError>) -> Result<(), GraphError> {
    match r {
        Ok(_) | Err(GraphError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Quotes a value inside an OData string literal.
pub fn odata_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// reqwest errors print the URL; ours carry no secrets, but keep messages short and stable.
fn without_url(e: reqwest::Error) -> String {
    let timed_out = e.is_timeout();
    let s = e.without_url().to_string();
    if timed_out && !s.contains("timed out") {
        format!("{s}: timed out")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_class_retries_a_404_as_its_policy_says_and_every_class_waits_out_throttling() {
        let r = RetryPolicy::default();
        let not_found = GraphError::NotFound {
            code: "Request_ResourceNotFound".into(),
            message: "gone".into(),
        };
        assert_eq!(Lag::NoRetry.wait(&not_found, 1, &r), None);
        assert_eq!(Lag::Retry.wait(&not_found, 5, &r), Some(r.backoff(5)));
        assert_eq!(Lag::Brief.wait(&not_found, 3, &r), Some(r.backoff(3)));
        assert_eq!(
            Lag::Brief.wait(&not_found, 4, &r),
            None,
            "about 7 s, then absent"
        );
        let throttled = GraphError::Throttled {
            retry_after: Some(Duration::from_secs(7)),
        };
        for class in [Lag::Retry, Lag::Brief, Lag::NoRetry] {
            assert_eq!(class.wait(&throttled, 1, &r), Some(Duration::from_secs(7)));
        }
        let refused = GraphError::BadRequest {
            code: "Request_BadRequest".into(),
            message: "no".into(),
        };
        assert_eq!(Lag::Retry.wait(&refused, 1, &r), None);
    }
    use crate::graph::error::{classify, classify_token_error, parse_retry_after};

    const CREATE_201: &str = include_str!("testdata/create_201.json");
    const ADD_PASSWORD_200: &str = include_str!("testdata/add_password_200.json");
    const GET_200: &str = include_str!("testdata/get_200.json");
    const LIST_200: &str = include_str!("testdata/list_by_display_name_200.json");
    const NOT_FOUND_404: &str = include_str!("testdata/not_found_404.json");
    const SP_CREATE_201: &str = include_str!("testdata/sp_create_201.json");

    #[test]
    fn parses_recorded_application_bodies() {
        let created: Application = serde_json::from_str(CREATE_201).unwrap();
        assert_eq!(created.id, "f0794693-cfca-422b-8c0a-9a91666afc9a");
        assert!(!created.app_id.is_empty());
        assert_eq!(
            created.sign_in_audience.as_deref(),
            Some("AzureADMultipleOrgs")
        );
        let got: Application = serde_json::from_str(GET_200).unwrap();
        assert_eq!(got.password_credentials.len(), 2);
        assert!(
            got.password_credentials
                .iter()
                .all(|p| p.secret_text.is_none())
        );
        assert_eq!(got.password_credentials[1].hint.as_deref(), Some("yln"));
        assert!(
            got.password_credentials[0].end().is_some(),
            "7-digit fractional timestamps parse"
        );
        let page: Page<Application> = serde_json::from_str(LIST_200).unwrap();
        assert_eq!(page.value.len(), 1);
        assert_eq!(page.value[0].id, created.id);
    }

    #[test]
    fn parses_recorded_add_password_and_keeps_secret_out_of_debug() {
        let p: PasswordCredential = serde_json::from_str(ADD_PASSWORD_200).unwrap();
        assert_eq!(p.key_id, "3a299473-3d5a-4ab5-b9ea-1e173023719f");
        assert_eq!(p.hint.as_deref(), Some("yln"));
        assert!(p.secret_text.as_deref().unwrap().starts_with("yln"));
        assert!(p.end().is_some());
        let cred = Credential::Secret {
            client_id: "c".into(),
            secret: "very-secret".into(),
        };
        assert!(!format!("{cred:?}").contains("very-secret"));
    }

    #[test]
    fn parses_recorded_service_principal() {
        let sp: ServicePrincipal = serde_json::from_str(SP_CREATE_201).unwrap();
        assert!(!sp.id.is_empty() && !sp.app_id.is_empty());
    }

    #[test]
    fn classifies_recorded_404() {
        let e = classify(404, None, NOT_FOUND_404);
        assert_eq!(e.category(), "NotFound");
        assert_eq!(e.code(), "Request_ResourceNotFound");
        assert!(!e.is_permanent());
    }

    #[test]
    fn classifies_documented_errors() {
        let body = |code: &str, msg: &str| {
            format!(
                r#"{{"error":{{"code":"{code}","message":"{msg}","innerError":{{"date":"2025-02-20T10:52:24"}}}}}}"#
            )
        };
        let e = classify(
            403,
            None,
            &body(
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
        );
        assert_eq!((e.category(), e.is_permanent()), ("PermissionDenied", true));
        let e = classify(
            400,
            None,
            &body(
                "HostNameNotOnVerifiedDomain",
                "Values of identifierUris property must use a verified domain of the organization or its subdomain: 'https://x.example'",
            ),
        );
        assert_eq!(e.category(), "HostNameNotOnVerifiedDomain");
        assert!(e.is_permanent());
        assert!(
            e.to_string().contains("api://{appId}"),
            "says what to do: {e}"
        );
        let lag = r#"{"error":{"code":"Request_BadRequest","message":"The appId 'x' of the service principal does not reference a valid application object.","details":[{"code":"NoBackingApplicationObject","target":"appId"}]}}"#;
        assert_eq!(classify(400, None, lag).category(), "ReplicationLag");
        let e = classify(
            429,
            Some("2.128"),
            &body("TooManyRequests", "Please retry again later."),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_millis(2128)));
        assert_eq!(
            classify(
                409,
                None,
                &body("Request_MultipleObjectsWithSameKeyValue", "dup")
            )
            .category(),
            "Conflict"
        );
        assert_eq!(
            classify(
                400,
                None,
                &body(
                    "Request_BadRequest",
                    "Another object with the same value for property identifierUris already exists."
                )
            )
            .category(),
            "Conflict"
        );
        assert_eq!(classify(503, Some("5"), "").category(), "Transient");
        assert_eq!(
            classify(400, None, &body("Request_BadRequest", "bad")).category(),
            "BadRequest"
        );
    }

    #[test]
    fn parses_old_odata_error_shape() {
        let old = r#"{"odata.error":{"code":"Request_ResourceNotFound","message":{"lang":"en","value":"Resource 'x' does not exist"}}}"#;
        let e = classify(404, None, old);
        assert_eq!(e.code(), "Request_ResourceNotFound");
        assert!(e.to_string().contains("Resource 'x' does not exist"));
    }

    #[test]
    fn retry_after_accepts_fractions_and_rejects_garbage() {
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn token_errors() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y","error_codes":[7000215]}"#;
        let e = classify_token_error(401, body);
        assert_eq!(e.category(), "AuthFailed");
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            "authentication to Entra ID failed: AADSTS7000215: Invalid client secret provided."
        );
        let tr: TokenResponse = serde_json::from_str(r#"{"token_type":"Bearer","expires_in":86399,"ext_expires_in":86399,"access_token":"access_token"}"#).unwrap();
        assert_eq!(tr.expires_in, 86399);
        assert!(!format!("{tr:?}").contains("access_token\""));
    }

    #[test]
    fn endpoints_are_normalised() {
        let e = Endpoints::new(
            "https://graph.microsoft.com/v1.0/",
            "https://login.microsoftonline.com",
        );
        assert_eq!(e.graph_scope, "https://graph.microsoft.com/.default");
        assert_eq!(e.graph_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(
            e.token_endpoint("t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(odata_quote("a'b"), "a''b");
        let p = RetryPolicy::default();
        assert!(p.backoff(1) < p.backoff(2));
        assert_eq!(p.backoff(30), p.max_backoff);
    }
}
