//! Reading a node certificate back: whose it is, when it was issued, how long it is
//! valid. The scheduler needs the issue time to apply revocations; the agent needs the
//! validity to know when to renew.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::node_identity::{SERIAL_TAG, node_id_from_common_name};

/// What Gantry reads from a node's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertificate {
    /// From the CommonName `node-{id}`.
    pub node_id: String,
    /// When the certificate was issued (Unix milliseconds): exact for certificates from
    /// [`crate::sign_node_csr`] (it is in the serial number); for certificates issued
    /// out of band, the start of their validity.
    pub issued_at_ms: u64,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

impl NodeCertificate {
    /// Parses a DER certificate; `None` if it does not parse or is not a node's.
    pub fn from_der(der: &[u8]) -> Option<NodeCertificate> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
        let node_id = node_id_from_common_name(cn)?.to_string();
        let millis = |t: i64| u64::try_from(t).unwrap_or(0).saturating_mul(1000);
        let not_before_ms = millis(cert.validity().not_before.timestamp());
        let not_after_ms = millis(cert.validity().not_after.timestamp());
        let issued_at_ms = issued_at_from_serial(cert.raw_serial()).unwrap_or(not_before_ms);
        Some(NodeCertificate { node_id, issued_at_ms, not_before_ms, not_after_ms })
    }

    /// The first certificate of a PEM text (the leaf of a chain).
    pub fn from_pem(pem: &str) -> Option<NodeCertificate> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
        Self::from_der(&der)
    }

    /// The node certificate of the client behind `req`, verified by the server's TLS
    /// configuration (see [`crate::peer_common_name`]).
    pub fn of_peer<T>(req: &tonic::Request<T>) -> Option<NodeCertificate> {
        let certs = req.peer_certs()?;
        Self::from_der(certs.first()?)
    }
}

/// The issue time [`crate::sign_node_csr`] writes into the serial number.
fn issued_at_from_serial(raw: &[u8]) -> Option<u64> {
    match raw {
        [SERIAL_TAG, rest @ ..] if rest.len() == 16 => {
            let millis: [u8; 8] = rest[..8].try_into().ok()?;
            Some(u64::from_be_bytes(millis))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_issue_time_and_validity_are_read_back() {
        let dir = tempfile::tempdir().expect("test pki");
        crate::ensure_dev_pki(dir.path(), &[]).expect("test pki");
        let (_key, csr) = crate::node_csr("gpu-01").expect("test pki");
        let issued = 1_700_000_000_123;
        let pem =
            crate::sign_node_csr(dir.path(), &csr, "gpu-01", issued, Duration::from_secs(3600)).expect("test pki");
        let cert = NodeCertificate::from_pem(&pem).expect("test pki");
        assert_eq!(cert.node_id, "gpu-01");
        assert_eq!(cert.issued_at_ms, issued);
        // Whole seconds; the start moved back for clock skew.
        assert_eq!(cert.not_before_ms, 1_700_000_000_000 - crate::NOT_BEFORE_SKEW.as_millis() as u64);
        assert_eq!(cert.not_after_ms, 1_700_003_600_000);
    }

    #[test]
    fn a_certificate_without_a_time_serial_falls_back_to_its_start() {
        let dir = tempfile::tempdir().expect("test pki");
        let files = crate::issue_leaf(dir.path(), dir.path(), "node-x", &[]);
        // issue_leaf needs a CA: make one first.
        assert!(files.is_err());
        crate::ensure_dev_pki(dir.path(), &[]).expect("test pki");
        let files = crate::issue_leaf(dir.path(), dir.path(), "node-x", &[]).expect("test pki");
        let pem = std::fs::read_to_string(files.cert).expect("test pki");
        let cert = NodeCertificate::from_pem(&pem).expect("test pki");
        assert_eq!(cert.node_id, "x");
        assert_eq!(cert.issued_at_ms, cert.not_before_ms);
        assert_eq!(issued_at_from_serial(&[SERIAL_TAG, 1, 2]), None);
        assert_eq!(NodeCertificate::from_pem("garbage"), None);
    }
}
