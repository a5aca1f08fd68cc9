//! Where a process finds its TLS material: the paths every Gantry config
//! carries in its `[tls]` section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// File name of the CA certificate inside a PKI directory.
pub(crate) const CA_CERT: &str = "ca.pem";
/// File name of the CA private key inside a PKI directory.
pub(crate) const CA_KEY: &str = "ca-key.pem";

/// The PEM files of one process identity.
///
/// `cert`/`key` are this process's leaf certificate and private key, used both
/// as server identity and as client identity (mTLS); `ca_cert` is the CA that
/// peers' certificates must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The layout used by [`crate::issue_leaf`]: `<out_dir>/<name>.pem` and
    /// `<out_dir>/<name>-key.pem`, trusting `<ca_dir>/ca.pem`.
    pub(crate) fn leaf(ca_dir: &Path, out_dir: &Path, name: &str) -> Self {
        Self {
            ca_cert: ca_dir.join(CA_CERT),
            cert: out_dir.join(format!("{name}.pem")),
            key: out_dir.join(format!("{name}-key.pem")),
        }
    }
}
