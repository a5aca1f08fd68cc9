//! The watch client against in-test `GatewayService` replicas: it applies streamed
//! tables (ignoring older ones), presents the token, reports the applied version,
//! deploy errors and finished minutes, and moves to another replica when one fails
//! without losing the minutes it could not report.
#![allow(clippy::unwrap_used)]

mod support;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_gateway::{GatewayConfig, WatchConfig, watch};
use gantry_proto::v1;
use gantry_proto::v1::gateway_service_server::{GatewayService, GatewayServiceServer};
use support::*;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

type TableSender = mpsc::Sender<Result<v1::RouteTable, Status>>;

const TOKEN: &str = "gateway-token";

/// A replica that streams fixed tables and records (or refuses) reports.
struct Replica {
    tables: Vec<v1::RouteTable>,
    accept_reports: bool,
    reports: Arc<Mutex<Vec<v1::ReportGatewayRequest>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    // Keeps every stream open: only the client ends it.
    senders: Arc<Mutex<Vec<TableSender>>>,
}

impl Replica {
    fn note_token<T>(&self, r: &Request<T>) {
        let t = r.metadata().get("authorization").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        self.tokens.lock().unwrap().push(t);
    }
}

#[tonic::async_trait]
impl GatewayService for Replica {
    type WatchRoutesStream = Pin<Box<dyn Stream<Item = Result<v1::RouteTable, Status>> + Send>>;

    async fn watch_routes(
        &self,
        request: Request<v1::WatchRoutesRequest>,
    ) -> Result<Response<Self::WatchRoutesStream>, Status> {
        self.note_token(&request);
        let (tx, rx) = mpsc::channel(8);
        for t in &self.tables {
            tx.send(Ok(t.clone())).await.unwrap();
        }
        self.senders.lock().unwrap().push(tx);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn report_gateway(
        &self,
        request: Request<v1::ReportGatewayRequest>,
    ) -> Result<Response<v1::ReportGatewayResponse>, Status> {
        self.note_token(&request);
        self.reports.lock().unwrap().push(request.into_inner());
        if self.accept_reports {
            Ok(Response::new(v1::ReportGatewayResponse {}))
        } else {
            Err(Status::unavailable("not the leader"))
        }
    }
}

struct RunningReplica {
    url: String,
    reports: Arc<Mutex<Vec<v1::ReportGatewayRequest>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

async fn start_replica(tables: Vec<v1::RouteTable>, accept_reports: bool) -> RunningReplica {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reports = Arc::new(Mutex::new(Vec::new()));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let replica =
        Replica { tables, accept_reports, reports: reports.clone(), tokens: tokens.clone(), senders: Arc::default() };
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(GatewayServiceServer::new(replica))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), s.cancelled_owned())
            .await
    });
    RunningReplica { url, reports, tokens, stop }
}

#[tokio::test]
async fn follows_replicas_reports_and_fails_over() {
    let backend = Backend::start("a", Behaviour::Echo).await;
    let good = |version| {
        let mut s = stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &[backend.host_port()])]);
        s.config_version = version;
        s
    };
    let mut bad =
        stage("p1", "ep1", "st-bad", false, vec![resource("x", "/a", "m", &[]), resource("y", "/a", "m", &[])]);
    bad.config_version = 4;
    // Replica A refuses reports (as a partitioned replica would); B is healthy but
    // first sends a table older than the one A gave.
    let a = start_replica(vec![table(5, vec![good(1), bad])], false).await;
    let b = start_replica(vec![table(3, vec![]), table(6, vec![good(2)])], true).await;

    let gw = start_gateway(GatewayConfig::default()).await;
    // A minute long finished, counted before any scheduler answered.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let minute = gantry_domain::api_stats::minute_start_ms(now) - 120_000;
    gw.gateway.stats().record("st1", minute + 5, 150, true);
    let mut config = WatchConfig::new(vec![a.url.clone(), b.url.clone()], "gw-test".into());
    config.token = Some(TOKEN.into());
    config.report_every = Duration::from_millis(100);
    config.min_backoff = Duration::from_millis(20);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(watch(gw.gateway.clone(), config, cancel.clone()));

    let reported_to_b = || b.reports.lock().unwrap().iter().any(|r| r.applied_version == 6);
    assert!(wait_until(Duration::from_secs(20), reported_to_b).await, "B never got a report of version 6");
    assert_eq!(gw.gateway.applied_version(), Some(6));

    // A got a report of version 5 with the failing stage, and refused it.
    let to_a = a.reports.lock().unwrap().clone();
    let first = &to_a[0];
    assert_eq!((first.gateway_id.as_str(), first.applied_version), ("gw-test", 5));
    assert_eq!(first.errors.len(), 1);
    assert_eq!((first.errors[0].stage_id.as_str(), first.errors[0].config_version), ("st-bad", 4));
    assert_eq!(first.minutes.len(), 1);

    // The minute A refused reached B exactly once, merged into a single report.
    let to_b = b.reports.lock().unwrap().clone();
    let minutes: Vec<_> = to_b.iter().flat_map(|r| r.minutes.clone()).collect();
    assert_eq!(minutes.len(), 1, "{minutes:?}");
    assert_eq!(
        (minutes[0].stage_id.as_str(), minutes[0].minute_ms, minutes[0].calls, minutes[0].errors),
        ("st1", minute, 1, 1)
    );
    assert!(to_b.iter().all(|r| r.errors.is_empty()));

    // Every call carried the token.
    for tokens in [&a.tokens, &b.tokens] {
        assert!(tokens.lock().unwrap().iter().all(|t| t == &format!("Bearer {TOKEN}")));
    }

    // With no replica answering, the gateway keeps serving the last table.
    a.stop.cancel();
    b.stop.cancel();
    let c = client();
    for _ in 0..3 {
        assert_eq!(call(&c, "POST", &format!("{}/e/ep1/p", gw.base), Some(KEY_EP1), "{}").await.0, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.gateway.applied_version(), Some(6));
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}
