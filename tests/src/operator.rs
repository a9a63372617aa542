//! Harness for the operator's integration tests: CRDs, an in-process emulator and an in-process
//! operator scoped to the test's own namespace.

use std::time::Duration;

use anyhow::anyhow;
use base64::Engine;
use fhir_app_operator::OperatorConfig;
use fhir_app_operator::graph::Credential;
use fhir_app_operator::metrics::Metrics;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::{TestNamespace, kube_client};

pub const TEST_MANAGER: &str = "fhirapps.io/integration-test";

/// Server-side applies the committed CRDs from `crds/` and waits until they are Established.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    testenv::crds::install_crds(client, TEST_MANAGER, Duration::from_secs(30)).await
}

/// Poll interval of the Graph delta watcher in the drift tests.
pub const DELTA_POLL: Duration = Duration::from_secs(1);

/// Operator permissions for the emulator's bootstrap app in most tests.
pub fn full_permissions() -> Vec<String> {
    [
        "Application.ReadWrite.OwnedBy",
        "AppRoleAssignment.ReadWrite.All",
        "Application.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
    ]
    .map(String::from)
    .to_vec()
}

/// A namespaced custom resource whose conditions a test waits for.
pub trait Conditioned:
    Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> Conditioned for K where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

pub struct Harness {
    pub client: Client,
    pub ns: TestNamespace,
    pub emu: entra_emulator::Running,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// More namespaces the checks of `invariants` cover (e.g. a team's, whose clients reference a
    /// resource app in `ns`).
    pub extra_namespaces: Vec<String>,
    operator: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

impl Harness {
    /// Control plane client, CRDs, a fresh namespace and an emulator whose operator app holds `permissions`.
    pub async fn new(prefix: &str, permissions: Vec<String>) -> Self {
        Self::with_emulator(prefix, move |cfg, _| {
            cfg.tenants[0].apps[0].permissions = permissions
        })
        .await
    }

    /// Like [`Harness::new`], with the emulator's configuration adjusted by `f` (given the namespace).
    pub async fn with_emulator(
        prefix: &str,
        f: impl FnOnce(&mut entra_emulator::Config, &str),
    ) -> Self {
        Self::on_cluster(kube_client().await, prefix, f).await
    }

    /// Like [`Harness::with_emulator`], on the cluster `client` talks to (e.g. a private control plane).
    pub async fn on_cluster(
        client: Client,
        prefix: &str,
        f: impl FnOnce(&mut entra_emulator::Config, &str),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        fhir_app_operator::init_crypto();
        install_crds(&client).await.expect("install CRDs");
        let ns = TestNamespace::new(&client, prefix).await;
        let mut cfg = entra_emulator::Config::default();
        f(&mut cfg, &ns.name);
        let emu = entra_emulator::start(cfg).await.expect("start emulator");
        let http = fhir_app_operator::graph::http_client(Some(emu.ca_pem().as_bytes()))
            .expect("http client");
        Self {
            client,
            ns,
            emu,
            http,
            metrics: Arc::new(Metrics::default()),
            extra_namespaces: vec![],
            operator: None,
        }
    }

    /// A projected ServiceAccount token for `api://AzureADTokenExchange` from the real API server:
    /// what the AKS workload-identity webhook mounts for ServiceAccount `sa` of this namespace.
    pub async fn federated_token(&self, sa: &str) -> String {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let tr: TokenRequest = serde_json::from_value(json!({"spec": {
            "audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 3600}}))
        .unwrap();
        self.api::<ServiceAccount>()
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                sa,
                &kube::api::PostParams::default(),
                &tr,
            )
            .await
            .expect("a ServiceAccount token")
            .status
            .and_then(|s| s.token)
            .expect("a token in the TokenRequest's status")
    }

    /// Operator configuration pointing at the emulator, scoped to this namespace, fast resync.
    pub fn config(&self) -> OperatorConfig {
        let cred = Credential::Secret {
            client_id: self.emu.client_id(),
            secret: self.emu.client_secret(),
        };
        let mut c = OperatorConfig::new(
            &self.emu.tenant_id(),
            cred,
            &self.emu.graph_url(),
            &self.emu.authority_host(),
        );
        c.extra_ca_file = Some(self.emu.ca_file());
        // Azure Resource Manager is the emulator's too: no test reaches a real endpoint.
        c.arm_url = self.emu.base_url();
        c.watch_namespace = Some(self.ns.name.clone());
        c.cluster_name = "it".into();
        c.resync = Duration::from_secs(3);
        c.stalled_retry = Duration::from_secs(30);
        // No Graph delta watcher: most tests count or wait for reconciles, and a short resync re-reads
        // every object anyway. The drift tests heal through delta instead ([`Self::config_delta_only`]).
        c.delta_poll = None;
        c
    }

    /// [`Self::config`] that heals drift through the Graph delta watcher only (polled every
    /// [`DELTA_POLL`]): no full re-read within a test, whether the tenant is watched or not, so a
    /// change made out of band that is undone was found by delta.
    pub fn config_delta_only(&self) -> OperatorConfig {
        let mut c = self.config();
        c.resync = Duration::from_secs(3600);
        c.resync_unwatched = Duration::from_secs(3600);
        c.delta_poll = Some(DELTA_POLL);
        c
    }

    /// [`Self::config`] with the operator's HTTP server (/healthz, /readyz, /metrics) on a free
    /// loopback port; returns the port too.
    pub fn config_with_http(&self) -> (OperatorConfig, u16) {
        let port = testenv::free_port();
        let mut cfg = self.config();
        cfg.http_addr = Some(format!("127.0.0.1:{port}").parse().unwrap());
        (cfg, port)
    }

    pub async fn start_operator(&mut self, config: OperatorConfig) {
        let client = self.client.clone();
        self.start_operator_as(client, config).await
    }

    /// Runs the operator with `client`, e.g. one impersonating a ServiceAccount, to prove its RBAC.
    pub async fn start_operator_as(&mut self, client: Client, config: OperatorConfig) {
        self.stop_operator().await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.clone();
        let task = tokio::spawn(async move {
            fhir_app_operator::run_with(client, config, metrics, async move {
                let _ = rx.await;
            })
            .await
        });
        self.operator = Some((tx, task));
    }

    /// Stops the in-process operator (graceful shutdown).
    pub async fn stop_operator(&mut self) {
        if let Some((tx, task)) = self.operator.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
    }

    /// Kills the operator task at once (simulated crash).
    pub async fn kill_operator(&mut self) {
        if let Some((_, task)) = self.operator.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// FhirClientApp `name`'s status, as JSON.
    pub async fn client_status(&self, name: &str) -> Value {
        let o = (self
            .api::<fhir_app_operator::api::FhirClientApp>()
            .get(name)
            .await)
            .unwrap();
        serde_json::to_value(&o).unwrap()["status"].clone()
    }

    /// Removes FhirClientApp `name`'s current client secret as an admin does in the portal (through
    /// Graph, not the operator); returns its key ID.
    pub async fn remove_password_in_portal(&self, name: &str) -> String {
        let st = self.client_status(name).await;
        let key_id = st["credential"]["keyId"].as_str().unwrap().to_string();
        let app = st["applicationObjectId"].as_str().unwrap();
        let path = format!("/applications/{app}/removePassword");
        let (code, body) =
            (self.graph(reqwest::Method::POST, &path, Some(json!({"keyId": key_id})))).await;
        assert_eq!(code, 204, "{body}");
        key_id
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// Every `K` in the harness's namespace and its `extra_namespaces`.
    pub async fn list_everywhere<K>(&self) -> Result<Vec<K>, kube::Error>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let mut out = vec![];
        for ns in std::iter::once(&self.ns.name).chain(&self.extra_namespaces) {
            let api: Api<K> = Api::namespaced(self.client.clone(), ns);
            out.extend(api.list(&Default::default()).await?.items);
        }
        Ok(out)
    }

    /// Server-side applies a namespaced object given as JSON (apiVersion/kind/metadata.name required).
    pub async fn apply<K>(&self, obj: Value) -> anyhow::Result<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let name = obj["metadata"]["name"]
            .as_str()
            .ok_or_else(|| anyhow!("metadata.name"))?
            .to_string();
        Ok(self
            .api::<K>()
            .patch(
                &name,
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await?)
    }

    pub async fn delete<K>(&self, name: &str) -> anyhow::Result<()>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>()
            .delete(name, &DeleteParams::default())
            .await?;
        Ok(())
    }

    /// Polls `f` until it returns `Some`, or fails with the last observation after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, String>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::new();
        loop {
            match f().await {
                Ok(Some(v)) => return v,
                Ok(None) => {}
                Err(e) => last = e,
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The operator running against a Ready FhirResourceApp `fhir` for `https://fhir.contoso.example`.
    pub async fn with_resource_app(prefix: &str) -> Self {
        let mut h = Self::new(prefix, full_permissions()).await;
        h.start_with_resource_app().await;
        h
    }

    /// [`Self::with_resource_app`] with [`Self::config_delta_only`]: for tests of drift healing.
    pub async fn with_resource_app_delta_only(prefix: &str) -> Self {
        let mut h = Self::new(prefix, full_permissions()).await;
        h.start_operator(h.config_delta_only()).await;
        h.resource_app_ready().await;
        h
    }

    /// Applies FhirResourceApp `fhir` for `https://fhir.contoso.example` and waits until it is Ready.
    pub async fn resource_app_ready(&self) {
        let fhir = resource_app("fhir", json!({"fhirUrl": "https://fhir.contoso.example"}));
        self.apply_and_wait::<fhir_app_operator::api::FhirResourceApp>(fhir, "Ready", "True")
            .await;
    }

    /// Starts the operator and waits until FhirResourceApp `fhir` for
    /// `https://fhir.contoso.example` is Ready (for a Harness whose emulator a test set up first).
    pub async fn start_with_resource_app(&mut self) {
        self.start_operator(self.config()).await;
        self.resource_app_ready().await;
    }

    /// Applies `obj` and waits (60 s at most) until its condition `ty` has `status`; returns it.
    pub async fn apply_and_wait<K: Conditioned>(
        &self,
        obj: Value,
        ty: &str,
        status: &str,
    ) -> Value {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.apply::<K>(obj).await.expect("apply");
        self.wait_condition::<K>(&name, ty, status, Duration::from_secs(60))
            .await
    }

    /// Waits until the object's condition `ty` has `status` for the current generation; returns the object.
    pub async fn wait_condition<K>(
        &self,
        name: &str,
        ty: &str,
        status: &str,
        timeout: Duration,
    ) -> Value
    where
        K: Conditioned,
    {
        let api = self.api::<K>();
        self.eventually(&format!("{name} {ty}={status}"), timeout, || {
            let api = api.clone();
            async move {
                let o = api.get(name).await.map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&o).map_err(|e| e.to_string())?;
                let generation = v["metadata"]["generation"].clone();
                let conds = v["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let hit = conds.iter().any(|c| {
                    c["type"] == ty
                        && c["status"] == status
                        && c["observedGeneration"] == generation
                });
                if hit {
                    Ok(Some(v))
                } else {
                    Err(format!("status: {}", v["status"]))
                }
            }
        })
        .await
    }

    /// A Graph call with an admin token of the emulator's tenant (out-of-band changes, inspection).
    pub async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.emu.graph_url());
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.emu.admin_token(&self.emu.tenant_id()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("graph call");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Applications in the tenant whose uniqueName starts with `prefix`.
    pub async fn apps_with_unique_name_prefix(&self, prefix: &str) -> Vec<Value> {
        // Retried: tests may turn on the emulator's fault injection.
        let mut v = Value::Null;
        for _ in 0..20 {
            let (code, body) = self
                .graph(reqwest::Method::GET, "/applications?$top=999", None)
                .await;
            if code == 200 {
                v = body;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        v["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a["uniqueName"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(prefix))
            })
            .collect()
    }

    /// Client-credentials token from the emulator using exactly the given Secret data; returns its claims.
    pub async fn token_from_secret(
        &self,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<Value, String> {
        self.token_with(data, &[("client_secret", &data["AZURE_CLIENT_SECRET"])])
            .await
    }

    /// Client-credentials token for the Secret's client and FHIR scope at its token endpoint, proving
    /// the client with `proof` (a secret or a client assertion); returns its claims.
    pub async fn token_with(
        &self,
        data: &std::collections::BTreeMap<String, String>,
        proof: &[(&str, &str)],
    ) -> Result<Value, String> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", data["AZURE_CLIENT_ID"].as_str()),
            ("scope", data["FHIR_SCOPE"].as_str()),
        ];
        form.extend_from_slice(proof);
        let resp = self
            .http
            .post(&data["TOKEN_ENDPOINT"])
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        claims(body["access_token"].as_str().ok_or("no access_token")?)
    }

    /// Graph call counts by operation from the emulator's call log.
    pub fn call_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for c in self.emu.calls() {
            *m.entry(c.operation.clone()).or_insert(0) += 1;
        }
        m
    }
}

impl Harness {
    /// What an admin does in the portal to remove an application for good: deletes FhirClientApp
    /// `name`'s application in Graph (out of band) and purges it from the deleted items (a deletion
    /// alone is soft: the operator restores it, tests/operator_soft_delete.rs); then waits until the
    /// operator has recreated it and the client is Ready again, and returns the object then.
    pub async fn delete_application_out_of_band(&self, name: &str) -> Value {
        let api = self.api::<fhir_app_operator::api::FhirClientApp>();
        let obj = api.get(name).await.expect("the FhirClientApp");
        let oid = (obj.status.and_then(|s| s.application_object_id))
            .expect("a registered client names its application");
        let (code, body) = self
            .graph(
                reqwest::Method::DELETE,
                &format!("/applications/{oid}"),
                None,
            )
            .await;
        assert_eq!(code, 204, "{body}");
        self.purge_deleted(&oid).await;
        self.wait_recreated(&api, name, &oid).await
    }

    /// Purges a deleted application or service principal from the tenant's deleted items.
    pub async fn purge_deleted(&self, object_id: &str) {
        let path = format!("/directory/deletedItems/{object_id}");
        let (code, body) = self.graph(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(code, 204, "purge {object_id}: {body}");
    }

    /// Waits until FhirClientApp `name` is Ready for its generation with an application object ID
    /// other than `old_oid`; returns it.
    async fn wait_recreated(
        &self,
        api: &Api<fhir_app_operator::api::FhirClientApp>,
        name: &str,
        old_oid: &str,
    ) -> Value {
        self.eventually("recreated and Ready", Duration::from_secs(60), || {
            let api = api.clone();
            async move {
                let o = api.get(name).await.map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&o).map_err(|e| e.to_string())?;
                let ready = condition(&v, "Ready")["status"] == "True"
                    && condition(&v, "Ready")["observedGeneration"] == v["metadata"]["generation"];
                let oid = v["status"]["applicationObjectId"]
                    .as_str()
                    .unwrap_or_default();
                Ok::<_, String>((ready && oid != old_oid).then_some(v.clone()))
            }
        })
        .await
    }

    /// Makes the API server refuse every Secret write in this namespace (a ValidatingAdmissionPolicy
    /// and its binding, both named after the namespace), once the policy is in force; returns their name.
    pub async fn refuse_secret_writes(&self) -> String {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let name = format!("{}-no-secrets", self.ns.name);
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]
                }]},
                "validations": [{"expression": "false", "message": "test: Secret writes are refused"}]
            }
        }))
        .unwrap();
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ns.name}}}
            }
        }))
        .unwrap();
        let pp = kube::api::PostParams::default();
        Api::<ValidatingAdmissionPolicy>::all(self.client.clone())
            .create(&pp, &policy)
            .await
            .unwrap();
        Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .create(&pp, &binding)
            .await
            .unwrap();
        // The API server loads policies asynchronously: probe until a write is refused.
        let probe: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
            json!({"metadata": {"name": "policy-probe"}, "stringData": {"k": "v"}}),
        )
        .unwrap();
        self.eventually("Secret writes are refused", Duration::from_secs(60), || {
            let probe = probe.clone();
            async move {
                let secrets = self.api::<k8s_openapi::api::core::v1::Secret>();
                let refused = secrets
                    .create(&kube::api::PostParams::default(), &probe)
                    .await
                    .is_err();
                if !refused {
                    let _ = secrets
                        .delete("policy-probe", &DeleteParams::default())
                        .await;
                }
                Ok::<_, String>(refused.then_some(()))
            }
        })
        .await;
        name
    }

    /// Removes what [`Harness::refuse_secret_writes`] created.
    pub async fn allow_secret_writes(&self, name: &str) {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        Api::<ValidatingAdmissionPolicy>::all(self.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// A user signs in to the Confidential client of `data` (auth code flow over HTTP, as a browser
/// would: authorize → login form → redirect with a code → token endpoint) with `login` and
/// `password`, asking for the FHIR scope and `openid`; the token endpoint's whole answer (access
/// token, ID token).
pub async fn sign_in_with_code(
    emu: &entra_emulator::Running,
    data: &std::collections::BTreeMap<String, String>,
    redirect: &str,
    (login, password): (&str, &str),
) -> Result<Value, String> {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = data["TOKEN_ENDPOINT"].replace("/token", "/authorize");
    let scope = format!("{} openid", data["FHIR_SCOPE"]);
    let query = [
        ("client_id", data["AZURE_CLIENT_ID"].as_str()),
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("scope", &scope),
        ("state", "s"),
    ];
    let get = http.get(&authorize).query(&query).send().await;
    let page = get.map_err(|e| e.to_string())?.text().await;
    let page = page.map_err(|e| e.to_string())?;
    let field = |html: &str, before: &str, end: char| {
        let rest = &html[html.find(before)? + before.len()..];
        Some(rest[..rest.find(end)?].replace("&amp;", "&"))
    };
    let action = field(&page, r#"<form method="post" action=""#, '"').ok_or(page.clone())?;
    let req = field(&page, r#"name="req" value=""#, '"').ok_or(page.clone())?;
    let form = [
        ("req", req.as_str()),
        ("login", login),
        ("passwd", password),
    ];
    let url = format!("{}{action}", emu.base_url());
    let resp = http.post(url).form(&form).send().await;
    let resp = resp.map_err(|e| e.to_string())?;
    let location = resp.headers().get("location").and_then(|l| l.to_str().ok());
    let Some(location) = location.map(String::from) else {
        return Err(resp.text().await.unwrap_or_default());
    };
    let code = field(&format!("{location}&"), "code=", '&').ok_or(location.clone())?;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", &data["AZURE_CLIENT_ID"]),
        ("client_secret", &data["AZURE_CLIENT_SECRET"]),
        ("code", &code),
        ("redirect_uri", redirect),
        ("scope", &data["FHIR_SCOPE"]),
    ];
    let resp = http.post(&data["TOKEN_ENDPOINT"]).form(&form).send().await;
    resp.map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Decodes a JWT's claims (no verification).
pub fn claims(jwt: &str) -> Result<Value, String> {
    let part = jwt.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A Secret's data as strings.
pub async fn secret_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let s = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    Some(
        s.data?
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}

/// JSON for a FhirResourceApp.
pub fn resource_app(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirResourceApp", "metadata": {"name": name}, "spec": spec})
}

/// The spec of a Service client of FhirResourceApp `fhir` with role `globalReader` assigned (the
/// FHIR API requires assignment by default: AADSTS501051 otherwise), with `extra`'s fields set.
pub fn service_spec(extra: Value) -> Value {
    let mut spec = json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}, "roles": ["globalReader"], "assignAppRoles": true});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    spec
}

/// JSON for a FhirClientApp.
pub fn client_app(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp", "metadata": {"name": name}, "spec": spec})
}

/// The condition `ty` of an object given as JSON (`Null` if absent).
pub fn condition(obj: &Value, ty: &str) -> Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .cloned()
        .unwrap_or(Value::Null)
}
