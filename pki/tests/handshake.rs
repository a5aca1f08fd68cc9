//! Real tonic servers over TLS on 127.0.0.1:0, serving grpc.health.v1 with
//! certificates from `ensure_dev_pki`/`issue_leaf`: who may connect, and who
//! the server sees.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_pki::{
    TlsFiles, client_tls, client_tls_ca_only, ensure_dev_pki, install_crypto_provider, issue_leaf, peer_common_name,
    server_tls,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{ClientTlsConfig, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// CommonNames seen by the server, one entry per request.
type SeenNames = Arc<Mutex<Vec<Option<String>>>>;

/// A health server over TLS that records `peer_common_name` of every request.
struct TestServer {
    addr: SocketAddr,
    seen: SeenNames,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    async fn start(files: &TlsFiles, require_client_cert: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let seen = SeenNames::default();
        let recorder = {
            let seen = Arc::clone(&seen);
            move |req: tonic::Request<()>| {
                seen.lock().expect("lock").push(peer_common_name(&req));
                Ok(req)
            }
        };
        let tls = server_tls(files, require_client_cert).expect("server tls");
        let (shutdown, stop) = oneshot::channel::<()>();
        let serve = Server::builder()
            .tls_config(tls)
            .expect("tls config")
            .layer(tonic::service::InterceptorLayer::new(recorder))
            .add_service(health)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop.await;
            });
        Self { addr, seen, shutdown, task: tokio::spawn(serve) }
    }

    /// Calls Check with `tls`; any failure (connect, handshake, RPC) is `Err`.
    async fn check(&self, tls: ClientTlsConfig) -> Result<ServingStatus, String> {
        let call = async {
            let channel = Endpoint::from_shared(format!("https://{}", self.addr))
                .map_err(|e| e.to_string())?
                .tls_config(tls)
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| format!("connect: {e:?}"))?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map_err(|e| format!("check: {e:?}"))?;
            Ok(response.into_inner().status())
        };
        tokio::time::timeout(Duration::from_secs(10), call).await.map_err(|_| "timed out".to_owned())?
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().expect("lock").clone()
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.expect("join").expect("serve");
    }
}

/// Asserts the call failed, for the expected reason (a substring of the
/// rustls error), not for an unrelated one such as a timeout.
fn assert_refused(result: Result<ServingStatus, String>, reason: &str) {
    match result {
        Err(error) => assert!(error.contains(reason), "expected {reason}, got {error}"),
        Ok(status) => panic!("expected {reason}, got {status:?}"),
    }
}

fn dev_pki(dir: &Path) -> TlsFiles {
    ensure_dev_pki(dir, &["sched-1".to_owned()]).expect("dev pki")
}

#[tokio::test]
async fn client_with_leaf_from_same_ca_can_call_check() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let server = TestServer::start(&files, true).await;

    for domain in ["localhost", "sched-1", "127.0.0.1"] {
        let status = server.check(client_tls(&files, domain).expect("client tls")).await;
        assert_eq!(status, Ok(ServingStatus::Serving), "domain {domain}");
    }
    server.stop().await;
}

#[tokio::test]
async fn client_trusting_a_different_ca_is_refused() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let other_files = dev_pki(other.path());
    let server = TestServer::start(&files, false).await;

    let tls = client_tls_ca_only(&other_files.ca_cert, "localhost").expect("client tls");
    let result = server.check(tls).await;
    assert_refused(result, "UnknownIssuer");
    server.stop().await;
}

#[tokio::test]
async fn server_name_not_in_certificate_is_refused() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let server = TestServer::start(&files, false).await;

    let tls = client_tls(&files, "sched-2").expect("client tls");
    let result = server.check(tls).await;
    assert_refused(result, "NotValidForName");
    server.stop().await;
}

#[tokio::test]
async fn required_client_cert_refuses_clients_without_one() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let server = TestServer::start(&files, true).await;

    let without = client_tls_ca_only(&files.ca_cert, "localhost").expect("client tls");
    let result = server.check(without).await;
    assert_refused(result, "CertificateRequired");

    let with = client_tls(&files, "localhost").expect("client tls");
    assert_eq!(server.check(with).await, Ok(ServingStatus::Serving));
    server.stop().await;
}

#[tokio::test]
async fn optional_client_cert_admits_clients_without_one() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let server = TestServer::start(&files, false).await;

    let cli = client_tls_ca_only(&files.ca_cert, "localhost").expect("client tls");
    assert_eq!(server.check(cli).await, Ok(ServingStatus::Serving));
    assert_eq!(server.seen(), [None]);
    server.stop().await;
}

#[tokio::test]
async fn optional_client_cert_still_refuses_a_cert_from_another_ca() {
    // Otherwise anyone could claim any CommonName when certs are optional.
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let foreign = dev_pki(other.path());
    let server = TestServer::start(&files, false).await;

    let impostor = TlsFiles { ca_cert: files.ca_cert.clone(), ..foreign };
    let result = server.check(client_tls(&impostor, "localhost").expect("client tls")).await;
    assert_refused(result, "UnknownCA");
    assert_eq!(server.seen(), Vec::<Option<String>>::new());
    server.stop().await;
}

#[tokio::test]
async fn peer_common_name_is_the_issued_leaf_name() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dev_pki(dir.path());
    let agent = issue_leaf(dir.path(), &dir.path().join("agents"), "agent-7", &["agent-7.local".to_owned()])
        .expect("issue leaf");
    let server = TestServer::start(&files, true).await;

    let as_agent = client_tls(&agent, "localhost").expect("client tls");
    assert_eq!(server.check(as_agent).await, Ok(ServingStatus::Serving));
    let as_dev_node = client_tls(&files, "localhost").expect("client tls");
    assert_eq!(server.check(as_dev_node).await, Ok(ServingStatus::Serving));

    assert_eq!(server.seen(), [Some("agent-7".to_owned()), Some("sched-1".to_owned())]);
    server.stop().await;
}

#[tokio::test]
async fn replicas_with_their_own_leaves_trust_each_other() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    dev_pki(dir.path());
    let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let replica_a = issue_leaf(dir.path(), dir.path(), "replica-a", &sans).expect("leaf a");
    let replica_b = issue_leaf(dir.path(), dir.path(), "replica-b", &sans).expect("leaf b");
    let server = TestServer::start(&replica_a, true).await;

    let tls = client_tls(&replica_b, "127.0.0.1").expect("client tls");
    assert_eq!(server.check(tls).await, Ok(ServingStatus::Serving));
    assert_eq!(server.seen(), [Some("replica-b".to_owned())]);
    server.stop().await;
}
