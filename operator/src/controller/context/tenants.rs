//! The Graph (and ARM) client for a resource's tenant: the operator's own, its own credentials in
//! another tenant, or a tenant credentials Secret's (held while in use, see `credentials_hold`).

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::Context;
use crate::api::TenantSpec;
use crate::controller::Error;
use crate::graph::{Credential, GraphClient};

impl Context {
    /// The Azure Resource Manager client of `graph`'s tenant and credential (its token cache is
    /// `graph`'s, so clones share it).
    pub fn arm(&self, graph: &GraphClient) -> crate::arm::ArmClient {
        crate::arm::ArmClient::new(
            self.http.clone(),
            &self.config.arm_url,
            &self.config.arm_scope,
            graph.clone(),
            self.metrics.clone(),
        )
    }

    /// The Graph client for a resource's tenant (the operator's own unless the spec names another).
    pub async fn graph_for(
        &self,
        namespace: &str,
        tenant: Option<&TenantSpec>,
    ) -> Result<GraphClient, Error> {
        let Some(t) = tenant else {
            return Ok(self.default_graph.clone());
        };
        let tenant_id = t
            .tenant_id
            .clone()
            .unwrap_or_else(|| self.config.tenant_id.clone());
        let Some(secret_ref) = &t.credentials_secret_ref else {
            return Ok(self.own_graph_in(tenant_id).await);
        };
        self.graph_from_secret(namespace, &secret_ref.name, tenant_id)
            .await
    }

    /// The operator's own credentials in `tenant_id` (in another tenant: a multi-tenant app), one
    /// client per tenant, kept, so its token is reused instead of requested on every reconcile.
    async fn own_graph_in(&self, tenant_id: String) -> GraphClient {
        if tenant_id == self.config.tenant_id {
            return self.default_graph.clone();
        }
        let key = (String::new(), String::new(), tenant_id.clone());
        let mut graphs = self.tenant_graphs.lock().await;
        let g = graphs.entry(key).or_insert_with(|| {
            GraphClient::new(
                self.http.clone(),
                self.config.endpoints(),
                tenant_id,
                self.config.credential.clone(),
                self.limiter.clone(),
                self.metrics.clone(),
            )
        });
        g.clone()
    }

    /// The client for the credentials in Secret `namespace/name`, kept per version of the Secret.
    async fn graph_from_secret(
        &self,
        namespace: &str,
        name: &str,
        tenant_id: String,
    ) -> Result<GraphClient, Error> {
        // One message whatever is wrong with it: a reference must not tell which Secrets exist, and
        // the operator's own outputs (another client's credentials) are never tenant credentials.
        let unusable = || {
            Error::TenantCredentials(format!(
                "Secret {namespace}/{name} (spec.tenant.credentialsSecretRef) is not usable: it must be a Secret you created (not one the operator writes) with keys AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            ))
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = secrets
            .get_opt(name)
            .await?
            .filter(|s| !crate::controller::outputs::is_operator_output(&s.metadata))
            .ok_or_else(unusable)?;
        // Held while in use, so that the applications can still be deleted after it (issue 23).
        let version = crate::controller::credentials_hold::hold(&self.client, &s).await;
        let key = (
            namespace.to_string(),
            name.to_string(),
            version.unwrap_or_default(),
        );
        if let Some(g) = self.tenant_graphs.lock().await.get(&key) {
            return Ok(g.clone());
        }
        let get = |k: &str| -> Result<String, Error> {
            s.data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .filter(|v| !v.is_empty())
                .ok_or_else(unusable)
        };
        let cred = Credential::Secret {
            client_id: get("AZURE_CLIENT_ID")?,
            secret: get("AZURE_CLIENT_SECRET")?,
        };
        let g = GraphClient::new(
            self.http.clone(),
            self.config.endpoints(),
            tenant_id,
            cred,
            self.limiter.clone(),
            self.metrics.clone(),
        );
        let mut graphs = self.tenant_graphs.lock().await;
        // A client built from an older version of this Secret holds credentials that are gone.
        graphs.retain(|(ns, n, _), _| !(ns == namespace && n == name));
        graphs.insert(key, g.clone());
        Ok(g)
    }
}
