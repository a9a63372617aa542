//! The managed FHIR service's data plane, computed: what its ARM resource id says (endpoint,
//! audience, kind), the built-in FHIR data roles, and the deterministic name of each role
//! assignment. Pure; `controller/client_app/rbac.rs` applies it through `crate::arm`.

use crate::api::DataRole;

/// The kinds of managed FHIR service an ARM resource id can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// Azure Health Data Services: `…/workspaces/{workspace}/fhirservices/{name}`.
    Ahds { workspace: String, name: String },
    /// Azure API for FHIR (`…/services/{name}`), retired on 30 September 2026.
    Legacy { name: String },
}

/// A managed FHIR service's resource id, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceId {
    /// The id as ARM spells it, without a trailing slash: the role assignments' scope.
    pub scope: String,
    pub kind: ServiceKind,
}

/// Parses `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HealthcareApis/…`
/// (segments compared case-insensitively, as ARM does). `None` for anything else; the CRD's CEL
/// rule refuses those at admission with the same shape.
pub fn parse_resource_id(id: &str) -> Option<ServiceId> {
    let trimmed = id.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.strip_prefix('/')?.split('/').collect();
    let key = |i: usize, k: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(k));
    let value = |i: usize| segs.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
    if !(key(0, "subscriptions")
        && value(1).is_some()
        && key(2, "resourceGroups")
        && value(3).is_some()
        && key(4, "providers")
        && key(5, "Microsoft.HealthcareApis"))
    {
        return None;
    }
    let kind = match segs.len() {
        8 if key(6, "services") => ServiceKind::Legacy { name: value(7)? },
        10 if key(6, "workspaces") && key(8, "fhirservices") => ServiceKind::Ahds {
            workspace: value(7)?,
            name: value(9)?,
        },
        _ => return None,
    };
    Some(ServiceId {
        scope: trimmed.to_string(),
        kind,
    })
}

impl ServiceId {
    /// The public-cloud endpoint the id implies: AHDS `https://{ws}-{name}.fhir.azurehealthcareapis.com`,
    /// Azure API for FHIR `https://{name}.azurehealthcareapis.com` (both lower-case, as Azure names them).
    pub fn fhir_url(&self) -> String {
        match &self.kind {
            ServiceKind::Ahds { workspace, name } => format!(
                "https://{}-{}.fhir.azurehealthcareapis.com",
                workspace.to_ascii_lowercase(),
                name.to_ascii_lowercase()
            ),
            ServiceKind::Legacy { name } => {
                format!(
                    "https://{}.azurehealthcareapis.com",
                    name.to_ascii_lowercase()
                )
            }
        }
    }

    /// The audience the id implies where that is unambiguous: an AHDS FHIR service's audience is its
    /// URL. Azure API for FHIR was configured with either the generic audience or its URL, so there
    /// the spec says which (default: the generic one, as before).
    pub fn audience(&self) -> Option<String> {
        matches!(self.kind, ServiceKind::Ahds { .. }).then(|| self.fhir_url())
    }

    /// The subscription id (built-in role definitions are addressed under it).
    pub fn subscription(&self) -> &str {
        self.scope.split('/').nth(2).unwrap_or_default()
    }
}

/// The audience a managed FHIR service's URL implies: an Azure Health Data Services FHIR service
/// (`https://{workspace}-{service}.fhir.azurehealthcareapis.com`) accepts tokens for its own URL
/// (AHDS docs, as collected in shared/notes/fhir-facts.md §2: "AHDS FHIR service audience:
/// `https://fhir.azurehealthcareapis.com` or `https://<workspace>-<fhir>.fhir.azurehealthcareapis.com`";
/// the instance URL is the one a SMART client needs as well). `https://azurehealthcareapis.com` is
/// the retired Azure API for FHIR's generic audience, which an AHDS service does not accept; a URL
/// of another form (Azure API for FHIR, a proxy) implies nothing.
pub fn audience_of_url(fhir_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(fhir_url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let ahds = host.ends_with(".fhir.azurehealthcareapis.com") && url.scheme() == "https";
    ahds.then(|| format!("https://{host}"))
}

/// Built-in role definition GUIDs (Azure built-in roles, Integration table).
pub fn role_guid(role: DataRole) -> &'static str {
    match role {
        DataRole::FhirDataReader => "4c8d0bbc-75d3-4935-991f-5f3c56d81508",
        DataRole::FhirDataWriter => "3f88fce4-5892-4214-ae73-ba5294559913",
        DataRole::FhirDataContributor => "5a1fc7df-4bf1-4951-a576-89034ee01acd",
        DataRole::FhirDataExporter => "3db33094-8700-4567-8da5-1501d4e7e843",
        DataRole::FhirDataImporter => "4465e953-8ced-4406-a58e-0f6e3f3b530b",
        DataRole::FhirDataConverter => "a1705bd2-3a8f-45a5-8683-466fcfd5cc24",
        DataRole::FhirSmartUser => "4ba50f17-9666-485c-a643-ff00808643f0",
        DataRole::FhirDataBulkOperator => "804db8d3-32c7-4ad4-a975-3f6f90d5f5f5",
    }
}

/// Every FHIR data role, for recognising assignments the operator may remove.
pub const ALL_ROLES: [DataRole; 8] = [
    DataRole::FhirDataReader,
    DataRole::FhirDataWriter,
    DataRole::FhirDataContributor,
    DataRole::FhirDataExporter,
    DataRole::FhirDataImporter,
    DataRole::FhirDataConverter,
    DataRole::FhirSmartUser,
    DataRole::FhirDataBulkOperator,
];

/// The FHIR role whose definition id ends in this GUID, if any.
pub fn role_of_definition(definition_id: &str) -> Option<DataRole> {
    let guid = definition_id.rsplit('/').next()?;
    ALL_ROLES
        .into_iter()
        .find(|r| role_guid(*r).eq_ignore_ascii_case(guid))
}

/// `roleDefinitionId` as ARM requests spell it for a built-in role.
pub fn role_definition_id(subscription: &str, role: DataRole) -> String {
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}",
        role_guid(role)
    )
}

/// Namespace of the assignment names (a fixed random UUID: names differ from other tools' v5 names).
const NAME_NAMESPACE: uuid::Uuid = uuid::uuid!("9d3b0c52-7e0f-4a8e-9a3e-2b7f1f6c4d10");

/// The role assignment's name: UUIDv5 of (lower-cased scope, principal object id, role GUID), as
/// Bicep's `guid(scope, principalId, roleDefinitionId)` recommends. A retry after a crash PUTs the
/// same name, so it can never create a second assignment; names are unique tenant-wide.
pub fn assignment_name(scope: &str, principal_id: &str, role: DataRole) -> String {
    let input = format!(
        "{}|{}|{}",
        scope.trim_end_matches('/').to_ascii_lowercase(),
        principal_id.to_ascii_lowercase(),
        role_guid(role)
    );
    uuid::Uuid::new_v5(&NAME_NAMESPACE, input.as_bytes()).to_string()
}

/// An existing role assignment, as far as the plan needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    pub name: String,
    pub scope: String,
    pub principal_id: String,
    pub role_definition_id: String,
}

/// What to change: the roles to assign, and the assignments (by name) to remove.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    pub assign: Vec<DataRole>,
    /// Existing assignments that already grant a wanted role: (role, name) — adopted as they are.
    pub keep: Vec<(DataRole, String)>,
    pub remove: Vec<String>,
}

/// Wanted roles against the principal's assignments listed at the scope: assignments at exactly
/// this scope of a FHIR role no longer wanted are removed (inherited ones, from a resource group or
/// subscription, are someone else's); wanted roles without an assignment are assigned.
pub fn plan(scope: &str, principal_id: &str, wanted: &[DataRole], existing: &[Existing]) -> Plan {
    let mut p = Plan::default();
    let here: Vec<(&Existing, DataRole)> = existing
        .iter()
        .filter(|e| e.scope.trim_end_matches('/').eq_ignore_ascii_case(scope))
        .filter(|e| e.principal_id.eq_ignore_ascii_case(principal_id))
        .filter_map(|e| Some((e, role_of_definition(&e.role_definition_id)?)))
        .collect();
    for role in wanted {
        match here.iter().find(|(_, r)| r == role) {
            Some((e, _)) => p.keep.push((*role, e.name.clone())),
            None => p.assign.push(*role),
        }
    }
    for (e, role) in &here {
        if !wanted.contains(role) {
            p.remove.push(e.name.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const AHDS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws1/fhirservices/Fhir1";

    #[test]
    fn ahds_ids_give_url_and_audience() {
        let id = parse_resource_id(AHDS).unwrap();
        assert_eq!(
            id.fhir_url(),
            "https://ws1-fhir1.fhir.azurehealthcareapis.com"
        );
        assert_eq!(id.audience().as_deref(), Some(id.fhir_url().as_str()));
        assert_eq!(id.subscription(), "00000000-0000-0000-0000-000000000001");
        assert_eq!(parse_resource_id(&format!("{AHDS}/")).unwrap().scope, AHDS);
    }

    #[test]
    fn an_ahds_url_implies_its_own_audience_and_a_legacy_one_none() {
        assert_eq!(
            audience_of_url("https://ContosoHealth-fhir.fhir.azurehealthcareapis.com/").as_deref(),
            Some("https://contosohealth-fhir.fhir.azurehealthcareapis.com")
        );
        assert_eq!(
            audience_of_url("https://myfhir.azurehealthcareapis.com"),
            None
        );
        assert_eq!(audience_of_url("https://fhir.contoso.example"), None);
    }

    #[test]
    fn legacy_ids_give_the_url_but_not_the_audience() {
        let id = parse_resource_id(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.healthcareapis/services/MyFhir",
        )
        .unwrap();
        assert_eq!(id.fhir_url(), "https://myfhir.azurehealthcareapis.com");
        assert_eq!(id.audience(), None);
    }

    #[test]
    fn other_ids_are_refused() {
        for bad in [
            "",
            "subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/services/x",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/dicomservices/d",
            "/subscriptions//resourceGroups/rg/providers/Microsoft.HealthcareApis/services/x",
        ] {
            assert_eq!(parse_resource_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_deterministic_and_differ_by_input() {
        let a = assignment_name(AHDS, "P1", DataRole::FhirDataReader);
        assert_eq!(
            a,
            assignment_name(&AHDS.to_lowercase(), "p1", DataRole::FhirDataReader)
        );
        assert_ne!(a, assignment_name(AHDS, "p2", DataRole::FhirDataReader));
        assert_ne!(a, assignment_name(AHDS, "p1", DataRole::FhirDataWriter));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }

    #[test]
    fn plan_adopts_assigns_and_removes_only_here() {
        let e = |name: &str, scope: &str, role: DataRole| Existing {
            name: name.into(),
            scope: scope.into(),
            principal_id: "p".into(),
            role_definition_id: role_definition_id("s", role),
        };
        let existing = vec![
            e("r", AHDS, DataRole::FhirDataReader),
            e("w", AHDS, DataRole::FhirDataWriter),
            e(
                "inherited",
                "/subscriptions/s",
                DataRole::FhirDataContributor,
            ),
        ];
        let p = plan(
            AHDS,
            "p",
            &[DataRole::FhirDataReader, DataRole::FhirDataExporter],
            &existing,
        );
        assert_eq!(p.keep, vec![(DataRole::FhirDataReader, "r".to_string())]);
        assert_eq!(p.assign, vec![DataRole::FhirDataExporter]);
        assert_eq!(p.remove, vec!["w".to_string()]);
    }
}
