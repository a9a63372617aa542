//! The tenant's claims-mapping policies as stored, and which service principal each is assigned
//! to (the rules that read them are in `claims.rs`; this type depends on no other state module, so
//! the store can hold it).
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClaimsPolicies {
    /// The policies as Graph shows them.
    #[serde(default)]
    pub policies: Vec<Value>,
    /// Service principal object id → the policy assigned to it. One per service principal: third
    /// parties say so ("A Service Principal can have only one Claims Mapping Policy assigned at a
    /// time", docs/entra-facts §A2), as Graph documents for app management policies.
    #[serde(default)]
    pub assigned: BTreeMap<String, String>,
}

impl ClaimsPolicies {
    pub fn idx(&self, id: &str) -> Option<usize> {
        self.policies
            .iter()
            .position(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
    }
    /// The policy assigned to a service principal.
    pub fn for_sp(&self, sp_id: &str) -> Option<&Value> {
        let pid = self.assigned.get(sp_id)?;
        self.idx(pid).map(|i| &self.policies[i])
    }
    /// Drops a deleted service principal's assignment (`super::recycle`).
    pub fn forget(&mut self, sp_id: &str) {
        self.assigned.remove(sp_id);
    }
}
