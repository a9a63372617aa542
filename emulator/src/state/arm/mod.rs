//! ARM's part of the state, in memory only: role assignments (deleted ones kept for the data
//! plane's propagation delay), the built-in role definitions ([`roles`]) and the FHIR stand-ins'
//! services ([`Service`]).
pub mod roles;

use super::store::{Store, now_ms};
use crate::config::{ArmConfig, FhirServiceConfig, SeedAssignment};
use serde_json::Value;
use std::collections::BTreeMap;

/// One role assignment as ARM keeps it.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub condition: Option<String>,
    pub created_on: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_ms: i64,
    /// Deleted in ARM at this time (kept for the data plane's propagation delay).
    pub deleted_ms: Option<i64>,
}

#[derive(Default)]
pub struct ArmState {
    pub config: ArmConfig,
    /// By lower-cased name (names are unique tenant-wide).
    pub assignments: BTreeMap<String, Assignment>,
    pub fhir: BTreeMap<String, Service>,
}

impl ArmState {
    /// State from the config; seed principals given by appId are resolved in `store`.
    pub fn new(config: &ArmConfig, store: &Store) -> anyhow::Result<Self> {
        let mut st = ArmState {
            config: config.clone(),
            ..Default::default()
        };
        for s in &config.role_assignments {
            st.seed(s, store)?;
        }
        for f in &config.fhir_services {
            let svc = Service::new(f)?;
            st.fhir.insert(svc.key.clone(), svc);
        }
        Ok(st)
    }

    /// Adds a seeded assignment (config or admin API).
    pub fn seed(&mut self, s: &SeedAssignment, store: &Store) -> anyhow::Result<String> {
        let role = roles::by_name_or_guid(&s.role)
            .ok_or_else(|| anyhow::anyhow!("unknown role '{}'", s.role))?;
        let principal = match (&s.principal_id, &s.principal_client_id) {
            (Some(p), _) => p.clone(),
            (None, Some(app)) => store
                .tenants
                .values()
                .find_map(|t| {
                    let i = t.sp_idx_by_app_id(app)?;
                    Some(super::store::s(&t.sps[i].body, "id"))
                })
                .ok_or_else(|| anyhow::anyhow!("no service principal for appId {app}"))?,
            (None, None) => {
                anyhow::bail!("a seeded role assignment needs principal_id or principal_client_id")
            }
        };
        let name = uuid::Uuid::new_v4().to_string();
        let scope = s.scope.trim_end_matches('/').to_string();
        let sub = subscription_of(&scope).unwrap_or("00000000-0000-0000-0000-000000000000");
        self.assignments.insert(
            name.clone(),
            Assignment {
                name: name.clone(),
                role_definition_id: format!(
                    "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{}",
                    role.guid
                ),
                scope,
                principal_id: principal,
                principal_type: "ServicePrincipal".into(),
                description: None,
                condition: s.condition.clone(),
                created_on: super::store::fmt_7(chrono::Utc::now()),
                created_by: None,
                updated_by: None,
                // Seeds are effective at once, data plane included.
                created_ms: 0,
                deleted_ms: None,
            },
        );
        Ok(name)
    }

    /// Live (not deleted) assignments.
    pub fn live(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments.values().filter(|a| a.deleted_ms.is_none())
    }
}

/// `/subscriptions/{sub}/…` → `{sub}`.
pub fn subscription_of(scope: &str) -> Option<&str> {
    let mut it = scope.trim_start_matches('/').split('/');
    it.next()
        .filter(|s| s.eq_ignore_ascii_case("subscriptions"))?;
    it.next().filter(|s| !s.is_empty())
}

/// Whether `outer` is `inner` or one of its parents (segment-wise, case-insensitive).
pub fn covers(outer: &str, inner: &str) -> bool {
    let o = outer.trim_end_matches('/').to_ascii_lowercase();
    let i = inner.trim_end_matches('/').to_ascii_lowercase();
    o.is_empty() || i == o || i.starts_with(&format!("{o}/"))
}

/// A managed FHIR service the stand-in serves (`FhirServiceConfig`), with the resources written to it.
pub struct Service {
    pub key: String,
    pub scope: String,
    pub audience: String,
    /// `Microsoft.HealthcareApis/workspaces/fhirservices` or `…/services/fhir`: the data actions' prefix.
    pub action_prefix: &'static str,
    /// (type, id) → resource.
    pub resources: BTreeMap<(String, String), Value>,
}

impl Service {
    pub fn new(c: &FhirServiceConfig) -> anyhow::Result<Self> {
        let segs: Vec<&str> = c.resource_id.trim_matches('/').split('/').collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let (key, default_aud, prefix) = match lower.as_slice() {
            [_, _, _, _, _, p, w, ws, f, name]
                if p == "microsoft.healthcareapis" && w == "workspaces" && f == "fhirservices" =>
            {
                (
                    format!("{ws}-{name}"),
                    format!("https://{ws}-{name}.fhir.azurehealthcareapis.com"),
                    "Microsoft.HealthcareApis/workspaces/fhirservices",
                )
            }
            [_, _, _, _, _, p, s, name] if p == "microsoft.healthcareapis" && s == "services" => (
                name.clone(),
                format!("https://{name}.azurehealthcareapis.com"),
                "Microsoft.HealthcareApis/services/fhir",
            ),
            _ => anyhow::bail!("not a FHIR service resource id: {}", c.resource_id),
        };
        Ok(Service {
            key,
            scope: format!("/{}", segs.join("/")),
            audience: c.audience.clone().unwrap_or(default_aud),
            action_prefix: prefix,
            resources: BTreeMap::new(),
        })
    }
}

/// Milliseconds now (for lag and propagation).
pub fn now() -> i64 {
    now_ms()
}
