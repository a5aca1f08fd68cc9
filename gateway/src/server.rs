//! Accepting callers: HTTP/1.1 with keep-alive, optionally behind TLS, one task per
//! connection; shutdown stops accepting and lets connections finish their current call.

use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::gateway::{Gateway, Inner};
use crate::proxy::handle;

/// A caller must send its request headers within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS handshake must finish within this.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up from PEM files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// a PEM file could not be read or parsed
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    /// rustls refused the certificate and key
    #[error("certificate and key rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls server configuration from a certificate chain and a private key (PEM).
pub fn tls_from_pem(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem_err = |path: &Path, reason: String| TlsError::Pem { path: path.display().to_string(), reason };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err(cert, "no certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Gateway {
    /// Serves callers on `listener` until the process ends.
    pub async fn serve(&self, listener: TcpListener) -> io::Result<()> {
        self.serve_until(listener, CancellationToken::new()).await
    }

    /// Serves callers until `shutdown` is cancelled, then waits for open connections to
    /// finish their current call.
    pub async fn serve_until(&self, listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let inner = Arc::clone(&self.inner);
            let stop = shutdown.clone();
            connections.spawn(async move {
                match inner.config.tls.clone() {
                    None => serve_connection(inner, stream, stop).await,
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => serve_connection(inner, tls_stream, stop).await,
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}

async fn serve_connection<S>(inner: Arc<Inner>, stream: S, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let inner = Arc::clone(&inner);
        async move { Ok::<_, Infallible>(handle(&inner, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(e) = result {
        // A caller that hangs up or sends garbage ends its own connection only.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
