//! Certificates and TLS configuration for every Gantry process.
//!
//! Schedulers, agents and the CLI talk gRPC over TLS; schedulers and agents
//! authenticate each other with client certificates from one CA and name the
//! peer by the certificate's CommonName. Replicas carry a mark no other
//! certificate gets (see [`replica_id_of`]), which is what the Raft peer port checks.
//!
//! ```text
//!  init_ca / issue_replica / issue_leaf ──▶ PEM files ──▶ TlsFiles (config)
//!  ensure_dev_pki / ensure_dev_replica                       │
//!                          server_tls / client_tls ◀─────────┘
//!                                   │
//!   tonic Server / Channel ──▶ peer_common_name / peer_certificate(&request)
//! ```
//!
//! Call [`install_crypto_provider`] first thing in every `main` and test.

mod ca;
mod dev_pki;
mod error;
mod files;
mod inspect;
mod leaf;
mod node_certificate;
mod node_identity;
mod peer;
mod pem_file;
mod provider;
mod replica;
mod tonic_tls;

pub use ca::{CaFiles, init_ca};
pub use dev_pki::{ensure_dev_pki, ensure_dev_replica};
pub use error::Error;
pub use files::TlsFiles;
pub use leaf::issue_leaf;
pub use node_certificate::NodeCertificate;
pub use node_identity::{
    NODE_CN_PREFIX, NOT_BEFORE_SKEW, can_sign, csr_public_key, node_common_name, node_csr, node_csr_for_key,
    node_id_from_common_name, sign_node_csr, sign_node_csr_with_validity,
};
pub use peer::peer_common_name;
pub use provider::install_crypto_provider;
pub use replica::{
    PeerCertificate, REPLICA_CN_PREFIX, REPLICA_URI_PREFIX, issue_replica, peer_certificate, replica_common_name,
    replica_id_of, replica_uri,
};
pub use tonic_tls::{client_tls, client_tls_ca_only, peer_client_tls, server_tls};
