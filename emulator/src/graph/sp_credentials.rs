//! A service principal's password credentials: `POST /servicePrincipals/{id}/addPassword` and
//! `removePassword` (Learn `serviceprincipal-addpassword`, `serviceprincipal-removepassword`;
//! permission Application.ReadWrite.OwnedBy for an owner, or Application.ReadWrite.All).
//!
//! Wire form from the azure-cli recording `test_sp_credential.yaml` (2022, in
//! `emulator/tests/recordings/azure-cli/`): the body is `{"passwordCredential": {displayName,
//! startDateTime, endDateTime}}`, the answer 200 with the credential and its `secretText` once and a
//! `Location` of the Graph host, as for an application; unlike an application's, the credential's
//! `hint` is null in the answer and on every read; `removePassword` answers 204. The service
//! principal lists its credentials newest first (the recording, and azure-cli's `test_graph.py`:
//! "Graph API reverses the order of insertion").
//!
//! The password signs the application in at the token endpoint in the service principal's tenant,
//! as an application's does (microsoftgraph/microsoft-graph-docs-contrib#8471: a secret added on the
//! service principal "successfully added … and got the access token"); identity/client_auth.rs.
use super::credentials::validity;
use super::errors::{GErr, R, bad, denied};
use super::lookup::find_sp;
use super::odata::{entity, no_content, with_location};
use super::pattern::Params;
use super::policy_rules;
use super::req::Req;
use crate::state::random_guid;
use crate::state::store::{Secret, Tenant, fmt_7, fmt_secs, now_ms, s};
use serde_json::{Value, json};

/// Graph's cap on the password credentials of one object (as for applications, see credentials.rs).
const MAX_PASSWORDS: usize = 100;

/// `{sp}` of the route, found, and the caller allowed to change it.
fn writable_sp(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let i = find_sp(r, t, p.id("sp"))?;
    if !r.can_write(&t.sps[i].owners) {
        return Err(denied());
    }
    Ok(i)
}

/// The `passwordCredential` of the request body (absent or null: all defaults).
fn requested(r: &Req) -> Value {
    match r.body.get("passwordCredential") {
        Some(pc) if !pc.is_null() => pc.clone(),
        _ => json!({}),
    }
}

/// POST `servicePrincipals/{id}/addPassword`: a new secret, shown once.
pub fn add_password(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = writable_sp(r, t, p)?;
    let pc = requested(r);
    let (start, end) = validity(r, &pc)?;
    // The tenant's servicePrincipalRestrictions (or the service principal's assigned policy), with
    // the requested validity known and nothing stored yet (Learn `resources/tenantappmanagementpolicy`).
    policy_rules::check_sp_password(t, &t.sps[i].body, start, end)?;
    let list = passwords(&t.sps[i].body);
    if list.len() >= MAX_PASSWORDS {
        return Err(bad(
            "The maximum number of password credentials for this service principal has been reached.",
        ));
    }
    let key_id = random_guid();
    let secret = crate::config::random_secret();
    let shown = |at: String, until: String| {
        json!({"customKeyIdentifier": null, "displayName": pc.get("displayName").cloned().unwrap_or(Value::Null),
            "endDateTime": until, "hint": null, "keyId": key_id, "secretText": null, "startDateTime": at})
    };
    let mut answer = shown(fmt_7(start), fmt_7(end));
    answer["secretText"] = json!(secret);
    let stored = shown(fmt_secs(start), fmt_secs(end));
    let mut newest_first = vec![stored];
    newest_first.extend(list);
    t.sps[i].body["passwordCredentials"] = Value::Array(newest_first);
    t.sps[i].secrets.push(Secret {
        key_id: key_id.clone(),
        text: secret,
        usable_from_ms: now_ms() + r.lag,
    });
    super::delta::sp_touched(r, t, i, &["passwordCredentials"]);
    let resp = entity(r, "microsoft.graph.passwordCredential", &answer);
    Ok(with_location(resp, &r.sh.base_url))
}

/// POST `servicePrincipals/{id}/removePassword` `{"keyId": …}`.
pub fn remove_password(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = writable_sp(r, t, p)?;
    let key_id = r.body.get("keyId").and_then(Value::as_str).unwrap_or("");
    let list = passwords(&t.sps[i].body);
    let kept: Vec<Value> = list
        .iter()
        .filter(|c| s(c, "keyId") != key_id)
        .cloned()
        .collect();
    if kept.len() == list.len() {
        return Err(bad(format!(
            "No password credential found with keyId '{key_id}'."
        )));
    }
    t.sps[i].body["passwordCredentials"] = Value::Array(kept);
    t.sps[i].secrets.retain(|x| x.key_id != key_id);
    super::delta::sp_touched(r, t, i, &["passwordCredentials"]);
    Ok(no_content())
}

fn passwords(sp: &Value) -> Vec<Value> {
    sp["passwordCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
