//! Certificates and keys for a throw-away control plane: one CA for serving and client
//! certificates, and an RSA service-account signing key (RSA because Entra ID verifies
//! federated Kubernetes tokens signed with RS256).

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Writes `ca.crt`, `apiserver.{crt,key}`, `admin.{crt,key}`, `controller-manager.{crt,key}`
/// and `sa.{key,pub}` into `dir`.
pub fn generate(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = dn("kube-local CA", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    write(dir, "ca.crt", &ca.pem())?;

    let mut serving = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    serving.distinguished_name = dn("kube-apiserver", None);
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    write(dir, "apiserver.crt", &serving.signed_by(&key, &ca)?.pem())?;
    write(dir, "apiserver.key", &key.serialize_pem())?;

    let (admin_cert_pem, admin_key_pem) = client_cert(&ca, "kube-local-admin", "system:masters")?;
    write(dir, "admin.crt", &admin_cert_pem)?;
    write(dir, "admin.key", &admin_key_pem)?;
    // The controller manager is test infrastructure, not under test: give it full rights.
    let (kcm_cert, kcm_key) = client_cert(&ca, "system:kube-controller-manager", "system:masters")?;
    write(dir, "controller-manager.crt", &kcm_cert)?;
    write(dir, "controller-manager.key", &kcm_key)?;

    let sa_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    write(dir, "sa.key", &sa_key.to_pkcs8_pem(LineEnding::LF)?)?;
    write(
        dir,
        "sa.pub",
        &sa_key.to_public_key().to_public_key_pem(LineEnding::LF)?,
    )?;
    Ok(())
}

fn client_cert(
    ca: &CertifiedIssuer<'_, KeyPair>,
    user: &str,
    group: &str,
) -> Result<(String, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(user, Some(group));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    Ok((params.signed_by(&key, ca)?.pem(), key.serialize_pem()))
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(name))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}
