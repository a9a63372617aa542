//! A client secret (password credential): kept while the Secret holds an intact, live one that is
//! not due for renewal; otherwise a new one is added, the old one kept for the overlap.

use kube::ResourceExt;

use super::super::app_policy;
use super::{
    ANN_APP, ANN_PREV_KEY, ANN_PREV_UNTIL, ANN_WRITTEN, Inputs, Issued, Prepared, held_annotations,
    listed_passwords, new_credential_reason, read_intact, renew_at, ts_add,
};
use crate::api::{CredentialStatus, CredentialType};
use crate::controller::Error;
use crate::controller::application::WRITE_APPS;
use crate::desired::credentials::{self as creds, Held};
use crate::graph::GraphError;
use crate::graph::types::PasswordCredential;

/// What an intact output Secret holds: (held, secret value). `None` if absent, edited, incomplete,
/// or issued by another application than `app_object_id` (one deleted out of band and re-created:
/// its passwords died with it). A Secret written before the annotation existed counts as this one's.
fn read_held(
    secret: Option<&k8s_openapi::api::core::v1::Secret>,
    app_object_id: &str,
) -> Option<(Held, String)> {
    let issued_by = secret?.metadata.annotations.as_ref()?.get(ANN_APP);
    if issued_by.is_some_and(|a| a != app_object_id) {
        return None;
    }
    read_intact(secret, "AZURE_CLIENT_SECRET")
}

pub async fn prepare(i: &Inputs<'_>) -> Result<Prepared, Error> {
    let (now, rot) = (i.now, &i.rotation);
    let listed = listed_passwords(i.app);
    // A restored application's passwords were all removed (controller/restore.rs): a Secret left
    // from before the deletion (not yet garbage-collected) holds a dead one, however fresh.
    let held = read_held(i.existing, &i.app.id).filter(|_| !i.restored);
    let mut issued = None;
    let (key_id, end, value, prev, written_at) =
        if creds::keep_current(held.as_ref().map(|h| &h.0), &listed, rot, now) {
            let (h, v) = held.expect("keep_current implies held");
            // The expiry recorded when the key was created: Graph returns it with 7 fractional
            // digits on create and whole seconds later, so re-reading it would make every resync
            // rewrite the Secret and the status.
            let end = h.expires.or_else(|| {
                listed
                    .iter()
                    .find(|l| l.key_id == h.key_id)
                    .and_then(|l| l.end)
            });
            let prev = h.previous_key_id.clone().zip(h.previous_until);
            (h.key_id, end, v, prev, h.written_at.unwrap_or(now))
        } else {
            app_policy::check(i.policy, CredentialType::ClientSecret)?;
            let ns = i.obj.namespace().unwrap_or_default();
            let display = creds::credential_name(&ns, i.secret_name);
            let added = i
                .graph
                .add_password(&i.app.id, &display, ts_add(now, rot.validity))
                .await;
            let created: PasswordCredential = match added {
                Ok(c) => c,
                Err(e) => {
                    let kind = CredentialType::ClientSecret;
                    let action = "add a client secret";
                    return Err(
                        app_policy::refused(i.ctx, i.graph, kind, e, action, WRITE_APPS).await,
                    );
                }
            };
            let value = created
                .secret_text
                .clone()
                .ok_or_else(|| GraphError::Decode("addPassword returned no secretText".into()))?;
            // Keep the previous key valid for the overlap when it still exists and was a rotation.
            let prev = held
                .as_ref()
                .filter(|(h, _)| listed.iter().any(|l| l.key_id == h.key_id))
                .map(|(h, _)| (h.key_id.clone(), ts_add(now, rot.overlap)));
            issued = Some(Issued {
                what: "client secret",
                key_id: created.key_id.clone(),
                reason: new_credential_reason(
                    i.existing.is_some(),
                    held.is_some(),
                    i.registered_before,
                ),
                undo_on_failure: true,
            });
            (created.key_id.clone(), created.end(), value, prev, now)
        };
    let mut annotations = held_annotations(&key_id, &value, end, i.app);
    annotations.insert(ANN_WRITTEN.to_string(), written_at.to_string());
    if let Some((k, until)) = &prev
        && now < *until
    {
        annotations.insert(ANN_PREV_KEY.to_string(), k.clone());
        annotations.insert(ANN_PREV_UNTIL.to_string(), until.to_string());
    }
    let prev_ref = prev.as_ref().map(|(k, u)| (k.as_str(), *u));
    // Kept but not listed (written moments ago): looked at again once the grace ends.
    let kept_unlisted = issued
        .is_none()
        .then(|| creds::grace_ends(&key_id, written_at, &listed))
        .flatten();
    let prev_until = prev.as_ref().map(|p| p.1).filter(|u| now < *u);
    let recheck = [prev_until, kept_unlisted].into_iter().flatten().min();
    Ok(Prepared {
        client_secret: Some(value),
        annotations,
        issued,
        prune_after: creds::to_prune(&listed, &[key_id.as_str()], prev_ref, now),
        next_check: creds::next_check(end, recheck, rot, now),
        status: Some(CredentialStatus {
            r#type: "ClientSecret".into(),
            key_id: Some(key_id),
            expires_at: end.map(|e| e.to_string()),
        }),
        expires: end.map(|e| e.as_second()),
        renew_at: renew_at(end, rot),
        ..Default::default()
    })
}
