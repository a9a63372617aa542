//! What each authority's OpenID discovery document says, read once per authority.

use super::Context;

impl Context {
    /// The issuer and JWKS URL that tokens of `authority` really carry, read from its OpenID discovery
    /// document (the same document the FHIR server reads), because the issuer cannot be derived from the
    /// host: v1 tokens say `https://sts.windows.net/{tid}/` on the public cloud, other clouds differ.
    /// `None` when the document cannot be read; callers then keep the derived values.
    pub async fn discover(&self, authority: &str) -> Option<(String, String)> {
        if let Some(found) = self.discovered.lock().await.get(authority) {
            return Some(found.clone());
        }
        let url = crate::url::join(authority, ".well-known/openid-configuration");
        let doc: serde_json::Value = match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => resp.json().await.ok()?,
            Ok(resp) => {
                tracing::warn!(%url, status = %resp.status(), "OpenID discovery document not available");
                return None;
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "OpenID discovery document not reachable");
                return None;
            }
        };
        let found = (
            doc.get("issuer")?.as_str()?.to_string(),
            doc.get("jwks_uri")?.as_str()?.to_string(),
        );
        self.discovered
            .lock()
            .await
            .insert(authority.to_string(), found.clone());
        Some(found)
    }
}
