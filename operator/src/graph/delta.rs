//! Delta queries on applications and service principals (Learn `application-delta`,
//! `serviceprincipal-delta`, `delta-query-overview`; facts in docs/entra-facts/claims-and-delta.md
//! part B): the wire of one page and the one call that reads it. What a round does with the pages
//! is the drift watcher's (`controller::drift`).

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::call::{Lag, decode, empty_body};
use super::client::GraphClient;
use super::error::GraphError;

/// The two collections the operator watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeltaKind {
    Applications,
    ServicePrincipals,
}

impl DeltaKind {
    pub const ALL: [DeltaKind; 2] = [DeltaKind::Applications, DeltaKind::ServicePrincipals];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DeltaKind::Applications => "applications",
            DeltaKind::ServicePrincipals => "servicePrincipals",
        }
    }

    /// The properties [`Self::select`] names (besides `appId`), each a top-level key Graph returns.
    pub fn selected(self) -> impl Iterator<Item = &'static str> {
        self.select().split(',').filter(|p| *p != "appId")
    }

    /// What delta tracks for this collection: with `$select`, a change to a property left out does
    /// not put the object in a round (documented for users and groups, the same for these two per
    /// the emulator's reading, facts B3). So the list is every property the operator converges and
    /// every property a drift could break a client by, and nothing more (a smaller answer).
    fn select(self) -> &'static str {
        match self {
            DeltaKind::Applications => {
                "appId,displayName,signInAudience,tags,identifierUris,api,appRoles,web,spa,publicClient,isFallbackPublicClient,requiredResourceAccess,passwordCredentials,keyCredentials"
            }
            DeltaKind::ServicePrincipals => "appId,appRoleAssignmentRequired",
        }
    }

    /// The first request of a round without a deltaLink. `latest` asks for a deltaLink from now and
    /// no objects ("sync from now", documented for directory objects such as users and groups,
    /// served by the emulator for these two, facts B2): the operator reconciles every object it
    /// owns on start anyway, so it needs only the changes from here on. Without `latest` Graph
    /// lists every object first (the fallback if a Graph refuses `latest`).
    pub fn initial_path(self, latest: bool) -> String {
        let collection = match self {
            DeltaKind::Applications => "/applications/delta",
            DeltaKind::ServicePrincipals => "/servicePrincipals/delta",
        };
        let token = if latest { "&$deltatoken=latest" } else { "" };
        format!("{collection}?$select={}{token}", self.select())
    }

    fn op(self) -> &'static str {
        match self {
            DeltaKind::Applications => "deltaApplications",
            DeltaKind::ServicePrincipals => "deltaServicePrincipals",
        }
    }
}

/// One page of a delta round: the objects on it and where to go next. "A page can't contain both
/// `@odata.deltaLink` and `@odata.nextLink`" (delta-query-overview).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DeltaPage {
    pub value: Vec<DeltaEntry>,
    /// The next page of this round (given verbatim, with no `$select` added: Graph refuses
    /// `$select` with `$skiptoken`).
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// The start of the next round; present on the round's last page.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// An object in a round: changed (its current selected properties, of which only the ids matter
/// here) or removed (`{"id": …, "@removed": {"reason": "changed"|"deleted"}}`).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct DeltaEntry {
    /// "The id property is always returned".
    pub id: String,
    pub app_id: Option<String>,
    #[serde(rename = "@removed")]
    pub removed: Option<Value>,
    /// The other selected properties, as Graph holds them now (the watcher compares them with what
    /// the owner's reconcile left, to tell the operator's own writes from drift).
    #[serde(flatten)]
    pub properties: serde_json::Map<String, Value>,
}

impl DeltaEntry {
    /// The Graph ids this entry names: its object id and, when present, the application ID.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str())
            .chain(self.app_id.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// Whether Graph says the round's token cannot be used again and the round must start over: an
/// expired token (400 `syncStateNotFound`, Microsoft 365 Developer Blog 2020-07-03), a
/// synchronization reset (410, `resyncRequired` in the error table of Learn `errors`; Outlook
/// answered 410 `SyncStateNotFound`), or a token Graph does not recognise (400 "Invalid
/// $deltatoken" in the emulator; Graph's answer is not documented). Any other refusal of a URL
/// Graph itself handed out means the same: the token is of no use.
pub fn is_stale_token(e: &GraphError) -> bool {
    matches!(
        e,
        GraphError::BadRequest { .. } | GraphError::NotFound { .. }
    )
}

impl GraphClient {
    /// One page of a delta round: `url` is [`DeltaKind::initial_path`] or a link from the page
    /// before (absolute, used verbatim). Throttling and 5xx are retried by the HTTP layer.
    pub async fn delta_page(&self, kind: DeltaKind, url: &str) -> Result<DeltaPage, GraphError> {
        let v = self
            .send(kind.op(), Method::GET, url, None, &[], Lag::NoRetry)
            .await?
            .ok_or_else(|| empty_body(kind.op()))?;
        parse_page(kind.op(), v)
    }
}

/// Parses a delta page; a page that ends nowhere (neither link) is an error, since a round could
/// never end.
pub fn parse_page(op: &str, v: Value) -> Result<DeltaPage, GraphError> {
    let page: DeltaPage = decode(op, v)?;
    if page.next_link.is_none() && page.delta_link.is_none() {
        return Err(GraphError::Decode(format!(
            "{op}: a delta page with neither @odata.nextLink nor @odata.deltaLink"
        )));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_changed_removed_and_paging_entries() {
        // Shapes of Learn `delta-query-users` / `application-delta`, with the emulator's links.
        let page = parse_page(
            "t",
            json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(appId,web)",
                "@odata.nextLink": "https://graph.microsoft.com/v1.0/applications/delta?$skiptoken=abc",
                "value": [
                    {"appId": "a1", "web": {"redirectUris": []}, "id": "o1"},
                    {"id": "o2", "@removed": {"reason": "changed"}}
                ]
            }),
        )
        .unwrap();
        assert_eq!(page.value.len(), 2);
        assert_eq!(page.value[0].ids().collect::<Vec<_>>(), ["o1", "a1"]);
        assert!(page.value[0].removed.is_none());
        assert_eq!(
            page.value[0].properties.get("web"),
            Some(&json!({"redirectUris": []}))
        );
        assert!(!page.value[0].properties.contains_key("id"));
        assert_eq!(page.value[1].ids().collect::<Vec<_>>(), ["o2"]);
        assert_eq!(page.value[1].removed, Some(json!({"reason": "changed"})));
        assert!(page.next_link.is_some() && page.delta_link.is_none());
        let last = parse_page(
            "t",
            json!({"@odata.deltaLink": "https://g/v1.0/applications/delta?$deltatoken=x", "value": []}),
        )
        .unwrap();
        assert_eq!(
            last.delta_link.as_deref(),
            Some("https://g/v1.0/applications/delta?$deltatoken=x")
        );
        assert!(
            parse_page("t", json!({"value": []})).is_err(),
            "ends nowhere"
        );
        assert!(parse_page("t", json!({"value": [{"id": 3}]})).is_err());
    }

    #[test]
    fn the_first_request_selects_and_may_start_from_now() {
        let p = DeltaKind::Applications.initial_path(true);
        assert!(p.starts_with("/applications/delta?$select=appId,"), "{p}");
        assert!(p.contains("passwordCredentials") && p.contains("web"));
        assert!(p.ends_with("&$deltatoken=latest"));
        let p = DeltaKind::ServicePrincipals.initial_path(false);
        assert!(p.starts_with("/servicePrincipals/delta?$select=appId,"));
        assert!(!p.contains("deltatoken"));
    }

    #[test]
    fn refusals_of_a_link_restart_the_round_and_throttling_does_not() {
        let expired = crate::graph::error::classify(
            400,
            None,
            r#"{"error":{"code":"syncStateNotFound","message":"The sync state generation is not found."}}"#,
        );
        assert!(is_stale_token(&expired));
        let reset = crate::graph::error::classify(
            410,
            None,
            r#"{"error":{"code":"resyncRequired","message":"The delta token is no longer valid"}}"#,
        );
        assert!(is_stale_token(&reset));
        let forbidden = crate::graph::error::classify(
            403,
            None,
            r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#,
        );
        assert!(!is_stale_token(&forbidden));
        assert!(!is_stale_token(&GraphError::Throttled {
            retry_after: None
        }));
    }
}
