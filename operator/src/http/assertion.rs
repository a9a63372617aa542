//! Certificate credential: a `client_assertion` JWT (RS256, `x5t` = SHA-1 thumbprint) signed with the
//! operator's private key, as the Microsoft identity platform expects. One RS256 signature over ring,
//! which is already the TLS provider, instead of jsonwebtoken, which would bring a second PEM and
//! ASN.1 stack for it.

use std::sync::Arc;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

/// A certificate and its RSA private key.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaKeyPair>,
    /// base64url SHA-1 thumbprint of the certificate (DER)
    x5t: String,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertificateCredential {{ x5t: {} }}", self.x5t)
    }
}

impl CertificateCredential {
    /// From a PEM bundle holding the certificate and its RSA private key (PKCS#8 or PKCS#1), the
    /// format of `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cert = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or("no CERTIFICATE in the PEM bundle")?
            .map_err(|e| format!("certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("private key: {e}"))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err("the private key must be RSA (PKCS#8 or PKCS#1)".into()),
        }
        .map_err(|e| format!("private key: {e}"))?;
        let thumb = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        Ok(Self {
            key: Arc::new(key),
            x5t: b64(thumb.as_ref()),
        })
    }

    /// A signed assertion for `client_id` at `token_endpoint`, valid 10 minutes from `now` (unix seconds).
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: i64,
    ) -> Result<String, String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = json!({
            "aud": token_endpoint, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bundles_without_certificate_or_key() {
        assert!(
            CertificateCredential::from_pem(b"")
                .unwrap_err()
                .contains("CERTIFICATE")
        );
        let only_cert =
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUXx\n-----END CERTIFICATE-----\n";
        assert!(CertificateCredential::from_pem(only_cert).is_err());
    }
}
