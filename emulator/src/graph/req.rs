//! One Graph request, as the handlers see it: the caller, the parsed query and body, the time, and
//! the caller's permissions read from its token's roles.
use super::query::Query;
use crate::request::Caller;
use crate::state::Shared;
use crate::state::store::now_ms;
use axum::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// One Graph request, as the handlers see it.
pub struct Req<'a> {
    pub(super) sh: &'a Shared,
    pub(super) caller: Caller,
    pub(super) method: Method,
    pub(super) q: Query,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: Value,
    /// `https://host:port/v1.0` (or `/beta`).
    pub(super) g: String,
    pub(super) now: DateTime<Utc>,
    pub(super) lag: i64,
    /// Multi-tenant applications of other tenants by appId: (application, home tenant). Filled
    /// for `servicePrincipals.create` only, which may instantiate one in the caller's tenant.
    pub(super) foreign_apps: HashMap<String, (Value, String)>,
}

impl Req<'_> {
    pub(super) fn ctx(&self, frag: &str) -> String {
        format!("{}/$metadata#{frag}", self.g)
    }
    pub(super) fn has_any(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.caller.has(r))
    }
    pub(super) fn can_read(&self) -> bool {
        self.has_any(&[
            "Application.ReadWrite.OwnedBy",
            "Application.ReadWrite.All",
            "Application.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ])
    }
    pub(super) fn all(&self) -> bool {
        self.has_any(&["Application.ReadWrite.All", "Directory.ReadWrite.All"])
    }
    pub(super) fn can_create(&self) -> bool {
        self.has_any(&[
            "Application.ReadWrite.OwnedBy",
            "Application.ReadWrite.All",
            "Directory.ReadWrite.All",
        ])
    }
    pub(super) fn can_write(&self, owners: &[String]) -> bool {
        self.all()
            || (self.caller.has("Application.ReadWrite.OwnedBy")
                && owners.contains(&self.caller.oid))
    }
    pub(super) fn visible(&self, from: i64) -> bool {
        from <= now_ms()
    }
    pub(super) fn eventual(&self) -> bool {
        self.headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
    }
    pub(super) fn prefer_create(&self) -> bool {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("create-if-missing"))
    }
}
