//! Node identities: an agent makes its own key and a certificate signing request; the
//! scheduler signs it once the agent proved itself with the join token. The private key
//! never leaves the node, and the CommonName is set by the signer, never taken from the
//! request, so an agent cannot claim another node's name.
//!
//! Node certificates are short-lived (the scheduler's `auth.node_cert_lifetime`) and
//! carry their issue time in the serial number, so a revocation can refuse exactly the
//! certificates issued before it.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::{Error, ca, pem_file};

/// CommonName prefix of node certificates: `node-{node id}`.
pub const NODE_CN_PREFIX: &str = "node-";

/// The CommonName a node's certificate carries.
pub fn node_common_name(node_id: &str) -> String {
    format!("{NODE_CN_PREFIX}{node_id}")
}

/// The node id in a peer CommonName, if it is a node certificate.
pub fn node_id_from_common_name(cn: &str) -> Option<&str> {
    cn.strip_prefix(NODE_CN_PREFIX).filter(|id| !id.is_empty())
}

/// A fresh key pair and a CSR for it: `(key_pem, csr_pem)`.
pub fn node_csr(node_id: &str) -> Result<(String, String), Error> {
    let generate_error = |source| Error::Generate { what: format!("key for node {node_id:?}"), source };
    let key = KeyPair::generate().map_err(generate_error)?.serialize_pem();
    let csr = node_csr_for_key(node_id, &key)?;
    Ok((key, csr))
}

/// A CSR for the node's existing key (`key_pem`): a join retried after a lost answer
/// asks again for the same key, which is how the scheduler recognises the retry.
pub fn node_csr_for_key(node_id: &str, key_pem: &str) -> Result<String, Error> {
    let generate_error = |source| Error::Generate { what: format!("csr for node {node_id:?}"), source };
    let key = KeyPair::from_pem(key_pem).map_err(generate_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate_error)?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, node_common_name(node_id));
    params.distinguished_name = subject;
    let csr = params.serialize_request(&key).map_err(generate_error)?;
    csr.pem().map_err(generate_error)
}

/// The public key a CSR asks a certificate for, as hex, once its signature is verified
/// (the requester holds the private key).
pub fn csr_public_key(csr_pem: &str) -> Result<String, Error> {
    use rcgen::PublicKeyData as _;
    let csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|source| Error::Generate { what: "csr".into(), source })?;
    Ok(csr.public_key.der_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

/// True when `ca_dir` holds the CA's key, i.e. this process can sign node certificates.
pub fn can_sign(ca_dir: &Path) -> bool {
    ca::exists(ca_dir) && ca_dir.join(crate::files::CA_KEY).is_file()
}

/// How far in the past a node certificate's validity starts, so a node whose clock runs
/// a little behind the signer's can use it at once.
pub const NOT_BEFORE_SKEW: Duration = Duration::from_secs(5 * 60);

/// First byte of the serial numbers this module writes: marks a serial that carries its
/// issue time (and keeps the DER integer positive without padding).
pub(crate) const SERIAL_TAG: u8 = 0x01;

/// Signs `csr_pem` with the CA in `ca_dir` as a client certificate for `node_id`,
/// issued at `issued_at_ms` (Unix milliseconds) and valid for `lifetime` from then
/// (from [`NOT_BEFORE_SKEW`] earlier, for clock skew). Whatever subject or SANs the
/// request asks for are replaced.
///
/// The serial number carries `issued_at_ms` exactly (see
/// [`crate::NodeCertificate::issued_at_ms`]): a revocation refuses the certificates of
/// a node issued before a given millisecond, which validity times (whole seconds, moved
/// back by the skew) could not tell apart.
pub fn sign_node_csr(
    ca_dir: &Path,
    csr_pem: &str,
    node_id: &str,
    issued_at_ms: u64,
    lifetime: Duration,
) -> Result<String, Error> {
    let issued = Duration::from_millis(issued_at_ms);
    let not_before = issued.saturating_sub(NOT_BEFORE_SKEW);
    sign_with_validity(ca_dir, csr_pem, node_id, issued, not_before, issued.saturating_add(lifetime))
}

/// [`sign_node_csr`] with explicit validity bounds (durations since the Unix epoch),
/// issued at `not_before`. For tests and tools that need a certificate which is already
/// expired or not yet valid; the scheduler signs with [`sign_node_csr`].
pub fn sign_node_csr_with_validity(
    ca_dir: &Path,
    csr_pem: &str,
    node_id: &str,
    not_before: Duration,
    not_after: Duration,
) -> Result<String, Error> {
    sign_with_validity(ca_dir, csr_pem, node_id, not_before, not_before, not_after)
}

fn sign_with_validity(
    ca_dir: &Path,
    csr_pem: &str,
    node_id: &str,
    issued: Duration,
    not_before: Duration,
    not_after: Duration,
) -> Result<String, Error> {
    let generate_error = |source| Error::Generate { what: format!("certificate for node {node_id:?}"), source };
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(generate_error)?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, node_common_name(node_id));
    let params = &mut csr.params;
    params.distinguished_name = subject;
    params.subject_alt_names.clear();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = unix_time(not_before);
    params.not_after = unix_time(not_after);
    params.serial_number = Some(serial(issued).into());
    let _lock = pem_file::DirLock::acquire(ca_dir)?;
    let issuer = ca::load_issuer(ca_dir)?;
    Ok(csr.signed_by(&issuer).map_err(generate_error)?.pem())
}

/// `SERIAL_TAG`, the issue time in milliseconds (8 bytes, big endian), 8 random bytes:
/// 17 bytes, within RFC 5280's 20, and unique even for two certificates issued in the
/// same millisecond.
fn serial(issued: Duration) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.push(SERIAL_TAG);
    out.extend_from_slice(&(issued.as_millis() as u64).to_be_bytes());
    out.extend_from_slice(&rand::random::<u64>().to_be_bytes());
    out
}

fn unix_time(since_epoch: Duration) -> time::OffsetDateTime {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_sign_needs_the_ca_key() {
        let dir = tempfile::tempdir().expect("test pki");
        assert!(!can_sign(dir.path()));
        crate::ensure_dev_pki(dir.path(), &[]).expect("test pki");
        assert!(can_sign(dir.path()));
    }

    #[test]
    fn the_signer_sets_the_name() {
        let dir = tempfile::tempdir().expect("test pki");
        crate::ensure_dev_pki(dir.path(), &[]).expect("test pki");
        let (_key, csr) = node_csr("evil").expect("test pki");
        let cert =
            sign_node_csr(dir.path(), &csr, "gpu-01", 1_700_000_000_123, Duration::from_secs(3600)).expect("test pki");
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).expect("test pki");
        let names = crate::inspect::common_name(&der).expect("test pki");
        assert_eq!(names, "node-gpu-01");
        assert_eq!(node_id_from_common_name(&names), Some("gpu-01"));
        assert_eq!(node_id_from_common_name("node-"), None);
        assert_eq!(node_id_from_common_name("replica-1"), None);
    }

    #[test]
    fn a_csr_for_the_same_key_names_the_same_public_key() {
        let (key, csr) = node_csr("gpu-01").unwrap();
        let again = node_csr_for_key("gpu-01", &key).unwrap();
        assert_eq!(csr_public_key(&csr).unwrap(), csr_public_key(&again).unwrap());
        let (_, other) = node_csr("gpu-01").unwrap();
        assert_ne!(csr_public_key(&csr).unwrap(), csr_public_key(&other).unwrap());
        assert!(csr_public_key("not a csr").is_err());
    }

    #[test]
    fn garbage_csr_is_an_error() {
        let dir = tempfile::tempdir().expect("test pki");
        crate::ensure_dev_pki(dir.path(), &[]).expect("test pki");
        assert!(sign_node_csr(dir.path(), "not a csr", "n", 0, Duration::from_secs(1)).is_err());
    }
}
