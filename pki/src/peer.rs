//! Who is on the other end of a request: Gantry names agents and scheduler
//! peers by the CommonName of their verified client certificate, so a node
//! cannot claim another node's identity by sending a different name.

/// The CommonName of the client certificate presented on the connection that
/// carried `req`.
///
/// `None` if the connection is not TLS, the client sent no certificate, or
/// the certificate has no UTF-8 CommonName. The certificate has already been
/// verified against the server's CA by [`crate::server_tls`]: a value returned
/// here is authenticated.
pub fn peer_common_name<T>(req: &tonic::Request<T>) -> Option<String> {
    let certs = req.peer_certs()?;
    // The end-entity certificate comes first; the rest is its chain.
    let leaf = certs.first()?;
    crate::inspect::common_name(leaf)
}
