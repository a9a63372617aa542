//! Directory users and groups of a tenant (from the config file, `--user`/`--group` flags and the
//! admin API), the passwords users sign in with, and the app roles a user holds on a resource —
//! assigned directly or through a group.
use super::basics::random_guid;
pub use super::store::{GroupRec, UserRec};
use super::store::{Tenant, s};
use super::views::GraphObject;
use crate::config::{GroupConfig, UserConfig};
use crate::crypto;
use serde_json::{Value, json};

fn hash(salt: &str, password: &str) -> String {
    let d = crypto::sha256(format!("{salt}:{password}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn object_id(given: &Option<String>) -> anyhow::Result<String> {
    match given {
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => Ok(id.to_ascii_lowercase()),
        Some(id) => anyhow::bail!("object id '{id}' is not a GUID"),
        None => Ok(random_guid()),
    }
}

/// Adds a group (or finds the one with this display name or id); returns its object id.
pub fn add_group(t: &mut Tenant, g: &GroupConfig) -> anyhow::Result<String> {
    if let Some(found) = t.groups.iter().find(|x| {
        x.body.display_name() == g.display_name
            || g.object_id.as_deref() == Some(s(&x.body, "id").as_str())
    }) {
        return Ok(s(&found.body, "id"));
    }
    if g.display_name.trim().is_empty() {
        anyhow::bail!("a group needs a display_name");
    }
    let id = object_id(&g.object_id)?;
    let nick: String = g
        .display_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let body = group_body(&id, &g.display_name, &nick, chrono::Utc::now());
    t.groups.push(GroupRec {
        body,
        members: vec![],
    });
    Ok(id)
}

/// A security group as Graph v1.0 shows it, every property Graph returns by default (the recorded
/// group of azure-cli's `test_special_characters.yaml`, 2022). `securityIdentifier` is Entra's SID
/// for a cloud object: `S-1-12-1-` and the object id's 16 bytes (in the GUID's little-endian layout)
/// read as four little-endian u32 (the recorded group's SID is so derived from its id).
pub fn group_body(
    id: &str,
    display_name: &str,
    nick: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let at = super::store::fmt_secs(now);
    json!({"id": id, "deletedDateTime": null, "classification": null, "createdDateTime": at,
        "creationOptions": [], "description": null, "displayName": display_name,
        "expirationDateTime": null, "groupTypes": [], "isAssignableToRole": null, "mail": null,
        "mailEnabled": false, "mailNickname": nick, "membershipRule": null,
        "membershipRuleProcessingState": null, "onPremisesDomainName": null,
        "onPremisesLastSyncDateTime": null, "onPremisesNetBiosName": null,
        "onPremisesSamAccountName": null, "onPremisesSecurityIdentifier": null,
        "onPremisesSyncEnabled": null, "preferredDataLocation": null, "preferredLanguage": null,
        "proxyAddresses": [], "renewedDateTime": at, "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [], "securityEnabled": true,
        "securityIdentifier": security_identifier(id), "theme": null, "visibility": null,
        "onPremisesProvisioningErrors": []})
}

fn security_identifier(id: &str) -> Value {
    let Ok(u) = uuid::Uuid::parse_str(id) else {
        return Value::Null;
    };
    let b = u.to_bytes_le();
    let parts: Vec<String> = b
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    json!(format!("S-1-12-1-{}", parts.join("-")))
}

/// Adds (or replaces, by user principal name) a user; returns its object id.
pub fn add_user(t: &mut Tenant, u: &UserConfig) -> anyhow::Result<String> {
    let upn = u.user_principal_name.trim().to_ascii_lowercase();
    let Some((local, _domain)) = upn.split_once('@') else {
        anyhow::bail!("user principal name '{upn}' has no '@domain'");
    };
    if u.password.is_empty() {
        anyhow::bail!("user '{upn}' needs a password");
    }
    let existing = t
        .users
        .iter()
        .position(|x| s(&x.body, "userPrincipalName") == upn);
    let id = match existing {
        Some(i) => s(&t.users[i].body, "id"),
        None => object_id(&u.object_id)?,
    };
    let name = if u.display_name.is_empty() {
        local.to_string()
    } else {
        u.display_name.clone()
    };
    let salt = random_guid();
    // A user added again keeps its directory extension values.
    let extensions = existing
        .map(|i| t.users[i].extensions.clone())
        .unwrap_or_default();
    let rec = UserRec {
        body: json!({"businessPhones": [], "displayName": name, "givenName": null, "jobTitle": null,
            "mail": null, "mobilePhone": null, "officeLocation": null, "preferredLanguage": null,
            "surname": null, "userPrincipalName": upn, "id": id}),
        password_sha256: hash(&salt, &u.password),
        salt,
        admin: u.admin,
        extensions,
    };
    match existing {
        Some(i) => t.users[i] = rec,
        None => t.users.push(rec),
    }
    for g in &u.groups {
        let gid = add_group(
            t,
            &GroupConfig {
                display_name: g.clone(),
                object_id: None,
            },
        )?;
        let grp = t.groups.iter_mut().find(|x| x.body.id() == gid).unwrap();
        if !grp.members.contains(&id) {
            grp.members.push(id.clone());
        }
    }
    Ok(id)
}

/// The user with this user principal name (case-insensitive).
pub fn user_by_upn<'a>(t: &'a Tenant, upn: &str) -> Option<&'a UserRec> {
    let upn = upn.trim().to_ascii_lowercase();
    t.users
        .iter()
        .find(|u| s(&u.body, "userPrincipalName") == upn)
}

pub fn user_by_id<'a>(t: &'a Tenant, id: &str) -> Option<&'a UserRec> {
    t.users.iter().find(|u| u.body.id() == id)
}

/// Whether `password` is this user's password.
pub fn password_ok(u: &UserRec, password: &str) -> bool {
    let want = u.password_sha256.as_bytes();
    let got = hash(&u.salt, password);
    // Compare every byte, so the time taken does not tell how much of the hash matched.
    want.len() == got.len()
        && want
            .iter()
            .zip(got.as_bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
}

/// The user's object id followed by the ids of the groups it is a member of.
pub fn principal_ids(t: &Tenant, user_id: &str) -> Vec<String> {
    let mut ids = vec![user_id.to_string()];
    ids.extend(
        t.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user_id))
            .map(|g| s(&g.body, "id")),
    );
    ids
}

/// Whether the user, or a group it is in, holds an app role assignment on the service principal.
pub fn assigned(t: &Tenant, user_id: &str, sp_id: &str) -> bool {
    let ids = principal_ids(t, user_id);
    t.assignments
        .iter()
        .any(|a| a.resource_id == sp_id && ids.contains(&a.principal_id))
}

/// Values of the enabled app roles the user holds on `resource_sp`, directly or through a group.
pub fn user_roles(t: &Tenant, user_id: &str, resource_sp: &Value) -> Vec<String> {
    role_values(t, &principal_ids(t, user_id), resource_sp)
}

/// Values of the enabled app roles of `resource_sp` assigned to any of `principals`, sorted.
pub fn role_values(t: &Tenant, principals: &[String], resource_sp: &Value) -> Vec<String> {
    let rid = resource_sp.id();
    let mut roles: Vec<String> = t
        .assignments
        .iter()
        .filter(|a| a.resource_id == rid && principals.contains(&a.principal_id))
        .filter_map(|a| {
            resource_sp
                .app_roles()
                .find(|r| r.id == a.app_role_id && r.enabled)
                .map(|r| r.value.to_string())
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// A principal's Graph `@odata.type` and display name, for app role assignments to users and groups.
pub fn principal(t: &Tenant, id: &str) -> Option<(&'static str, String)> {
    if let Some(u) = user_by_id(t, id) {
        return Some(("User", s(&u.body, "displayName")));
    }
    t.groups
        .iter()
        .find(|g| g.body.id() == id)
        .map(|g| ("Group", s(&g.body, "displayName")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_sid_derives_from_its_object_id_as_recorded() {
        // azure-cli test_special_characters.yaml (2022): this id had this securityIdentifier.
        assert_eq!(
            security_identifier("6ee1cd49-1896-4e37-980f-32ff4824a547"),
            json!("S-1-12-1-1860291913-1312233622-4281470872-1202005064")
        );
    }

    #[test]
    fn users_groups_and_passwords() {
        let mut t = Tenant::new("72f988bf-0000-4000-8000-000000000001", vec![], false);
        let id = add_user(
            &mut t,
            &UserConfig {
                user_principal_name: "Ada@Contoso.Example".into(),
                password: "pw-1".into(),
                groups: vec!["clinicians".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let u = user_by_upn(&t, "ada@contoso.example").unwrap();
        assert_eq!(s(&u.body, "displayName"), "ada");
        assert!(password_ok(u, "pw-1"));
        assert!(!password_ok(u, "pw-2"));
        assert!(!u.password_sha256.contains("pw-1"));
        let ids = principal_ids(&t, &id);
        assert_eq!(ids.len(), 2);
        assert_eq!(principal(&t, &ids[1]).unwrap().0, "Group");
        assert!(
            add_user(
                &mut t,
                &UserConfig {
                    user_principal_name: "nodomain".into(),
                    password: "x".into(),
                    ..Default::default()
                }
            )
            .is_err()
        );
        let f = UserConfig::parse_flag("bob@contoso.example:s3cret:Bob B:g1,g2").unwrap();
        assert_eq!((f.display_name.as_str(), f.groups.len()), ("Bob B", 2));
    }
}
