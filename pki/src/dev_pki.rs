//! Zero-configuration TLS for development clusters and tests: the first
//! process to start creates a CA; each replica gets its own replica leaf (the
//! peer port accepts nothing else), and tools that only need some leaf of the
//! CA share one.
//!
//! ```text
//! dir/
//!   ca.pem  ca-key.pem                self-signed CA (created once)
//!   replica-{id}.pem  …-key.pem       replica leaf (ensure_dev_replica): CN
//!                                     replica-{id}, SAN URI urn:gantry:replica:{id}
//!   node.pem  node-key.pem            shared leaf (ensure_dev_pki), not a replica
//!   (every leaf: serverAuth + clientAuth, SANs server_names + localhost,
//!    127.0.0.1, ::1)
//! ```

use std::path::Path;

use crate::{Error, TlsFiles, ca, inspect, leaf, pem_file, replica};

/// Names every dev leaf is valid for, so that a cluster on one machine works
/// whichever loopback address a client dials.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// File stem of the shared development leaf.
const DEV_LEAF: &str = "node";

/// Makes sure `dir` holds a development CA and a leaf valid for
/// `server_names` (plus `localhost`, `127.0.0.1`, `::1`), creating what is
/// missing, and returns their paths.
///
/// Idempotent: existing files are reused unchanged. A new leaf is issued only
/// if there is none, if the CA was just (re)created, or if the existing leaf
/// lacks one of the requested names. Issuing needs `ca-key.pem`; reusing does
/// not, so a directory whose CA key was removed still works as long as the
/// leaf fits. The leaf's CommonName is the first server name, or `localhost`.
/// Safe to call from several processes at once (a file lock serialises them).
pub fn ensure_dev_pki(dir: &Path, server_names: &[String]) -> Result<TlsFiles, Error> {
    let (_lock, ca_created) = locked_dev_ca(dir)?;
    let sans = dev_sans(server_names);
    let files = TlsFiles::leaf(dir, dir, DEV_LEAF);
    if ca_created || !leaf_fits(&files, &sans) {
        let issuer = ca::load_issuer(dir)?;
        let common_name = server_names.first().map_or("localhost", String::as_str);
        leaf::write(&issuer, &files, common_name, &sans, None)?;
    }
    Ok(files)
}

/// Like [`ensure_dev_pki`], but the leaf is replica `id`'s own certificate
/// (`replica-{id}.pem`, see [`crate::issue_replica`]): what a development
/// replica serves and dials its peers with. Reissued when missing, when the
/// CA was just created, when it lacks a requested name, or when it is not a
/// replica certificate of `id`.
pub fn ensure_dev_replica(dir: &Path, id: u64, server_names: &[String]) -> Result<TlsFiles, Error> {
    if id == 0 {
        return Err(Error::InvalidReplicaId);
    }
    let (_lock, ca_created) = locked_dev_ca(dir)?;
    let sans = dev_sans(server_names);
    let name = replica::replica_common_name(id);
    let files = TlsFiles::leaf(dir, dir, &name);
    let is_replica =
        || pem_file::read_first_certificate(&files.cert).ok().and_then(|der| replica::replica_id_of(&der)) == Some(id);
    if ca_created || !leaf_fits(&files, &sans) || !is_replica() {
        let issuer = ca::load_issuer(dir)?;
        leaf::write(&issuer, &files, &name, &sans, Some(&replica::replica_uri(id)))?;
    }
    Ok(files)
}

/// Locks `dir` (created if missing) and makes sure it holds a CA; returns the lock,
/// held while leaves are issued, and whether the CA was just created.
fn locked_dev_ca(dir: &Path) -> Result<(pem_file::DirLock, bool), Error> {
    pem_file::create_dir(dir)?;
    let lock = pem_file::DirLock::acquire(dir)?;
    let ca_created = !ca::exists(dir);
    if ca_created {
        ca::generate(dir)?;
    }
    Ok((lock, ca_created))
}

/// `server_names` followed by the loopback names, without duplicates.
fn dev_sans(server_names: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = Vec::new();
    for name in server_names.iter().map(String::as_str).chain(LOOPBACK_NAMES) {
        let canonical = inspect::canonical_san(name);
        if !sans.iter().any(|s| inspect::canonical_san(s) == canonical) {
            sans.push(name.to_owned());
        }
    }
    sans
}

/// Whether the leaf in `files` exists and already covers every name in `sans`.
fn leaf_fits(files: &TlsFiles, sans: &[String]) -> bool {
    if !files.key.is_file() {
        return false;
    }
    let Ok(der) = pem_file::read_first_certificate(&files.cert) else {
        return false;
    };
    let Some(present) = inspect::subject_alt_names(&der) else {
        tracing::warn!(cert = %files.cert.display(), "existing leaf does not parse, reissuing");
        return false;
    };
    let missing: Vec<&String> = sans.iter().filter(|name| !present.contains(&inspect::canonical_san(name))).collect();
    if !missing.is_empty() {
        tracing::info!(cert = %files.cert.display(), ?missing, "existing leaf lacks names, reissuing");
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dev_replica_gets_its_own_replica_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let one = ensure_dev_replica(dir.path(), 1, &[]).unwrap();
        let two = ensure_dev_replica(dir.path(), 2, &["sched-2".to_owned()]).unwrap();
        assert_eq!(one.ca_cert, two.ca_cert);
        let id = |f: &TlsFiles| replica::replica_id_of(&pem_file::read_first_certificate(&f.cert).unwrap());
        assert_eq!((id(&one), id(&two)), (Some(1), Some(2)));
        let before = std::fs::read(&two.cert).unwrap();
        ensure_dev_replica(dir.path(), 2, &["sched-2".to_owned()]).unwrap();
        assert_eq!(before, std::fs::read(&two.cert).unwrap(), "an existing replica leaf is reused");
        // The shared dev leaf beside them is not a replica certificate.
        let shared = ensure_dev_pki(dir.path(), &[]).unwrap();
        assert_eq!(id(&shared), None);
    }

    #[test]
    fn loopback_names_are_added_once() {
        let sans = dev_sans(&["sched-1".to_owned(), "LOCALHOST".to_owned(), "0:0::1".to_owned()]);
        assert_eq!(sans, ["sched-1", "LOCALHOST", "0:0::1", "127.0.0.1"]);
    }
}
