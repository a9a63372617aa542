//! The credential step. Each kind (client secret, certificate, workload identity) is a module that
//! does what Graph needs before the Secret is written and returns a [`Prepared`] plan: the Secret's
//! credential entries and annotations, what to announce or undo around the write, what to prune
//! after it, and when to look again. The pipeline's write step executes it.

mod certificate;
mod client_secret;
mod workload_identity;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use crate::api::{CredentialStatus, CredentialType, FhirClientApp};
use crate::controller::application::WRITE_APPS;
use crate::controller::{Context, Error, needs};
use crate::desired::certificate as cert;
use crate::desired::client::CertificateFiles;
use crate::desired::credentials::{self as creds, Held, Listed, Rotation};
use crate::graph::GraphClient;
use crate::graph::types::Application;

const ANN_KEY_ID: &str = "fhirapps.io/key-id";
const ANN_SECRET_SHA256: &str = "fhirapps.io/secret-sha256";
const ANN_EXPIRES: &str = "fhirapps.io/expires-at";
const ANN_WRITTEN: &str = "fhirapps.io/written-at";
const ANN_PREV_KEY: &str = "fhirapps.io/previous-key-id";
const ANN_PREV_UNTIL: &str = "fhirapps.io/previous-key-valid-until";
/// Object ID of the application the held credential was issued by: a Secret written for an
/// application that has since been deleted and re-created holds nothing the new one accepts.
const ANN_APP: &str = "fhirapps.io/application-object-id";

/// What one reconcile's credential step needs to know.
pub struct Inputs<'a> {
    pub ctx: &'a Context,
    pub obj: &'a FhirClientApp,
    pub graph: &'a GraphClient,
    pub app: &'a Application,
    /// The output Secret as it is now (ours, or absent).
    pub existing: Option<&'a Secret>,
    pub secret_name: &'a str,
    /// Whether the client was registered before this reconcile (for the Event reason).
    pub registered_before: bool,
    /// Whether the application was restored from Entra's deleted items in this reconcile: its
    /// credentials from before were removed, so what an output Secret still holds is dead.
    pub restored: bool,
    /// The rotation, under the app management policy's lifetime cap.
    pub rotation: Rotation,
    /// The app management policy's rules, when the operator could read them.
    pub policy: Option<&'a crate::desired::app_policy::CredentialRules>,
    pub now: Timestamp,
}

/// A credential issued in this reconcile, announced once the Secret holding it is written.
pub struct Issued {
    /// `client secret` or `client certificate`.
    pub what: &'static str,
    pub key_id: String,
    pub reason: &'static str,
    /// Remove it from the application if the Secret write fails (a client secret; a certificate
    /// is removed by the next keyCredentials PATCH, which is built from the Secret).
    pub undo_on_failure: bool,
}

/// The credential part of the Secret and what surrounds its write.
#[derive(Default)]
pub struct Prepared {
    pub client_secret: Option<String>,
    pub certificate: Option<CertificateFiles>,
    pub federated_token_file: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub issued: Option<Issued>,
    /// Client secrets (key IDs) of ours that no Secret holds, removed after the write.
    pub prune_after: Vec<String>,
    pub next_check: Option<Duration>,
    pub status: Option<CredentialStatus>,
    /// Unix time the current credential expires (the expiry gauge).
    pub expires: Option<i64>,
    /// Unix time the current credential is due for renewal (the renewal gauge).
    pub renew_at: Option<i64>,
}

/// Runs the kind's preparation; a Public client has none.
pub async fn prepare(kind: Option<CredentialType>, i: &Inputs<'_>) -> Result<Prepared, Error> {
    match kind {
        Some(CredentialType::ClientSecret) => client_secret::prepare(i).await,
        Some(CredentialType::Certificate) => certificate::prepare(i).await,
        Some(CredentialType::WorkloadIdentity) => workload_identity::prepare(i).await,
        None => Ok(Prepared::default()),
    }
}

/// Whether `secret` was written for this very FhirClientApp: its controller reference carries the
/// object's uid. One written for an earlier FhirClientApp of the same name (deleted and created
/// again before the garbage collector came by) holds a credential from before the deletion, and
/// none may stay live after a re-create (issue 24 item 6), whether the application came back in
/// one reconcile (`restored`) or a restore was cut short before its credentials were removed and
/// the next reconcile found the application live (the failure suite's re-create scenario).
pub fn written_for(secret: &Secret, obj: &FhirClientApp) -> bool {
    (obj.metadata.uid.as_deref())
        .is_some_and(|uid| crate::controller::outputs::controlled_by(&secret.metadata, uid))
}

/// After the Secret is written: removes the client secrets no Secret holds, and the operator's
/// credentials of kinds the spec no longer uses (e.g. the client secrets after a switch to
/// Certificate), so no valid credential outlives its Secret.
pub async fn prune(
    graph: &GraphClient,
    app: &Application,
    kind: Option<CredentialType>,
    prepared: &Prepared,
    now: Timestamp,
) -> Result<(), Error> {
    let mut passwords = prepared.prune_after.clone();
    if kind != Some(CredentialType::ClientSecret) {
        passwords.extend(creds::to_prune(&listed_passwords(app), &[], None, now));
    }
    for key in &passwords {
        graph
            .remove_password(&app.id, key)
            .await
            .map_err(needs("remove a client secret", WRITE_APPS))?;
        tracing::info!(key_id = %key, "removed operator-owned client secret no Secret holds");
    }
    // keyCredentials can only be replaced whole, so they are cleared only when all are ours.
    let ours = |k: &crate::graph::types::KeyCredential| {
        k.display_name
            .as_deref()
            .is_some_and(|d| d.starts_with(crate::desired::naming::CREDENTIAL_NAME_PREFIX))
    };
    if kind != Some(CredentialType::Certificate)
        && !app.key_credentials.is_empty()
        && app.key_credentials.iter().all(ours)
    {
        graph
            .patch_application(&app.id, &cert::key_credentials_body(&[]))
            .await
            .map_err(needs("remove client certificates", WRITE_APPS))?;
    }
    Ok(())
}

fn listed_passwords(app: &Application) -> Vec<Listed> {
    app.password_credentials
        .iter()
        .map(|p| Listed {
            key_id: p.key_id.clone(),
            display_name: p.display_name.clone(),
            end: p.end(),
        })
        .collect()
}

/// The Event reason for a newly written credential: the first one, a replacement for a Secret a user
/// deleted or edited, or a rotation.
fn new_credential_reason(
    secret_exists: bool,
    secret_intact: bool,
    registered: bool,
) -> &'static str {
    match (secret_exists, secret_intact) {
        (false, _) if registered => "SecretRestored",
        (false, _) => "CredentialCreated",
        (true, false) => "SecretRestored",
        (true, true) => "CredentialRotated",
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Unix time `end` less `renew_before`: when the credential is renewed.
fn renew_at(end: Option<Timestamp>, rot: &Rotation) -> Option<i64> {
    let before = i64::try_from(rot.renew_before.as_secs()).unwrap_or(i64::MAX);
    end.map(|e| e.as_second().saturating_sub(before))
}

fn ts_add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// The Secret's data value `key` and the credential metadata its annotations record, if the value is
/// the one the operator wrote (its SHA-256 matches) — i.e. the Secret is intact.
fn read_intact(secret: Option<&Secret>, key: &str) -> Option<(Held, String)> {
    let s = secret?;
    let ann = s.metadata.annotations.as_ref()?;
    let value = String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()?;
    if ann.get(ANN_SECRET_SHA256)? != &sha256_hex(&value) {
        return None;
    }
    let parse = |k: &str| ann.get(k).and_then(|v| v.parse::<Timestamp>().ok());
    Some((
        Held {
            key_id: ann.get(ANN_KEY_ID)?.clone(),
            expires: parse(ANN_EXPIRES),
            written_at: parse(ANN_WRITTEN),
            previous_key_id: ann.get(ANN_PREV_KEY).cloned(),
            previous_until: parse(ANN_PREV_UNTIL),
        },
        value,
    ))
}

/// The annotations every credential records: which key, its value's hash, its expiry, and the
/// application that issued it.
fn held_annotations(
    key_id: &str,
    value: &str,
    expires: Option<Timestamp>,
    app: &Application,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (ANN_KEY_ID.to_string(), key_id.to_string()),
        (ANN_APP.to_string(), app.id.clone()),
        (ANN_SECRET_SHA256.to_string(), sha256_hex(value)),
    ]);
    if let Some(e) = expires {
        a.insert(ANN_EXPIRES.to_string(), e.to_string());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn secret_controlled_by(uid: &str, controller: bool) -> Secret {
        let mut s = Secret::default();
        s.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "fhirapps.io/v1alpha1".into(),
            kind: "FhirClientApp".into(),
            name: "etl".into(),
            uid: uid.into(),
            controller: Some(controller),
            ..Default::default()
        }]);
        s
    }

    #[test]
    fn only_a_secret_written_for_this_very_object_holds_its_credential() {
        let mut obj = FhirClientApp::new("etl", serde_json::from_value(serde_json::json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}}})).unwrap());
        obj.metadata.uid = Some("uid-now".into());
        assert!(written_for(&secret_controlled_by("uid-now", true), &obj));
        // Written for the FhirClientApp of this name before it was deleted and created again.
        assert!(!written_for(
            &secret_controlled_by("uid-before", true),
            &obj
        ));
        assert!(!written_for(&secret_controlled_by("uid-now", false), &obj));
        assert!(!written_for(&Secret::default(), &obj));
    }
}
