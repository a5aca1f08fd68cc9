//! The certificate authority on disk (`ca.pem`, `ca-key.pem`): creating a
//! self-signed CA (the development one, or an operator's through `gantryctl pki
//! init`), and loading an existing CA to sign leaves.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::files::{CA_CERT, CA_KEY};
use crate::{Error, pem_file};

/// Common name prefix of the generated CA; visible in `openssl x509 -text`,
/// so it says where the certificate came from.
const DEV_CA_NAME: &str = "Gantry development CA";
/// Common name prefix of a CA made by an operator with [`init_ca`].
const CLUSTER_CA_NAME: &str = "Gantry cluster CA";

/// Where [`init_ca`] wrote the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    /// `ca.pem`: give it to every replica, agent and CLI.
    pub cert: PathBuf,
    /// `ca-key.pem` (mode 0600): keep it where certificates are issued.
    pub key: PathBuf,
}

/// Creates a new CA in `dir` (created if missing): `ca.pem` and `ca-key.pem`
/// (0600). An existing CA is never replaced unless `force`: every certificate
/// it signed would stop being trusted by whoever gets the new `ca.pem`.
pub fn init_ca(dir: &Path, force: bool) -> Result<CaFiles, Error> {
    pem_file::create_dir(dir)?;
    let _lock = pem_file::DirLock::acquire(dir)?;
    let files = CaFiles { cert: dir.join(CA_CERT), key: dir.join(CA_KEY) };
    if !force && let Some(existing) = [&files.cert, &files.key].into_iter().find(|p| p.exists()) {
        return Err(Error::CaExists { path: existing.clone() });
    }
    generate_named(dir, CLUSTER_CA_NAME)?;
    Ok(files)
}

/// Whether `dir` holds a complete CA. The certificate is written after the
/// key, so its presence means both were written.
pub(crate) fn exists(dir: &Path) -> bool {
    dir.join(CA_CERT).is_file()
}

/// Generates a self-signed CA into `dir`, replacing any previous one.
///
/// Validity is rcgen's default (1975 to 4096): the development PKI has no
/// rotation, and an expired dev CA would break clusters for no security gain.
/// Production deployments bring their own CA through [`crate::TlsFiles`].
pub(crate) fn generate(dir: &Path) -> Result<(), Error> {
    generate_named(dir, DEV_CA_NAME)
}

/// Generates a CA whose CommonName is `name_prefix` plus a short key id. The
/// caller holds the directory lock.
fn generate_named(dir: &Path, name_prefix: &str) -> Result<(), Error> {
    let generate_error = |source| Error::Generate { what: format!("ca {name_prefix:?}"), source };
    let key = KeyPair::generate().map_err(generate_error)?;
    let mut params = CertificateParams::default();
    // Each dev CA gets a distinct name: with identical names, a client of the
    // wrong cluster reports a baffling "bad signature" instead of "unknown
    // issuer".
    let key_id: String = params.key_identifier(&key).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Gantry");
    name.push(DnType::CommonName, format!("{name_prefix} {key_id}"));
    params.distinguished_name = name;
    // Path length 0: this CA signs leaves only, never intermediates.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).map_err(generate_error)?;

    // Key first: `exists` treats the certificate as the commit marker.
    pem_file::write_private(&dir.join(CA_KEY), &key.serialize_pem())?;
    pem_file::write_public(&dir.join(CA_CERT), &cert.pem())?;
    tracing::info!(dir = %dir.display(), name_prefix, "generated ca");
    Ok(())
}

/// Loads the CA in `dir` as an issuer of new certificates.
pub(crate) fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, Error> {
    let key_path = dir.join(CA_KEY);
    let cert_path = dir.join(CA_CERT);
    let key_pem = read_utf8(&key_path)?;
    let cert_pem = read_utf8(&cert_path)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|source| Error::LoadCa { path: key_path, source })?;
    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|source| Error::LoadCa { path: cert_path, source })
}

fn read_utf8(path: &Path) -> Result<String, Error> {
    let bytes = pem_file::read(path)?;
    String::from_utf8(bytes).map_err(|e| Error::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn init_refuses_to_replace_a_ca_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let files = init_ca(dir.path(), false).unwrap();
        assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
        let before = std::fs::read(&files.cert).unwrap();
        let err = init_ca(dir.path(), false).unwrap_err();
        assert!(matches!(&err, Error::CaExists { path } if *path == files.cert), "{err}");
        assert_eq!(before, std::fs::read(&files.cert).unwrap(), "the refused init changed the CA");
        // A key alone (a half-copied CA) is protected too.
        std::fs::remove_file(&files.cert).unwrap();
        assert!(matches!(init_ca(dir.path(), false), Err(Error::CaExists { .. })));
        init_ca(dir.path(), true).unwrap();
        assert_ne!(before, std::fs::read(&files.cert).unwrap());
    }
}
