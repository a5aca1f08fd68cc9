//! tonic TLS configurations built from [`TlsFiles`]: one place decides how
//! Gantry servers verify clients and how clients verify servers.
//!
//! ```text
//!   client (leaf + CA) ──mTLS──▶ server (leaf + CA as client root)
//!   CLI    (CA only)   ──TLS───▶ server (client cert optional)
//! ```

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::{Error, TlsFiles, pem_file};

/// Server-side TLS presenting `files.cert` and verifying client certificates
/// against `files.ca_cert`.
///
/// With `require_client_cert`, a client without a certificate from that CA is
/// refused during the handshake. Without it, a client may present no
/// certificate (e.g. the CLI); one that does present a certificate is still
/// verified against the CA, so [`crate::peer_common_name`] can be trusted in
/// both modes.
pub fn server_tls(files: &TlsFiles, require_client_cert: bool) -> Result<ServerTlsConfig, Error> {
    let identity = identity(files)?;
    let client_ca = Certificate::from_pem(pem_file::read_certificates(&files.ca_cert)?);
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(client_ca)
        // Only effective together with `client_ca_root`, hence always set.
        .client_auth_optional(!require_client_cert))
}

/// Client-side TLS presenting `files.cert` as client identity and trusting
/// only `files.ca_cert` (not the system roots). `domain` is the name checked
/// against the server certificate's SANs, independent of the dialled address.
pub fn client_tls(files: &TlsFiles, domain: &str) -> Result<ClientTlsConfig, Error> {
    Ok(client_tls_ca_only(&files.ca_cert, domain)?.identity(identity(files)?))
}

/// Client-side TLS for replica-to-replica links: presents `files.cert` (the
/// replica's own certificate) and trusts only `files.ca_cert`. Unlike
/// [`client_tls`] it fixes no server name, so each connection checks the
/// certificate against the host of the URL it dials (a peer's `url`).
pub fn peer_client_tls(files: &TlsFiles) -> Result<ClientTlsConfig, Error> {
    let ca = Certificate::from_pem(pem_file::read_certificates(&files.ca_cert)?);
    Ok(ClientTlsConfig::new().ca_certificate(ca).identity(identity(files)?))
}

/// Client-side TLS without a client certificate, trusting only `ca_cert`: for
/// CLI users, against servers that do not require client certificates.
pub fn client_tls_ca_only(ca_cert: &Path, domain: &str) -> Result<ClientTlsConfig, Error> {
    let ca = Certificate::from_pem(pem_file::read_certificates(ca_cert)?);
    Ok(ClientTlsConfig::new().ca_certificate(ca).domain_name(domain))
}

fn identity(files: &TlsFiles) -> Result<Identity, Error> {
    let cert = pem_file::read_certificates(&files.cert)?;
    let key = pem_file::read_private_key(&files.key)?;
    Ok(Identity::from_pem(cert, key))
}
