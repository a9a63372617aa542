//! The out-of-band change of the steady window: an administrator edits one client's redirect URI
//! directly in Graph, and the bench polls Graph until the operator has put it back.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The emulator's admin identity (entra-emulator's `ADMIN_OID`, the appid of the tokens
/// `/_emulator/tenants/{tid}/admin-token` issues). Its calls are the bench's, not the operator's,
/// so the call counts leave them out.
pub const ADMIN_APP_ID: &str = "a11ad000-0000-4000-8000-00000000ad01";

/// How often Graph is polled for the healed value.
const POLL: Duration = Duration::from_millis(500);

/// What the out-of-band change was and how long the operator took to undo it.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Heal {
    pub client: String,
    pub change: String,
    /// Seconds into the steady window when the change was made.
    pub at_s: f64,
    /// From the edit's answer to the first poll that saw the original value; `None`: not within
    /// `gave_up_after_s`.
    pub healed_after_s: Option<f64>,
    pub gave_up_after_s: f64,
}

/// Graph as the emulator's administrator.
pub struct AdminGraph {
    pub http: reqwest::Client,
    pub graph_url: String,
    pub token: String,
}

impl AdminGraph {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = (self.http)
            .request(method, format!("{}{path}", self.graph_url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?.error_for_status()?;
        let text = resp.text().await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Replaces the redirect URIs of application `oid` (expected: `original`) with an attacker's and
/// waits until Graph shows `original` again, at most `give_up`.
pub async fn edit_redirect_uri_and_wait(
    graph: &AdminGraph,
    client: &str,
    oid: &str,
    original: &Value,
    at_s: f64,
    give_up: Duration,
) -> Result<Heal> {
    let path = format!("/applications/{oid}");
    let before = graph.call(reqwest::Method::GET, &path, None).await?;
    if &before["web"]["redirectUris"] != original {
        bail!("{client}: redirect URIs before the change were {before}, not {original}");
    }
    let changed = json!({"web": {"redirectUris": ["https://evil.example/cb"]}});
    graph
        .call(reqwest::Method::PATCH, &path, Some(changed))
        .await
        .with_context(|| format!("editing {client}'s application"))?;
    let edited = Instant::now();
    let mut heal = Heal {
        client: client.into(),
        change: "web.redirectUris replaced through Graph by an administrator".into(),
        at_s,
        healed_after_s: None,
        gave_up_after_s: give_up.as_secs_f64(),
    };
    while edited.elapsed() < give_up {
        tokio::time::sleep(POLL).await;
        // A failed poll (the emulator is busy) is not a heal; try again.
        let Ok(now) = graph.call(reqwest::Method::GET, &path, None).await else {
            continue;
        };
        if &now["web"]["redirectUris"] == original {
            heal.healed_after_s = Some(edited.elapsed().as_secs_f64());
            break;
        }
    }
    Ok(heal)
}
