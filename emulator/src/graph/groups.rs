//! Creating and deleting security groups: `POST /groups` (Learn `group-post-groups`: displayName,
//! mailEnabled, mailNickname and securityEnabled are required; Group.Create, Group.ReadWrite.All or
//! Directory.ReadWrite.All) and `DELETE /groups/{id}` (Learn `group-delete`: Group.ReadWrite.All or
//! Directory.ReadWrite.All; 204). Wire forms from azure-cli's `test_special_characters.yaml` (2022).
use super::errors::{R, denied, invalid_value, not_found};
use super::odata::{check_writable, created, location, no_content, with_location};
use super::pattern::Params;
use super::req::Req;
use crate::state::directory::{GroupRec, group_body};
use crate::state::random_guid;
use crate::state::store::Tenant;
use crate::state::views::GraphObject;
use serde_json::Value;

/// The properties a create may set (Learn `group-post-groups`, request body).
const GROUP_WRITABLE: &[&str] = &[
    "displayName",
    "description",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "visibility",
    "isAssignableToRole",
    "membershipRule",
    "membershipRuleProcessingState",
    "preferredDataLocation",
    "classification",
    "theme",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
];

/// The properties `$filter` takes on groups (Learn `group` resource type, the properties marked
/// "Supports $filter").
pub const GROUP_FILTERABLE: &[&str] = &[
    "id",
    "displayName",
    "mailNickname",
    "mail",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "description",
    "classification",
    "createdDateTime",
    "expirationDateTime",
    "isAssignableToRole",
    "membershipRuleProcessingState",
    "onPremisesSyncEnabled",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "securityIdentifier",
    "visibility",
];

fn may_create(r: &Req) -> bool {
    r.has_any(&[
        "Group.Create",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ])
}

fn may_delete(r: &Req) -> bool {
    r.has_any(&["Group.ReadWrite.All", "Directory.ReadWrite.All"])
}

/// POST `/groups`: 201 with the group and a `Location`.
pub fn create(r: &Req, t: &mut Tenant, _: &Params) -> R {
    if !may_create(r) {
        return Err(denied());
    }
    check_writable(&r.body, GROUP_WRITABLE, "Group")?;
    // Which text Graph gives for a missing required property is not recorded; the emulator uses
    // its invalid-value form for the property.
    let text = |k: &str| {
        r.body
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let flag = |k: &str| r.body.get(k).and_then(Value::as_bool);
    let display_name = text("displayName").ok_or_else(|| invalid_value("displayName", "Group"))?;
    let nick = text("mailNickname").ok_or_else(|| invalid_value("mailNickname", "Group"))?;
    let mail_enabled = flag("mailEnabled").ok_or_else(|| invalid_value("mailEnabled", "Group"))?;
    let security =
        flag("securityEnabled").ok_or_else(|| invalid_value("securityEnabled", "Group"))?;
    let id = random_guid();
    let mut body = group_body(&id, display_name, nick, r.now);
    body["mailEnabled"] = mail_enabled.into();
    body["securityEnabled"] = security.into();
    for k in GROUP_WRITABLE {
        if let Some(v) = r.body.get(*k).filter(|_| body.get(*k).is_some()) {
            body[*k] = v.clone();
        }
    }
    t.groups.push(GroupRec {
        body: body.clone(),
        members: vec![],
    });
    let resp = created(r, "groups/$entity", &body);
    Ok(with_location(resp, &location(r, &t.id, &id, "Group")))
}

/// DELETE `/groups/{id}`: the group and the app role assignments it held go at once. Entra deletes a
/// security group permanently but keeps a Microsoft 365 group (groupTypes "Unified") in deleted items
/// for 30 days (Learn `group-delete`); the emulator's deleted items hold applications and service
/// principals only, so it deletes a Microsoft 365 group at once too (kinder than Entra there).
pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    if !may_delete(r) {
        return Err(denied());
    }
    let id = p.id("group").value().to_ascii_lowercase();
    let Some(i) = t.groups.iter().position(|g| g.body.id() == id) else {
        return Err(not_found(&id));
    };
    t.groups.remove(i);
    t.assignments.retain(|a| a.principal_id != id);
    Ok(no_content())
}
