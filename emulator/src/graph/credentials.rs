//! An application's password and key credentials: addPassword, removePassword, removeKey, and the
//! keyCredentials of a create or update payload.
use super::delta;
use super::errors::{GErr, R, bad, denied, invalid_value, not_found};
use super::lookup::find_app;
use super::odata::{entity, no_content, with_location};
use super::pattern::Params;
use super::policy_rules::{self, Subject};
use super::req::Req;
use crate::crypto;
use crate::state::app_policies::Kind;
use crate::state::random_guid;
use crate::state::store::{self, AppRec, Tenant, fmt_7, fmt_secs, now_ms, s};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `{app}` of the route, found, and the caller allowed to change it.
fn writable_app(r: &Req, t: &Tenant, p: &Params) -> Result<usize, GErr> {
    let i = find_app(r, t, p.id("app"), false)?;
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    Ok(i)
}

/// POST `addPassword`: a new secret, shown once (usable after the replication lag).
pub fn add_password(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = writable_app(r, t, p)?;
    let pc = match r.body.get("passwordCredential") {
        Some(pc) if !pc.is_null() => pc.clone(),
        _ => json!({}),
    };
    let (start, end) = validity(r, &pc)?;
    let subject = Subject::of(&t.apps[i].body, Kind::Application);
    policy_rules::check_password(t, &subject, start, end)?;
    let key_id = pc
        .get("keyId")
        .and_then(Value::as_str)
        .filter(|k| uuid::Uuid::parse_str(k).is_ok())
        .map(str::to_string)
        .unwrap_or_else(random_guid);
    check_room(&t.apps[i], &key_id)?;
    let secret = crate::config::random_secret();
    let cred = json!({"customKeyIdentifier": null, "displayName": pc.get("displayName").cloned().unwrap_or(Value::Null),
        "endDateTime": fmt_7(end), "hint": secret.chars().take(3).collect::<String>(), "keyId": key_id,
        "secretText": secret, "startDateTime": fmt_7(start)});
    let mut stored = cred.clone();
    stored["secretText"] = Value::Null;
    stored["endDateTime"] = json!(fmt_secs(end));
    stored["startDateTime"] = json!(fmt_secs(start));
    t.apps[i].add_secret(stored, key_id, secret, now_ms() + r.lag);
    delta::app_touched(r, t, i, &["passwordCredentials"]);
    let resp = entity(r, "microsoft.graph.passwordCredential", &cred);
    Ok(with_location(resp, &r.sh.base_url))
}

/// startDateTime (default now) and endDateTime (default two years later), start before end.
pub(super) fn validity(r: &Req, pc: &Value) -> Result<(DateTime<Utc>, DateTime<Utc>), GErr> {
    let start = match pc.get("startDateTime").and_then(Value::as_str) {
        Some(x) => store::parse_time(x)
            .ok_or_else(|| invalid_value("startDateTime", "PasswordCredential"))?,
        None => r.now,
    };
    let end = match pc.get("endDateTime").and_then(Value::as_str) {
        Some(x) => store::parse_time(x)
            .ok_or_else(|| invalid_value("endDateTime", "PasswordCredential"))?,
        None => start + chrono::Duration::days(365 * 2),
    };
    if end <= start {
        return Err(bad("Key credential end date is invalid."));
    }
    Ok((start, end))
}

/// A new keyId, and fewer than 100 secrets so far.
fn check_room(app: &AppRec, key_id: &str) -> Result<(), GErr> {
    if app.secrets.iter().any(|x| x.key_id == key_id) {
        return Err(bad(format!(
            "A credential with keyId '{key_id}' already exists."
        )));
    }
    if app.secrets.len() >= 100 {
        return Err(bad(
            "The maximum number of password credentials for this application has been reached.",
        ));
    }
    Ok(())
}

fn body_key_id(r: &Req) -> String {
    r.body
        .get("keyId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// POST `removePassword` `{"keyId": …}`.
pub fn remove_password(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = writable_app(r, t, p)?;
    let key_id = body_key_id(r);
    let app = &mut t.apps[i];
    if !remove_by_key_id(&mut app.body["passwordCredentials"], &key_id) {
        return Err(bad(format!(
            "No password credential found with keyId '{key_id}'."
        )));
    }
    app.secrets.retain(|x| x.key_id != key_id);
    delta::app_touched(r, t, i, &["passwordCredentials"]);
    Ok(no_content())
}

/// POST `removeKey` `{"keyId": …}`.
pub fn remove_key(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = writable_app(r, t, p)?;
    let key_id = body_key_id(r);
    let app = &mut t.apps[i];
    if !remove_by_key_id(&mut app.body["keyCredentials"], &key_id) {
        return Err(not_found(&key_id));
    }
    app.cert_keys.remove(&key_id);
    delta::app_touched(r, t, i, &["keyCredentials"]);
    Ok(no_content())
}

/// Removes the credential with `key_id` from a credential collection; false when there was none.
fn remove_by_key_id(credentials: &mut Value, key_id: &str) -> bool {
    let Some(list) = credentials.as_array_mut() else {
        return false;
    };
    let before = list.len();
    list.retain(|x| s(x, "keyId") != key_id);
    list.len() != before
}

/// The keyCredentials of a payload replace the application's: each an X.509 certificate (`key`,
/// or an existing keyId without one), shown with its thumbprint, subject and validity.
pub fn normalise_key_credentials(
    app: &mut AppRec,
    kc: &Value,
    now: DateTime<Utc>,
) -> Result<(), GErr> {
    let list = kc
        .as_array()
        .cloned()
        .ok_or_else(|| invalid_value("keyCredentials", "Application"))?;
    let mut out = vec![];
    let mut keys = BTreeMap::new();
    for k in list {
        let key_id = k
            .get("keyId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(random_guid);
        let der = certificate(app, &k, &key_id)?;
        out.push(key_credential(app, &k, &key_id, &der, now)?);
        keys.insert(key_id, crypto::b64(&der));
    }
    app.body["keyCredentials"] = Value::Array(out);
    app.cert_keys = keys;
    Ok(())
}

/// The DER of a key credential: its `key`, or the stored one of its keyId.
fn certificate(app: &AppRec, k: &Value, key_id: &str) -> Result<Vec<u8>, GErr> {
    match k.get("key").and_then(Value::as_str) {
        Some(b) => {
            // `key` is an Edm.Binary: standard base64. The base64url alphabet is refused
            // (microsoftgraph/microsoft-graph-docs#10556; Azure/azure-sdk-for-java#48338 and PR
            // #50071, whose live test got this text for a key with '-' and '_'). Whether Graph
            // needs the '=' padding is not recorded; the emulator takes it with or without.
            if b.contains(['-', '_']) {
                return Err(bad(format!(
                    "Cannot convert the literal '{b}' to the expected type 'Edm.Binary'."
                )));
            }
            let bytes =
                crypto::b64_any(b).ok_or_else(|| invalid_value("keyCredentials", "Application"))?;
            certificate_der(bytes).ok_or_else(|| {
                bad(
                    "Key credential is not a valid X.509 certificate: invalid value specified for property 'keyCredentials' of resource 'Application'.",
                )
            })
        }
        None => app
            .cert_keys
            .get(key_id)
            .and_then(|b| crypto::b64_any(b))
            .ok_or_else(|| invalid_value("keyCredentials", "Application")),
    }
}

/// The certificate in a decoded `key`: DER, as the docs describe it ("the certificate's raw data in
/// byte array converted to Base64 string", Learn `resources/keycredential`), or the certificate's PEM
/// text, which Entra accepts too: the Terraform azuread provider sends every certificate as base64 of
/// PEM (`internal/helpers/credentials/credentials.go`, `KeyCredentialForResource`, which wraps even DER
/// input in a PEM block), and nais/azurerator sends `msgraph.Binary(PublicPem)`
/// (`pkg/azure/client/keycredential/keycredential.go`), both in production use. What Entra returns as
/// `key` after a PEM upload is not documented; the emulator never returns `key` (null, see
/// [`key_credential`]) and keeps the DER, from which the thumbprint (`customKeyIdentifier`) and the
/// client-assertion check are computed the same way for both forms. Bytes that are neither are
/// refused.
fn certificate_der(bytes: Vec<u8>) -> Option<Vec<u8>> {
    let der = match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" => pem.contents,
        Ok(_) => return None,
        Err(_) => bytes,
    };
    x509_parser::parse_x509_certificate(&der)
        .is_ok()
        .then_some(der)
}

/// The key credential as Graph shows it (`key` hidden); unset properties from the certificate,
/// or from the credential of the same keyId.
fn key_credential(
    app: &AppRec,
    k: &Value,
    key_id: &str,
    der: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, GErr> {
    let existing = app.body["keyCredentials"]
        .as_array()
        .and_then(|a| a.iter().find(|x| s(x, "keyId") == key_id).cloned());
    let (nb, na) =
        crypto::cert_validity(der).unwrap_or((now.timestamp(), now.timestamp() + 365 * 86400));
    let subject = x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default();
    let typ = k
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("AsymmetricX509Cert");
    let usage = k.get("usage").and_then(Value::as_str).unwrap_or("Verify");
    if !matches!(typ, "AsymmetricX509Cert" | "X509CertAndPassword")
        || !matches!(usage, "Verify" | "Sign")
    {
        return Err(invalid_value("keyCredentials", "Application"));
    }
    let pick = |name: &str, dflt: Value| {
        k.get(name)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| existing.as_ref().and_then(|e| e.get(name).cloned()))
            .unwrap_or(dflt)
    };
    let at = |secs: i64| json!(fmt_secs(DateTime::from_timestamp(secs, 0).unwrap_or(now)));
    Ok(json!({
        "customKeyIdentifier": pick("customKeyIdentifier", json!(crypto::b64(&crypto::sha1(der)))),
        "displayName": pick("displayName", json!(format!("CN={}", subject.trim_start_matches("CN=")))),
        "endDateTime": pick("endDateTime", at(na)),
        "key": null,
        "keyId": key_id,
        "startDateTime": pick("startDateTime", at(nb)),
        "type": typ,
        "usage": usage,
    }))
}
