//! Reading fields back out of DER certificates: the subject CommonName (how
//! Gantry names the peer behind a connection) and the SANs (to decide whether
//! an existing leaf still covers the names a process serves).

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The first CommonName of the certificate's subject, if it has a UTF-8 one.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The DNS names and IP addresses (in [`canonical_san`] form) of the
/// certificate's subjectAltName, or `None` if the certificate does not parse.
pub(crate) fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let Some(san) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let names = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect();
    Some(names)
}

/// The URI entries of the certificate's subjectAltName (empty if it has
/// none), or `None` if the certificate does not parse.
pub(crate) fn uri_sans(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let Some(san) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect();
    Some(uris)
}

/// Canonical text of a SAN as rcgen would encode it: IPs normalised
/// (`0:0::1` and `::1` are the same SAN), DNS names lowercased (they
/// compare case-insensitively).
pub(crate) fn canonical_san(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
