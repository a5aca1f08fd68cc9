//! Reaching the cluster: TLS, the bearer token, and failover across replicas.
//!
//! ```text
//!   Connector::call(rpc) ── server 1 ── connect failed / Unavailable ──▶ server 2 ──▶ ...
//!                                 └── answer or any other error ──▶ returned
//! ```
//!
//! Any replica can answer: followers forward writes to the leader. So a request goes to
//! the first server that accepts a connection, and moves on only when that server could
//! not be reached or said `Unavailable` (e.g. no leader right now). Retrying a write on
//! another replica is safe: creates carry an idempotency key (`request_id`), puts are
//! upserts, and a repeated stop or delete finds the work done (at worst it reports
//! `NotFound` for what the first attempt deleted).
//!
//! A server stream (training logs) is opened the same way; if it later breaks, its
//! reader reopens it with [`Connector::call_from`], starting past the server that broke.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::config::Config;
use crate::report;

/// How often an open stream's connection is pinged: a server that vanished without closing
/// the connection (power loss, partition) would otherwise leave a log stream waiting
/// forever. Only sent while a request is in flight.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// The channel every generated client is built on: a connection to one server, with the
/// token attached to each request.
pub type AuthChannel = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every request (nothing without a token, so a
/// server running without auth in dev mode still answers).
#[derive(Debug, Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let value = token
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {}", t.trim()))
                    .map_err(|_| anyhow!("the token contains characters not allowed in a request header"))
            })
            .transpose()?;
        Ok(BearerToken(value))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The configured servers, ready to dial, and the token to send.
#[derive(Debug, Clone)]
pub struct Connector {
    endpoints: Vec<Endpoint>,
    token: BearerToken,
}

impl Connector {
    /// Checks every URL and reads the CA certificate now, so a typo is reported before any
    /// request is sent (and names the URL or file).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let ca = match &config.ca_cert {
            Some(path) => Some(read_ca(path)?),
            None => None,
        };
        let endpoints =
            config.servers.iter().map(|url| endpoint(url, ca.as_ref(), config)).collect::<anyhow::Result<_>>()?;
        Ok(Connector { endpoints, token: BearerToken::new(config.token.as_deref())? })
    }

    /// Runs `rpc` against the first server that answers it (see the module docs for when
    /// the next server is tried). `rpc` may run several times, once per server tried, so
    /// it must send the same request each time (same `request_id`).
    pub async fn call<T, F, Fut>(&self, rpc: F) -> anyhow::Result<T>
    where
        F: FnMut(AuthChannel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        Ok(self.call_from(0, rpc).await?.0)
    }

    /// The URL of server `index` (modulo their number), for messages.
    pub fn server(&self, index: usize) -> String {
        match self.endpoints.len() {
            0 => String::new(),
            count => self.endpoints[index % count].uri().to_string().trim_end_matches('/').to_string(),
        }
    }

    /// Like [`call`](Self::call), but tries the servers starting at index `first` (modulo
    /// their number, wrapping around), and also says which server answered.
    pub async fn call_from<T, F, Fut>(&self, first: usize, mut rpc: F) -> anyhow::Result<(T, usize)>
    where
        F: FnMut(AuthChannel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let count = self.endpoints.len();
        let mut failures = Vec::new();
        for index in (first..first + count).map(|i| i % count) {
            let endpoint = &self.endpoints[index];
            let server = endpoint.uri().to_string();
            let channel = match endpoint.connect().await {
                Ok(channel) => channel,
                Err(e) => {
                    failures.push(format!("{}: {}", server.trim_end_matches('/'), report::chain(&e)));
                    continue;
                }
            };
            match rpc(InterceptedService::new(channel, self.token.clone())).await {
                Ok(response) => return Ok((response.into_inner(), index)),
                Err(status) if status.code() == Code::Unavailable => {
                    failures.push(format!("{}: {}", server.trim_end_matches('/'), report::status(&status)));
                }
                Err(status) => return Err(status.into()),
            }
        }
        match failures.as_slice() {
            [one] => bail!("could not reach {one}"),
            _ => bail!("no server could answer: {}", failures.join("; ")),
        }
    }
}

/// Whether a failed call may succeed if tried again shortly: no server could be reached
/// or none could answer (the error is not a status), or the status is transient (see
/// [`is_transient_status`]). An answer such as not found or invalid argument is not.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Status>().is_none_or(is_transient_status)
}

/// Whether a status means the server or the connection failed rather than the request:
/// `Unavailable` (no leader, shutting down), and the codes tonic gives a connection that
/// broke mid-stream (`Unknown` for I/O errors, `Internal` for HTTP/2 errors, `Cancelled`
/// for a reset stream), plus `Aborted` and `DeadlineExceeded`.
pub fn is_transient_status(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled | Code::Aborted | Code::DeadlineExceeded
    )
}

/// An endpoint for one URL: `https://` with TLS (checking the certificate against the
/// URL's host), `http://` in plain text, which the scheduler accepts only with its
/// explicit insecure dev switch. A URL without a scheme gets `https://`.
fn endpoint(url: &str, ca: Option<&Certificate>, config: &Config) -> anyhow::Result<Endpoint> {
    let url = if url.contains("://") { url.to_string() } else { format!("https://{url}") };
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow!("invalid server URL '{url}': {}", report::chain(&e)))?
        .connect_timeout(config.timeout)
        // Bounds the wait for the response headers only, not a stream's body.
        .timeout(config.timeout)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(config.timeout);
    let uri = endpoint.uri().clone();
    match uri.scheme_str() {
        Some("http") => Ok(endpoint),
        Some("https") => {
            // IPv6 literals come bracketed (`[::1]`); certificate names do not.
            let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            let tls = ClientTlsConfig::new().domain_name(host);
            let tls = match ca {
                Some(ca) => tls.ca_certificate(ca.clone()),
                None => tls.with_native_roots(),
            };
            endpoint.tls_config(tls).map_err(|e| anyhow!("TLS setup for '{url}': {}", report::chain(&e)))
        }
        _ => bail!("invalid server URL '{url}': must start with https:// or http://"),
    }
}

/// Reads the CA file and checks it holds a PEM certificate: tonic would only fail at the
/// first handshake, without naming the file.
fn read_ca(path: &Path) -> anyhow::Result<Certificate> {
    let pem = std::fs::read(path).with_context(|| format!("reading CA certificate {}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        bail!("CA certificate {} holds no PEM certificate", path.display());
    }
    Ok(Certificate::from_pem(pem))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use gantry_proto::v1::cluster_service_client::ClusterServiceClient;
    use gantry_proto::v1::cluster_service_server::{ClusterService, ClusterServiceServer};
    use gantry_proto::v1::{ClusterStatus, GetClusterStatusRequest};
    use tokio::net::TcpListener;
    use tonic::transport::Server;

    use super::*;

    /// Answers with its replica id, or with a fixed error; records the authorization
    /// header it saw.
    struct FakeCluster {
        replica_id: u64,
        fail_with: Option<Code>,
        seen_auth: Arc<Mutex<Vec<String>>>,
    }

    #[tonic::async_trait]
    impl ClusterService for FakeCluster {
        async fn get_status(
            &self,
            request: Request<GetClusterStatusRequest>,
        ) -> Result<tonic::Response<ClusterStatus>, Status> {
            let auth = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            self.seen_auth.lock().unwrap().push(auth);
            match self.fail_with {
                Some(code) => Err(Status::new(code, "fake failure")),
                None => Ok(tonic::Response::new(ClusterStatus { replica_id: self.replica_id, ..Default::default() })),
            }
        }
    }

    async fn start(replica_id: u64, fail_with: Option<Code>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen_auth = Arc::new(Mutex::new(Vec::new()));
        let service = FakeCluster { replica_id, fail_with, seen_auth: seen_auth.clone() };
        tokio::spawn(
            Server::builder()
                .add_service(ClusterServiceServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (addr, seen_auth)
    }

    /// An address nothing listens on: bound, then closed.
    async fn dead_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn config(servers: Vec<String>, token: Option<&str>) -> Config {
        Config {
            servers,
            token: token.map(Into::into),
            ca_cert: None,
            project: "default".into(),
            timeout: Duration::from_secs(5),
        }
    }

    async fn replica_answering(connector: &Connector) -> anyhow::Result<u64> {
        let status = connector
            .call(|ch| async move { ClusterServiceClient::new(ch).get_status(GetClusterStatusRequest {}).await })
            .await?;
        Ok(status.replica_id)
    }

    #[tokio::test]
    async fn sends_the_bearer_token() {
        let (addr, seen) = start(1, None).await;
        let connector = Connector::new(&config(vec![format!("http://{addr}")], Some("gantry_secret"))).unwrap();
        assert_eq!(replica_answering(&connector).await.unwrap(), 1);
        assert_eq!(*seen.lock().unwrap(), ["Bearer gantry_secret"]);
    }

    #[tokio::test]
    async fn fails_over_past_unreachable_and_unavailable_servers() {
        let dead = dead_addr().await;
        let (unavailable, _) = start(2, Some(Code::Unavailable)).await;
        let (healthy, _) = start(3, None).await;
        let servers = vec![format!("http://{dead}"), format!("http://{unavailable}"), format!("http://{healthy}")];
        let connector = Connector::new(&config(servers, None)).unwrap();
        assert_eq!(replica_answering(&connector).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn other_errors_are_returned_without_trying_the_next_server() {
        let (denied, _) = start(1, Some(Code::PermissionDenied)).await;
        let (healthy, seen) = start(2, None).await;
        let connector =
            Connector::new(&config(vec![format!("http://{denied}"), format!("http://{healthy}")], None)).unwrap();
        let err = replica_answering(&connector).await.unwrap_err();
        assert_eq!(err.downcast_ref::<Status>().map(Status::code), Some(Code::PermissionDenied));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn call_from_starts_at_the_given_server_and_wraps_around() {
        let (a, _) = start(1, None).await;
        let (b, _) = start(2, None).await;
        let connector = Connector::new(&config(vec![format!("http://{a}"), format!("http://{b}")], None)).unwrap();
        let get = |ch| async move { ClusterServiceClient::new(ch).get_status(GetClusterStatusRequest {}).await };
        let (status, index) = connector.call_from(1, get).await.unwrap();
        assert_eq!((status.replica_id, index), (2, 1));
        let (status, index) = connector.call_from(2, get).await.unwrap();
        assert_eq!((status.replica_id, index), (1, 0));
        assert_eq!(connector.server(3), format!("http://{b}"));
    }

    #[test]
    fn answers_are_not_transient_but_outages_are() {
        assert!(is_transient(&anyhow!("no server could answer: a: connection refused")));
        assert!(is_transient(&Status::unavailable("no leader").into()));
        assert!(is_transient(&Status::unknown("connection reset").into()));
        assert!(!is_transient(&Status::not_found("no training \"x\"").into()));
        assert!(!is_transient(&Status::unimplemented("").into()));
    }

    #[tokio::test]
    async fn reports_every_server_when_none_answers() {
        let (a, b) = (dead_addr().await, dead_addr().await);
        let connector = Connector::new(&config(vec![format!("http://{a}"), format!("http://{b}")], None)).unwrap();
        let err = replica_answering(&connector).await.unwrap_err().to_string();
        assert!(err.starts_with("no server could answer:"), "{err}");
        assert!(err.contains(&a.to_string()) && err.contains(&b.to_string()), "{err}");
    }

    #[test]
    fn rejects_bad_urls_and_ca_files() {
        let err = Connector::new(&config(vec!["ftp://x:1".into()], None)).unwrap_err().to_string();
        assert!(err.contains("https:// or http://"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let mut c = config(vec!["https://127.0.0.1:7443".into()], None);
        c.ca_cert = Some(ca);
        let err = Connector::new(&c).unwrap_err().to_string();
        assert!(err.contains("ca.pem holds no PEM certificate"), "{err}");
    }

    #[test]
    fn token_must_fit_in_a_header() {
        assert!(BearerToken::new(Some("bad\ntoken")).is_err());
        assert!(BearerToken::new(None).is_ok());
    }
}
