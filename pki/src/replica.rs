//! Replica identities: the only certificates the Raft peer port accepts.
//!
//! A replica certificate carries two marks that no other certificate of the
//! PKI gets: the CommonName `replica-{id}` and the SAN URI
//! `urn:gantry:replica:{id}`, with the same id. Node certificates are signed
//! from a CSR whose subject and SANs the signer replaces (see
//! [`crate::sign_node_csr`]), so an agent cannot ask for either mark; and
//! [`crate::issue_leaf`] never adds a URI. Requiring both, in agreement, means
//! a certificate made by hand with a look-alike CommonName is still refused.
//!
//! ```text
//!   gantryctl pki issue replica --id 2 --host sched-2
//!        └─▶ replica-2.pem: CN replica-2, SAN sched-2 + urn:gantry:replica:2
//!   peer port: peer_certificate(&req) ─▶ Replica(2) ─▶ member? ─▶ serve
//!                                     └▶ Other / None ──────────▶ PermissionDenied
//! ```

use std::fmt;
use std::path::Path;

use crate::{Error, TlsFiles, ca, inspect, leaf, pem_file};

/// CommonName prefix of replica certificates: `replica-{id}`.
pub const REPLICA_CN_PREFIX: &str = "replica-";
/// SAN URI prefix of replica certificates: `urn:gantry:replica:{id}`.
pub const REPLICA_URI_PREFIX: &str = "urn:gantry:replica:";

/// The CommonName of replica `id`'s certificate (also its file stem).
pub fn replica_common_name(id: u64) -> String {
    format!("{REPLICA_CN_PREFIX}{id}")
}

/// The SAN URI that marks replica `id`'s certificate.
pub fn replica_uri(id: u64) -> String {
    format!("{REPLICA_URI_PREFIX}{id}")
}

/// Issues replica `id`'s certificate, signed by the CA in `ca_dir`, valid as a
/// server for `hosts` (DNS names or IP addresses: every name peers, agents and
/// the CLI dial it by) and as a client towards the other replicas. Writes
/// `<out_dir>/replica-{id}.pem` and `<out_dir>/replica-{id}-key.pem` (0600),
/// replacing a previous pair.
pub fn issue_replica(ca_dir: &Path, out_dir: &Path, id: u64, hosts: &[String]) -> Result<TlsFiles, Error> {
    if id == 0 {
        return Err(Error::InvalidReplicaId);
    }
    pem_file::create_dir(out_dir)?;
    let _lock = pem_file::DirLock::acquire(ca_dir)?;
    let issuer = ca::load_issuer(ca_dir)?;
    let name = replica_common_name(id);
    let files = TlsFiles::leaf(ca_dir, out_dir, &name);
    leaf::write(&issuer, &files, &name, hosts, Some(&replica_uri(id)))?;
    Ok(files)
}

/// The replica id a DER certificate was issued to, if it is a replica
/// certificate: CommonName `replica-{id}` and exactly one replica SAN URI,
/// naming the same id (in canonical decimal, greater than 0).
pub fn replica_id_of(der: &[u8]) -> Option<u64> {
    let cn = inspect::common_name(der)?;
    let from_cn = parse_id(cn.strip_prefix(REPLICA_CN_PREFIX)?)?;
    let uris = inspect::uri_sans(der)?;
    let mut marks = uris.iter().filter_map(|u| u.strip_prefix(REPLICA_URI_PREFIX));
    let from_uri = parse_id(marks.next()?)?;
    // Two replica marks would let one certificate speak for two replicas.
    if marks.next().is_some() || from_uri != from_cn {
        return None;
    }
    Some(from_cn)
}

/// A decimal id as [`replica_common_name`] writes it: no sign, no leading
/// zero, not 0.
fn parse_id(text: &str) -> Option<u64> {
    let id: u64 = text.parse().ok()?;
    (id != 0 && id.to_string() == text).then_some(id)
}

/// What the verified client certificate of a connection says about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCertificate {
    /// No certificate: plain TCP, or a TLS client that presented none.
    None,
    /// A replica certificate (see [`replica_id_of`]) for this id.
    Replica(u64),
    /// Any other certificate of the CA: a node's, a client's, a dev leaf.
    Other { common_name: Option<String> },
}

impl fmt::Display for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerCertificate::None => f.write_str("no client certificate"),
            PeerCertificate::Replica(id) => write!(f, "the replica certificate of replica {id}"),
            PeerCertificate::Other { common_name: Some(cn) } => {
                write!(f, "certificate '{cn}', which is not a replica certificate")
            }
            PeerCertificate::Other { common_name: None } => {
                f.write_str("a certificate without a CommonName, which is not a replica certificate")
            }
        }
    }
}

/// Classifies the client certificate on the connection that carried `req`.
/// The certificate was verified against the server's CA during the handshake
/// ([`crate::server_tls`]), so the answer is authenticated.
pub fn peer_certificate<T>(req: &tonic::Request<T>) -> PeerCertificate {
    let Some(certs) = req.peer_certs() else { return PeerCertificate::None };
    // The end-entity certificate comes first; the rest is its chain.
    let Some(leaf) = certs.first() else { return PeerCertificate::None };
    match replica_id_of(leaf) {
        Some(id) => PeerCertificate::Replica(id),
        None => PeerCertificate::Other { common_name: inspect::common_name(leaf) },
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    fn der(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    #[test]
    fn a_replica_certificate_names_its_id() {
        let dir = tempfile::tempdir().unwrap();
        crate::init_ca(dir.path(), false).unwrap();
        let files = issue_replica(dir.path(), &dir.path().join("out"), 7, &["sched-7".into()]).unwrap();
        assert_eq!(files.cert, dir.path().join("out/replica-7.pem"));
        assert_eq!(replica_id_of(&der(&files.cert)), Some(7));
        let sans = inspect::subject_alt_names(&der(&files.cert)).unwrap();
        assert_eq!(sans, ["sched-7"]);
    }

    #[test]
    fn other_certificates_are_not_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let dev = crate::ensure_dev_pki(dir.path(), &[]).unwrap();
        assert_eq!(replica_id_of(&der(&dev.cert)), None);
        // A look-alike CommonName without the SAN URI is not enough.
        let lookalike = crate::issue_leaf(dir.path(), dir.path(), "replica-1", &[]).unwrap();
        assert_eq!(replica_id_of(&der(&lookalike.cert)), None);
        // Nor is a node certificate, whatever its CSR asked for.
        let (_key, csr) = crate::node_csr("replica-1").unwrap();
        let node = crate::sign_node_csr(
            dir.path(),
            &csr,
            "replica-1",
            1_700_000_000_000,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let node = CertificateDer::from_pem_slice(node.as_bytes()).unwrap();
        assert_eq!(replica_id_of(&node), None);
    }

    #[test]
    fn ids_are_canonical() {
        for bad in ["0", "01", "+1", "-1", "", "1 ", "x"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
        assert_eq!(parse_id("12"), Some(12));
        let dir = tempfile::tempdir().unwrap();
        crate::init_ca(dir.path(), false).unwrap();
        assert!(matches!(issue_replica(dir.path(), dir.path(), 0, &[]), Err(Error::InvalidReplicaId)));
    }
}
