//! Certificate credentials for client apps: a self-signed certificate whose private key never leaves
//! the output Secret, and the `keyCredentials` collection Graph should hold for it.
//!
//! Graph replaces `keyCredentials` whole on PATCH and never returns the `key` of an existing entry,
//! so the desired collection is built only from certificates the operator holds (the current one,
//! and the previous one during its overlap). Anything else on the application is removed by that
//! PATCH, which is how a key left by a crash is pruned.

use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Output Secret key holding the private key and the certificate (PEM), the file the Azure SDKs read
/// from `AZURE_CLIENT_CERTIFICATE_PATH`.
pub const BUNDLE_KEY: &str = "client-certificate.pem";
/// Output Secret keys of the same pair in the `kubernetes.io/tls` layout.
pub const CERT_KEY: &str = "tls.crt";
pub const PRIVATE_KEY_KEY: &str = "tls.key";
/// Output Secret key of the previous certificate (public part only) while it overlaps.
pub const PREVIOUS_CERT_KEY: &str = "previous-tls.crt";
/// Where `AZURE_CLIENT_CERTIFICATE_PATH` points: mount the output Secret at this directory.
pub const DEFAULT_MOUNT_DIR: &str = "/var/run/secrets/fhirapps.io/client";

/// A freshly issued certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    /// PKCS#8 PEM. Never log it.
    pub key_pem: String,
    pub not_after: Timestamp,
}

impl Issued {
    /// Key and certificate in one PEM file (key first, as `openssl pkcs12 -nodes` writes it).
    pub fn bundle(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

/// Issues a self-signed RSA-2048 certificate (Entra ID accepts RSA keys for client assertions) for
/// `common_name`, valid from a minute ago (clock skew) for `validity`.
pub fn issue(common_name: &str, validity: Duration, now: Timestamp) -> Result<Issued, String> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(|e| format!("RSA key generation: {e}"))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("encoding the private key: {e}"))?
        .to_string();
    let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("loading the private key: {e}"))?;
    let not_before = now - jiff::SignedDuration::from_secs(60);
    let not_after = now
        .checked_add(jiff::SignedDuration::try_from(validity).map_err(|e| e.to_string())?)
        .map_err(|e| format!("certificate validity: {e}"))?
        .round(jiff::Unit::Second)
        .map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("certificate parameters: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.not_before = to_offset(not_before)?;
    params.not_after = to_offset(not_after)?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(
        uuid::Uuid::new_v4().as_bytes(),
    ));
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem,
        not_after,
    })
}

fn to_offset(t: Timestamp) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second())
        .map_err(|e| format!("certificate time: {e}"))
}

/// The DER of the first certificate in a PEM text.
pub fn cert_der(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// A certificate the operator holds and wants registered on the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub key_id: String,
    pub der: Vec<u8>,
    pub display_name: String,
}

/// The `keyCredentials` PATCH body for exactly `certs`.
pub fn key_credentials_body(certs: &[Registered]) -> Value {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct KeyCredential<'a> {
        key_id: &'a str,
        r#type: &'static str,
        usage: &'static str,
        key: String,
        display_name: &'a str,
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let list: Vec<KeyCredential<'_>> = (certs.iter())
        .map(|c| KeyCredential {
            key_id: &c.key_id,
            r#type: "AsymmetricX509Cert",
            usage: "Verify",
            key: b64.encode(&c.der),
            display_name: &c.display_name,
        })
        .collect();
    json!({ "keyCredentials": list })
}

/// Whether the application's key IDs differ from the ones the operator wants there.
pub fn needs_patch(listed_key_ids: &[String], want: &[Registered]) -> bool {
    let mut have: Vec<&str> = listed_key_ids.iter().map(String::as_str).collect();
    let mut want: Vec<&str> = want.iter().map(|c| c.key_id.as_str()).collect();
    have.sort_unstable();
    want.sort_unstable();
    have != want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificate_is_rsa_self_signed_with_the_requested_lifetime() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = issue("ns/etl", Duration::from_secs(3600), now).unwrap();
        assert_eq!(c.not_after.to_string(), "2026-01-01T01:00:00Z");
        assert!(c.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let der = cert_der(&c.bundle()).expect("certificate in the bundle");
        // The operator's own certificate loader (the AZURE_CLIENT_CERTIFICATE_PATH format) accepts it.
        crate::graph::assertion::CertificateCredential::from_pem(c.bundle().as_bytes()).unwrap();
        let body = key_credentials_body(&[Registered {
            key_id: "k1".into(),
            der: der.clone(),
            display_name: "d".into(),
        }]);
        let key = body["keyCredentials"][0]["key"].as_str().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap(),
            der
        );
    }

    #[test]
    fn patch_only_when_the_key_sets_differ() {
        let r = |k: &str| Registered {
            key_id: k.into(),
            der: vec![],
            display_name: String::new(),
        };
        assert!(!needs_patch(&["b".into(), "a".into()], &[r("a"), r("b")]));
        assert!(needs_patch(&["a".into()], &[r("a"), r("b")]));
        assert!(needs_patch(&["a".into(), "x".into()], &[r("a")]));
        assert!(needs_patch(&[], &[r("a")]));
    }
}
