//! Reading and writing PEM files on disk: validation on read so a bad file is
//! reported by path at start-up (tonic would only fail at the first
//! handshake, without saying which file), atomic owner-only writes for keys,
//! and a directory lock so concurrent processes don't mint two CAs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
// Gantry runs on Linux only; unix permissions are how keys stay private.
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// Owner read/write only: private keys must not be readable by other users.
pub(crate) const PRIVATE_MODE: u32 = 0o600;
/// Certificates are public; world-readable like in /etc/ssl.
const PUBLIC_MODE: u32 = 0o644;

/// Reads a file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// Reads a file that must hold at least one PEM certificate; returns the PEM
/// text unchanged (tonic wants PEM, not DER).
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<u8>, Error> {
    let pem = read(path)?;
    let invalid = |source| Error::Certificate { path: path.to_path_buf(), source };
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| invalid(Some(e)))?;
    if certs.is_empty() {
        return Err(invalid(None));
    }
    Ok(pem)
}

/// The first certificate of a PEM file, in DER (the leaf of a chain).
pub(crate) fn read_first_certificate(path: &Path) -> Result<CertificateDer<'static>, Error> {
    let pem = read(path)?;
    CertificateDer::from_pem_slice(&pem)
        .map_err(|source| Error::Certificate { path: path.to_path_buf(), source: Some(source) })
}

/// Reads a file that must hold a PEM private key; returns the PEM text.
pub(crate) fn read_private_key(path: &Path) -> Result<Vec<u8>, Error> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|source| Error::PrivateKey { path: path.to_path_buf(), source: Some(source) })?;
    Ok(pem)
}

/// Writes a private key readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    write_atomic(path, contents, PRIVATE_MODE)
}

/// Writes a certificate.
pub(crate) fn write_public(path: &Path, contents: &str) -> Result<(), Error> {
    write_atomic(path, contents, PUBLIC_MODE)
}

/// Write to a temporary file, then rename: a crash never leaves a truncated
/// PEM behind, and the mode is set at creation so a key is never briefly
/// world-readable. Callers hold [`DirLock`], so the temporary name is unique.
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let write_error = |source| Error::Write { path: path.to_path_buf(), source };
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    fs::rename(&tmp, path).map_err(write_error)
}

/// Creates `dir` and its parents if missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::CreateDir { path: dir.to_path_buf(), source })
}

/// An exclusive advisory lock on a certificate directory, released on drop.
///
/// Several replicas started together (tests, a dev cluster) call
/// `ensure_dev_pki` on the same directory at once; without the lock each
/// would generate its own CA and overwrite the others' files.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Blocks until the lock on `dir` is held. `dir` must exist.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, Error> {
        let path: PathBuf = dir.join(".pki.lock");
        let lock_error = |source| Error::Lock { path: path.clone(), source };
        let file = OpenOptions::new().write(true).create(true).truncate(false).open(&path).map_err(lock_error)?;
        // flock semantics: per open file, so it also excludes other threads
        // of this process, which open their own `File`.
        file.lock().map_err(lock_error)?;
        Ok(Self { _file: file })
    }
}
