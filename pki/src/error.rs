//! The one error type of the crate: every variant names the file or the
//! certificate it was working on, because a TLS misconfiguration is almost
//! always "the wrong file" and the operator needs to know which one.

use std::io;
use std::path::PathBuf;

/// What went wrong while creating, loading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory for certificates could not be created.
    #[error("creating directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },

    /// A certificate or key file could not be read.
    #[error("reading {path}")]
    Read { path: PathBuf, source: io::Error },

    /// A certificate or key file could not be written.
    #[error("writing {path}")]
    Write { path: PathBuf, source: io::Error },

    /// The lock that serialises certificate generation in a directory could
    /// not be taken.
    #[error("locking {path}")]
    Lock { path: PathBuf, source: io::Error },

    /// A file meant to hold PEM certificates holds none, or malformed ones.
    #[error("no valid pem certificate in {path}")]
    Certificate {
        path: PathBuf,
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },

    /// A file meant to hold a PEM private key holds none, or a malformed one.
    #[error("no valid pem private key in {path}")]
    PrivateKey {
        path: PathBuf,
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },

    /// An existing CA could not be loaded for signing (bad key or certificate).
    #[error("loading ca from {path}")]
    LoadCa { path: PathBuf, source: rcgen::Error },

    /// `gantryctl pki init` would replace a CA that already signed certificates.
    #[error(
        "{path} already exists: a new CA would invalidate every certificate the old one signed (use --force to replace it)"
    )]
    CaExists { path: PathBuf },

    /// A replica id of 0: raft ids start at 1.
    #[error("invalid replica id 0: replica ids start at 1")]
    InvalidReplicaId,

    /// A leaf name that cannot be used as a file name.
    #[error("invalid certificate name {name:?}: use letters, digits, '.', '_' and '-'")]
    InvalidName { name: String },

    /// rcgen refused to build a certificate, e.g. a SAN that is not a valid
    /// DNS name or IP address.
    #[error("generating {what}")]
    Generate { what: String, source: rcgen::Error },
}
