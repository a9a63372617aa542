//! Signing keys, JWT encode/verify (RS256/PS256), thumbprints, TLS material.
use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha1::Digest as _;
use std::sync::OnceLock;

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}
pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}
/// Decode base64 in any of the usual alphabets, padded or not.
pub fn b64_any(s: &str) -> Option<Vec<u8>> {
    let t: String = s
        .trim()
        .trim_end_matches('=')
        .replace('-', "+")
        .replace('_', "/");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(t.as_bytes())
        .ok()
}
pub fn sha1(data: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(data).to_vec()
}
pub fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// The emulator's token-signing key with a self-signed certificate (published in JWKS `x5c`).
pub struct SigningKey {
    pub key: RsaPrivateKey,
    pub public: RsaPublicKey,
    pub cert_der: Vec<u8>,
    pub kid: String,
}

static PROCESS_KEY: OnceLock<RsaPrivateKey> = OnceLock::new();

/// Parses a PEM RSA private key (PKCS#8 or PKCS#1).
pub fn parse_private_key(pem: &str) -> anyhow::Result<RsaPrivateKey> {
    if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(k);
    }
    use rsa::pkcs1::DecodeRsaPrivateKey;
    RsaPrivateKey::from_pkcs1_pem(pem).context("not an RSA private key in PKCS#8 or PKCS#1 PEM")
}

impl SigningKey {
    pub fn new(pem: Option<&str>) -> anyhow::Result<Self> {
        let key = match pem {
            Some(p) => parse_private_key(p)?,
            None => PROCESS_KEY
                .get_or_init(|| {
                    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation")
                })
                .clone(),
        };
        let public = key.to_public_key();
        let pkcs8 = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)?;
        let kp = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| anyhow!("rcgen RSA key: {e}"))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "accounts.emulator.local");
        let cert = params.self_signed(&kp)?;
        let cert_der = cert.der().to_vec();
        let kid = b64url(&sha1(&cert_der));
        Ok(Self {
            key,
            public,
            cert_der,
            kid,
        })
    }

    pub fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": b64url(&self.public.n().to_bytes_be()), "e": b64url(&self.public.e().to_bytes_be()),
            "x5c": [b64(&self.cert_der)], "issuer": issuer,
        })
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid});
        sign_rs256(&self.key, &header, claims)
    }
}

pub fn sign_rs256(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sk = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let sig = sk.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64url(&sig))
}

pub fn sign_ps256(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    use rsa::signature::RandomizedSigner;
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sk = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key.clone());
    let sig = sk
        .sign_with_rng(&mut rand::thread_rng(), input.as_bytes())
        .to_bytes();
    format!("{input}.{}", b64url(&sig))
}

/// A JWT split into its parts, not yet verified.
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    pub fn parse(token: &str) -> anyhow::Result<Self> {
        let mut parts = token.trim().split('.');
        let (h, c, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(c), Some(s), None) => (h, c, s),
            _ => bail!("not a JWS compact token"),
        };
        let header: Value =
            serde_json::from_slice(&b64_any(h).ok_or_else(|| anyhow!("bad header"))?)?;
        let claims: Value =
            serde_json::from_slice(&b64_any(c).ok_or_else(|| anyhow!("bad payload"))?)?;
        let signature = b64_any(s).ok_or_else(|| anyhow!("bad signature encoding"))?;
        Ok(Self {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature,
        })
    }
    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }
    pub fn verify(&self, key: &RsaPublicKey) -> anyhow::Result<()> {
        match self.alg() {
            "RS256" => {
                let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone());
                let sig = rsa::pkcs1v15::Signature::try_from(self.signature.as_slice())?;
                vk.verify(self.signing_input.as_bytes(), &sig)?;
            }
            "PS256" => {
                let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(key.clone());
                let sig = rsa::pss::Signature::try_from(self.signature.as_slice())?;
                vk.verify(self.signing_input.as_bytes(), &sig)?;
            }
            other => bail!("unsupported alg '{other}'"),
        }
        Ok(())
    }
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }
}

/// RSA public key from a JWK (`n`, `e`), or from its `x5c[0]` certificate.
pub fn jwk_public_key(jwk: &Value) -> anyhow::Result<RsaPublicKey> {
    if let (Some(n), Some(e)) = (
        jwk.get("n").and_then(Value::as_str),
        jwk.get("e").and_then(Value::as_str),
    ) {
        let n = b64_any(n).ok_or_else(|| anyhow!("bad n"))?;
        let e = b64_any(e).ok_or_else(|| anyhow!("bad e"))?;
        return Ok(RsaPublicKey::new(
            BigUint::from_bytes_be(&n),
            BigUint::from_bytes_be(&e),
        )?);
    }
    if let Some(c) = jwk.pointer("/x5c/0").and_then(Value::as_str) {
        return cert_public_key(&b64_any(c).ok_or_else(|| anyhow!("bad x5c"))?);
    }
    bail!("JWK has no RSA key")
}

/// DER of the first certificate in a PEM string (or the input itself if it is base64 DER).
pub fn cert_der_from_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    if pem.contains("-----BEGIN") {
        let start = pem
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or_else(|| anyhow!("no CERTIFICATE block"))?;
        let rest = &pem[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = rest
            .find("-----END CERTIFICATE-----")
            .ok_or_else(|| anyhow!("unterminated PEM"))?;
        let b: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
        return b64_any(&b).ok_or_else(|| anyhow!("bad PEM base64"));
    }
    b64_any(pem).ok_or_else(|| anyhow!("bad base64 certificate"))
}

pub fn cert_public_key(der: &[u8]) -> anyhow::Result<RsaPublicKey> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| anyhow!("bad certificate: {e}"))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(RsaPublicKey::from_public_key_der(spki)?)
}

/// (notBefore, notAfter) as unix seconds.
pub fn cert_validity(der: &[u8]) -> anyhow::Result<(i64, i64)> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| anyhow!("bad certificate: {e}"))?;
    Ok((
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

/// The TLS material: a CA generated at start and a serving certificate it signs.
pub struct TlsMaterial {
    pub ca_pem: String,
    pub server_config: std::sync::Arc<rustls::ServerConfig>,
}

pub fn make_tls(extra_names: &[String]) -> anyhow::Result<TlsMaterial> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "entra-emulator local CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in extra_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let server_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "entra-emulator");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&server_key, &ca)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca.pem(),
        server_config: std::sync::Arc::new(cfg),
    })
}
