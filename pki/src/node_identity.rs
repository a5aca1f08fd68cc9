//! Node identities: an agent makes its own key and a certificate signing request; the
//! scheduler signs it once the agent proved itself with the join token. The private key
//! never leaves the node, and the CommonName is set by the signer, never taken from the
//! request, so an agent cannot claim another node's name.

use std::path::Path;

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
    let generate_error = |source| Error::Generate { what: format!("csr for node {node_id:?}"), source };
    let key = KeyPair::generate().map_err(generate_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate_error)?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, node_common_name(node_id));
    params.distinguished_name = subject;
    let csr = params.serialize_request(&key).map_err(generate_error)?;
    Ok((key.serialize_pem(), csr.pem().map_err(generate_error)?))
}

/// True when `ca_dir` holds the CA's key, i.e. this process can sign node certificates.
pub fn can_sign(ca_dir: &Path) -> bool {
    ca::exists(ca_dir) && ca_dir.join(crate::files::CA_KEY).is_file()
}

/// Signs `csr_pem` with the CA in `ca_dir` as a client certificate for `node_id`.
/// Whatever subject or SANs the request asks for are replaced.
pub fn sign_node_csr(ca_dir: &Path, csr_pem: &str, node_id: &str) -> Result<String, Error> {
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
    let _lock = pem_file::DirLock::acquire(ca_dir)?;
    let issuer = ca::load_issuer(ca_dir)?;
    Ok(csr.signed_by(&issuer).map_err(generate_error)?.pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_sign_needs_the_ca_key() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!can_sign(dir.path()));
        crate::ensure_dev_pki(dir.path(), &[]).unwrap();
        assert!(can_sign(dir.path()));
    }

    #[test]
    fn the_signer_sets_the_name() {
        let dir = tempfile::tempdir().unwrap();
        crate::ensure_dev_pki(dir.path(), &[]).unwrap();
        let (_key, csr) = node_csr("evil").unwrap();
        let cert = sign_node_csr(dir.path(), &csr, "gpu-01").unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let names = crate::inspect::common_name(&der).unwrap();
        assert_eq!(names, "node-gpu-01");
        assert_eq!(node_id_from_common_name(&names), Some("gpu-01"));
        assert_eq!(node_id_from_common_name("node-"), None);
        assert_eq!(node_id_from_common_name("replica-1"), None);
    }

    #[test]
    fn garbage_csr_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        crate::ensure_dev_pki(dir.path(), &[]).unwrap();
        assert!(sign_node_csr(dir.path(), "not a csr", "n").is_err());
    }
}
