//! An application create or update payload applied to the stored record: server-set properties
//! dropped, app roles and scopes given all their properties, password credentials only removed,
//! key credentials normalised.
use super::credentials::normalise_key_credentials;
use super::errors::GErr;
use super::odata::deep_merge;
use crate::state::store::{AppRec, s};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Applies a create/update payload to an app record.
pub fn apply_app_payload(
    app: &mut AppRec,
    body: &Value,
    now: DateTime<Utc>,
    creating: bool,
) -> Result<(), GErr> {
    let mut patch = body.clone();
    if let Some(o) = patch.as_object_mut() {
        drop_server_set(o);
        normalise_entitlements(o);
        normalise_optional_claims(o);
        if let Some(pc) = o.remove("passwordCredentials")
            && !creating
        {
            keep_only_listed_passwords(app, &pc);
        }
        if let Some(kc) = o.remove("keyCredentials") {
            normalise_key_credentials(app, &kc, now)?;
        }
    }
    deep_merge(&mut app.body, &patch);
    Ok(())
}

fn drop_server_set(o: &mut Map<String, Value>) {
    for k in [
        "id",
        "appId",
        "createdDateTime",
        "publisherDomain",
        "deletedDateTime",
    ] {
        o.remove(k);
    }
    o.retain(|k, _| !k.starts_with('@'));
}

fn normalise_entitlements(o: &mut Map<String, Value>) {
    if let Some(roles) = o.get_mut("appRoles").and_then(Value::as_array_mut) {
        for r in roles.iter_mut() {
            *r = norm_role(r);
        }
    }
    if let Some(scopes) = o
        .get_mut("api")
        .and_then(|a| a.get_mut("oauth2PermissionScopes"))
        .and_then(Value::as_array_mut)
    {
        for sc in scopes.iter_mut() {
            *sc = norm_scope(sc);
        }
    }
}

/// Optional claims as the directory keeps them: all three token types (a missing one empty) and
/// each claim with `source` (null) and `additionalProperties` (empty) filled in and `essential`
/// false unless given. Recorded by azure-cli's `test_application_optional_claims.yaml` (commit
/// c0b94d90, 2020, Azure AD Graph over the same directory): a create with `idToken` and
/// `accessToken` claims of only `name` and `essential` was answered with `source: null`,
/// `additionalProperties: []` on each and `saml2Token: []`. Learn `optionalClaim`: `essential`
/// defaults to false.
fn normalise_optional_claims(o: &mut Map<String, Value>) {
    let Some(oc) = o.get_mut("optionalClaims").and_then(Value::as_object_mut) else {
        return;
    };
    for token in ["idToken", "accessToken", "saml2Token"] {
        let claims = oc.entry(token).or_insert_with(|| json!([]));
        if claims.is_null() {
            *claims = json!([]);
        }
        for c in claims.as_array_mut().into_iter().flatten() {
            *c = normalise(
                c,
                &[
                    ("additionalProperties", json!([])),
                    ("essential", json!(false)),
                    ("name", Value::Null),
                    ("source", Value::Null),
                ],
            );
        }
    }
}

/// Secrets are added with addPassword; a PATCH can only remove existing ones.
fn keep_only_listed_passwords(app: &mut AppRec, pc: &Value) {
    let Some(list) = pc.as_array() else {
        return;
    };
    let keep: Vec<String> = list.iter().map(|x| s(x, "keyId")).collect();
    app.secrets.retain(|x| keep.contains(&x.key_id));
    if let Some(cur) = app.body["passwordCredentials"].as_array_mut() {
        cur.retain(|x| keep.contains(&s(x, "keyId")));
    }
}

/// `v` with exactly `fields`, in that order, each defaulted when absent.
fn normalise(v: &Value, fields: &[(&str, Value)]) -> Value {
    let mut out = Map::new();
    for (k, dflt) in fields {
        out.insert(k.to_string(), v.get(*k).cloned().unwrap_or(dflt.clone()));
    }
    Value::Object(out)
}

fn norm_role(v: &Value) -> Value {
    normalise(
        v,
        &[
            ("allowedMemberTypes", json!([])),
            ("description", Value::Null),
            ("displayName", Value::Null),
            ("id", Value::Null),
            ("isEnabled", json!(true)),
            ("origin", json!("Application")),
            ("value", Value::Null),
        ],
    )
}

fn norm_scope(v: &Value) -> Value {
    normalise(
        v,
        &[
            ("adminConsentDescription", Value::Null),
            ("adminConsentDisplayName", Value::Null),
            ("id", Value::Null),
            ("isEnabled", json!(true)),
            ("type", json!("User")),
            ("userConsentDescription", Value::Null),
            ("userConsentDisplayName", Value::Null),
            ("value", Value::Null),
        ],
    )
}
