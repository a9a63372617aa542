//! Azure's built-in role definitions the emulator knows: the FHIR data roles and the roles that may
//! assign roles. GUIDs and names from Azure's built-in roles page (Integration and Privileged tables,
//! ms.date 04/09/2026); data actions from its FHIR role entries (AHDS and Azure API for FHIR forms).
use serde_json::{Value, json};

pub struct RoleDef {
    pub guid: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
    pub data_actions: &'static [&'static str],
}

const FHIR_READ: &[&str] = &[
    "Microsoft.HealthcareApis/services/fhir/resources/read",
    "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
];

pub const ROLES: &[RoleDef] = &[
    RoleDef {
        guid: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        data_actions: &[],
    },
    RoleDef {
        guid: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        // notActions (roleAssignments/write, /delete) are applied in `allows`.
        actions: &["*"],
        data_actions: &[],
    },
    RoleDef {
        guid: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        data_actions: &[],
    },
    RoleDef {
        guid: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        name: "User Access Administrator",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*"],
        data_actions: &[],
    },
    RoleDef {
        guid: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        name: "Role Based Access Control Administrator",
        description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
        actions: &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
        ],
        data_actions: &[],
    },
    RoleDef {
        guid: "4c8d0bbc-75d3-4935-991f-5f3c56d81508",
        name: "FHIR Data Reader",
        description: "Role allows user or principal to read FHIR Data",
        actions: &[],
        data_actions: FHIR_READ,
    },
    RoleDef {
        guid: "3f88fce4-5892-4214-ae73-ba5294559913",
        name: "FHIR Data Writer",
        description: "Role allows user or principal to read and write FHIR Data",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/services/fhir/resources/*",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/write",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/delete",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/export/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/resourceValidate/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/reindex/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/convertData/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/editProfileDefinitions/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/import/action",
        ],
    },
    RoleDef {
        guid: "5a1fc7df-4bf1-4951-a576-89034ee01acd",
        name: "FHIR Data Contributor",
        description: "Role allows user or principal full access to FHIR Data",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/services/fhir/resources/*",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/*",
        ],
    },
    RoleDef {
        guid: "3db33094-8700-4567-8da5-1501d4e7e843",
        name: "FHIR Data Exporter",
        description: "Role allows user or principal to read and export FHIR Data",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/services/fhir/resources/read",
            "Microsoft.HealthcareApis/services/fhir/resources/export/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/export/action",
        ],
    },
    RoleDef {
        guid: "4465e953-8ced-4406-a58e-0f6e3f3b530b",
        name: "FHIR Data Importer",
        description: "Role allows user or principal to read and import FHIR Data",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/import/action",
        ],
    },
    RoleDef {
        guid: "a1705bd2-3a8f-45a5-8683-466fcfd5cc24",
        name: "FHIR Data Converter",
        description: "Role allows user or principal to convert data from legacy format to FHIR",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/services/fhir/resources/convertData/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/convertData/action",
        ],
    },
    RoleDef {
        guid: "4ba50f17-9666-485c-a643-ff00808643f0",
        name: "FHIR SMART User",
        description: "Role allows user to access FHIR Service according to SMART on FHIR specification",
        actions: &[],
        data_actions: &[
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/write",
        ],
    },
    RoleDef {
        guid: "804db8d3-32c7-4ad4-a975-3f6f90d5f5f5",
        name: "FHIR Data Bulk Operator",
        description: "Allows user or principal to perform bulk operations on FHIR Data",
        actions: &[],
        // Not verified against the role's definition: read, export and import as its name suggests.
        data_actions: &[
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/read",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/export/action",
            "Microsoft.HealthcareApis/workspaces/fhirservices/resources/import/action",
        ],
    },
];

/// The role a `roleDefinitionId` (`…/roleDefinitions/{guid}`, any scope prefix) names.
pub fn by_definition_id(id: &str) -> Option<&'static RoleDef> {
    let guid = id.trim_end_matches('/').rsplit('/').next()?;
    ROLES.iter().find(|r| r.guid.eq_ignore_ascii_case(guid))
}

/// By GUID or by name (case-insensitive), for the emulator's config and admin API.
pub fn by_name_or_guid(s: &str) -> Option<&'static RoleDef> {
    ROLES
        .iter()
        .find(|r| r.guid.eq_ignore_ascii_case(s) || r.name.eq_ignore_ascii_case(s))
        .or_else(|| by_definition_id(s))
}

/// Whether `pattern` (`*`, `a/*`, `*/read`, or a literal) matches `action`, as Azure RBAC compares.
fn matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    if p == "*" || p == a {
        return true;
    }
    if let Some(prefix) = p.strip_suffix("/*") {
        return a.starts_with(&format!("{prefix}/"));
    }
    if let Some(suffix) = p.strip_prefix("*/") {
        return a.ends_with(&format!("/{suffix}"));
    }
    false
}

impl RoleDef {
    /// Whether the role grants the control-plane `action`.
    pub fn allows(&self, action: &str) -> bool {
        let denied = self.name == "Contributor"
            && (action.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments/write")
                || action.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments/delete"));
        !denied && self.actions.iter().any(|p| matches(p, action))
    }
    /// Whether the role grants the data-plane `action`.
    pub fn allows_data(&self, action: &str) -> bool {
        self.data_actions.iter().any(|p| matches(p, action))
    }
    /// The definition as ARM returns it.
    pub fn to_json(&self, subscription: Option<&str>) -> Value {
        let id = match subscription {
            Some(s) => format!(
                "/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{}",
                self.guid
            ),
            None => format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{}",
                self.guid
            ),
        };
        json!({"properties": {"roleName": self.name, "type": "BuiltInRole", "description": self.description,
            "assignableScopes": ["/"], "permissions": [{"actions": self.actions, "notActions": [],
            "dataActions": self.data_actions, "notDataActions": []}],
            "createdOn": "2015-02-02T21:55:09.8806423Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": null, "updatedBy": null},
            "id": id, "type": "Microsoft.Authorization/roleDefinitions", "name": self.guid})
    }
}
