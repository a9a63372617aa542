//! A client certificate: the operator issues a self-signed RSA certificate, registers it in
//! `keyCredentials` (Graph first, then the Secret: pods never mount a certificate Entra does not
//! know, and a key left by a crash in between is removed by the next PATCH, which is built from the
//! Secret), and keeps the previous one registered for the overlap.

use kube::ResourceExt;

use super::super::app_policy::{check, refused};
use super::{
    ANN_PREV_KEY, ANN_PREV_UNTIL, ANN_WRITTEN, Inputs, Issued, Prepared, held_annotations,
    new_credential_reason, read_intact, renew_at, ts_add,
};
use crate::api::{CredentialStatus, CredentialType};
use crate::controller::Error;
use crate::controller::application::WRITE_APPS;
use crate::desired::app_policy;
use crate::desired::certificate as cert;
use crate::desired::client::CertificateFiles;
use crate::desired::credentials::{self as creds, Held};

/// What an intact output Secret holds for a Certificate credential: the held key's metadata and its
/// files (key + certificate from the bundle, the previous certificate if any).
fn read_held(
    secret: Option<&k8s_openapi::api::core::v1::Secret>,
) -> Option<(Held, CertificateFiles)> {
    let (held, bundle) = read_intact(secret, cert::BUNDLE_KEY)?;
    let split = bundle.find("-----BEGIN CERTIFICATE-----")?;
    let (key_pem, cert_pem) = bundle.split_at(split);
    let previous_cert_pem = secret?
        .data
        .as_ref()?
        .get(cert::PREVIOUS_CERT_KEY)
        .and_then(|v| String::from_utf8(v.0.clone()).ok());
    Some((
        held,
        CertificateFiles {
            key_pem: key_pem.to_string(),
            cert_pem: cert_pem.to_string(),
            previous_cert_pem,
            bundle,
        },
    ))
}

/// The certificate the Secret will hold: the held one while it is not due for renewal, else a new
/// one (the replaced one stays registered for the overlap, not past its own expiry).
struct Current {
    key_id: String,
    end: Option<jiff::Timestamp>,
    files: CertificateFiles,
    previous: Option<(String, jiff::Timestamp)>,
    written_at: jiff::Timestamp,
    issued: Option<Issued>,
}

fn current(i: &Inputs<'_>) -> Result<Current, Error> {
    let (now, rot) = (i.now, &i.rotation);
    let held = read_held(i.existing);
    let keep = held.as_ref().is_some_and(|(h, _)| {
        h.expires.is_none_or(|e| ts_add(now, rot.renew_before) < e)
            && !app_policy::outlives_cap(h.expires, rot, now)
    });
    match held {
        Some((h, files)) if keep => Ok(Current {
            previous: h
                .previous_key_id
                .clone()
                .zip(h.previous_until)
                .filter(|(_, until)| now < *until),
            key_id: h.key_id,
            end: h.expires,
            files,
            written_at: h.written_at.unwrap_or(now),
            issued: None,
        }),
        held => {
            check(i.policy, CredentialType::Certificate)?;
            let ns = i.obj.namespace().unwrap_or_default();
            let issued = cert::issue(&format!("{ns}/{}", i.obj.name_any()), rot.validity, now)
                .map_err(Error::Certificate)?;
            let key_id = uuid::Uuid::new_v4().to_string();
            let previous = held.as_ref().map(|(h, _)| {
                let until = ts_add(now, rot.overlap);
                (h.key_id.clone(), h.expires.map_or(until, |e| e.min(until)))
            });
            let reason =
                new_credential_reason(i.existing.is_some(), held.is_some(), i.registered_before);
            Ok(Current {
                issued: Some(Issued {
                    what: "client certificate",
                    key_id: key_id.clone(),
                    reason,
                    undo_on_failure: false,
                }),
                key_id,
                end: Some(issued.not_after),
                files: CertificateFiles {
                    bundle: issued.bundle(),
                    cert_pem: issued.cert_pem,
                    key_pem: issued.key_pem,
                    previous_cert_pem: held.map(|(_, f)| f.cert_pem),
                },
                previous,
                written_at: now,
            })
        }
    }
}

pub async fn prepare(i: &Inputs<'_>) -> Result<Prepared, Error> {
    let now = i.now;
    let ns = i.obj.namespace().unwrap_or_default();
    let display = creds::credential_name(&ns, i.secret_name);
    let Current {
        key_id,
        end,
        mut files,
        previous,
        written_at,
        issued,
    } = current(i)?;
    let mut want = vec![cert::Registered {
        key_id: key_id.clone(),
        der: cert::cert_der(&files.cert_pem)
            .ok_or_else(|| Error::Certificate("the held certificate is not PEM".into()))?,
        display_name: display.clone(),
    }];
    let mut annotations = held_annotations(&key_id, &files.bundle, end, i.app);
    annotations.insert(ANN_WRITTEN.to_string(), written_at.to_string());
    match (
        &previous,
        files.previous_cert_pem.as_deref().and_then(cert::cert_der),
    ) {
        (Some((prev_key, until)), Some(der)) if now < *until => {
            want.push(cert::Registered {
                key_id: prev_key.clone(),
                der,
                display_name: display,
            });
            annotations.insert(ANN_PREV_KEY.to_string(), prev_key.clone());
            annotations.insert(ANN_PREV_UNTIL.to_string(), until.to_string());
        }
        _ => files.previous_cert_pem = None,
    }
    let listed: Vec<String> = i
        .app
        .key_credentials
        .iter()
        .map(|k| k.key_id.clone())
        .collect();
    if cert::needs_patch(&listed, &want)
        && let Err(e) = (i.graph)
            .patch_application(&i.app.id, &cert::key_credentials_body(&want))
            .await
    {
        let (kind, action) = (
            CredentialType::Certificate,
            "register the client certificate",
        );
        return Err(refused(i.ctx, i.graph, kind, e, action, WRITE_APPS).await);
    }
    Ok(Prepared {
        next_check: creds::next_check(
            end,
            want.get(1).and(previous.map(|p| p.1)),
            &i.rotation,
            now,
        ),
        status: Some(CredentialStatus {
            r#type: "Certificate".into(),
            key_id: Some(key_id),
            expires_at: end.map(|e| e.to_string()),
        }),
        expires: end.map(|e| e.as_second()),
        renew_at: renew_at(end, &i.rotation),
        certificate: Some(files),
        annotations,
        issued,
        ..Default::default()
    })
}
