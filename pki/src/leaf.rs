//! Leaf certificates: one per process identity, signed by the CA, usable
//! both to serve (serverAuth) and to dial peers (clientAuth), because every
//! Gantry process is a gRPC server and a client of the others.

use std::path::Path;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::{Error, TlsFiles, ca, pem_file};

/// Issues a new leaf certificate signed by the CA in `ca_dir` (which must
/// hold `ca.pem` and `ca-key.pem`) and writes it to `<out_dir>/<name>.pem`
/// with its key in `<out_dir>/<name>-key.pem` (mode 0600), replacing any
/// previous pair of that name.
///
/// `name` becomes the certificate's CommonName (what
/// [`crate::peer_common_name`] returns for connections using it) and must be a
/// plain file stem: letters, digits, `.`, `_`, `-`, not starting with `.`.
/// `sans` are used exactly as given (DNS names or IP addresses); nothing is
/// added. The returned `ca_cert` points into `ca_dir`.
pub fn issue_leaf(ca_dir: &Path, out_dir: &Path, name: &str, sans: &[String]) -> Result<TlsFiles, Error> {
    validate_name(name)?;
    pem_file::create_dir(out_dir)?;
    // Lock the CA directory: that is where concurrent `ensure_dev_pki` calls
    // may be (re)creating the CA this leaf must chain to.
    let _lock = pem_file::DirLock::acquire(ca_dir)?;
    let issuer = ca::load_issuer(ca_dir)?;
    let files = TlsFiles::leaf(ca_dir, out_dir, name);
    write(&issuer, &files, name, sans, None)?;
    Ok(files)
}

/// Signs a leaf for `name`/`sans` with `issuer` and writes it to
/// `files.cert`/`files.key`. `uri` adds a URI SAN (how replica certificates are
/// marked, see [`crate::replica`]). The caller holds the CA directory lock.
pub(crate) fn write(
    issuer: &Issuer<'_, KeyPair>,
    files: &TlsFiles,
    name: &str,
    sans: &[String],
    uri: Option<&str>,
) -> Result<(), Error> {
    let generate_error = |source| Error::Generate { what: format!("leaf certificate {name:?}"), source };
    let mut params = CertificateParams::new(sans.to_vec()).map_err(generate_error)?;
    if let Some(uri) = uri {
        let uri = uri.try_into().map_err(generate_error)?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys only sign; key encipherment would be meaningless.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;

    let key = KeyPair::generate().map_err(generate_error)?;
    let cert = params.signed_by(&key, issuer).map_err(generate_error)?;
    // Key first: a leaf counts as present only once its certificate exists.
    pem_file::write_private(&files.key, &key.serialize_pem())?;
    pem_file::write_public(&files.cert, &cert.pem())?;
    tracing::info!(name, cert = %files.cert.display(), "issued leaf certificate");
    Ok(())
}

/// The name ends up in a file name, so it must not escape `out_dir` or hide.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(Error::InvalidName { name: name.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_the_directory_are_rejected() {
        for bad in ["", ".hidden", "../x", "a/b", "node 1"] {
            assert!(matches!(validate_name(bad), Err(Error::InvalidName { .. })), "{bad:?} accepted");
        }
        for good in ["node", "agent-7", "gpu01.rack3", "replica_2"] {
            assert!(validate_name(good).is_ok(), "{good:?} rejected");
        }
    }
}
