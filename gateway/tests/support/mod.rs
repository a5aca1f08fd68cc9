//! Test kit: model-server stand-ins on 127.0.0.1:0, a gateway in the test process, a
//! client, and route tables.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gantry_gateway::auth::sha256_hex;
use gantry_gateway::{Gateway, GatewayConfig};
use gantry_proto::v1;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const KEY_EP1: &str = "key-of-ep1";
pub const KEY_EP2: &str = "key-of-ep2";
pub const TOKEN_P1: &str = "token-of-p1";
pub const TOKEN_P2: &str = "token-of-p2";

/// A request a backend received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub inference_id: Option<String>,
    pub body: Bytes,
}

/// How a backend answers.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 `{"backend": name, "path": …}`.
    Echo,
    /// This status and body.
    Fixed(u16, &'static str),
    /// Reads the request, then closes the connection without answering.
    DropAfterRead,
}

pub struct Backend {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Backend {
    pub async fn start(name: &'static str, behaviour: Behaviour) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (seen2, stop2) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop2.cancelled() => return,
                    a = listener.accept() => a.unwrap(),
                };
                let seen = seen2.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    if let Behaviour::DropAfterRead = behaviour {
                        drop_after_read(stream, &seen).await;
                        return;
                    }
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        let behaviour = behaviour.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let header = |n: &str| parts.headers.get(n).map(|v| v.to_str().unwrap().to_string());
                            let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                            seen.lock().unwrap().push(Seen {
                                method: parts.method.to_string(),
                                path: path.clone(),
                                authorization: header("authorization"),
                                inference_id: header("x-inference-id"),
                                body,
                            });
                            let (status, text) = match behaviour {
                                Behaviour::Fixed(s, b) => (s, b.to_string()),
                                _ => (200, serde_json::json!({ "backend": name, "path": path }).to_string()),
                            };
                            let mut r = Response::new(Full::new(Bytes::from(text)));
                            *r.status_mut() = StatusCode::from_u16(status).unwrap();
                            r.headers_mut().insert("content-type", "application/json".parse().unwrap());
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Backend { addr, seen, stop }
    }

    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request's head and its declared body, records it, then hangs up.
async fn drop_after_read(mut stream: tokio::net::TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0usize);
            if buf.len() >= end + 4 + length {
                let first = text.lines().next().unwrap_or_default().to_string();
                let mut words = first.split(' ');
                seen.lock().unwrap().push(Seen {
                    method: words.next().unwrap_or_default().into(),
                    path: words.next().unwrap_or_default().into(),
                    authorization: None,
                    inference_id: None,
                    body: Bytes::copy_from_slice(&buf[end + 4..]),
                });
                return;
            }
        }
    }
}

/// An address nothing listens on: connecting is refused.
pub async fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

/// A gateway serving on 127.0.0.1:0.
pub struct RunningGateway {
    pub gateway: Gateway,
    pub base: String,
    stop: CancellationToken,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start_gateway(config: GatewayConfig) -> RunningGateway {
    let gateway = Gateway::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let (g, s) = (gateway.clone(), stop.clone());
    tokio::spawn(async move { g.serve_until(listener, s).await });
    RunningGateway { gateway, base, stop }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Status, `x-inference-id` and body of one call.
pub async fn call(
    c: &TestClient,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let mut b = Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let r = c.request(b.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let status = r.status().as_u16();
    let id = r.headers().get("x-inference-id").map(|v| v.to_str().unwrap().to_string());
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let json =
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, id, json)
}

pub fn resource(id: &str, path: &str, model: &str, backends: &[String]) -> v1::ResourceRoute {
    v1::ResourceRoute {
        resource_id: id.into(),
        resource_path: path.into(),
        model: model.into(),
        backends: backends.to_vec(),
    }
}

pub fn stage(
    project: &str,
    endpoint: &str,
    stage_id: &str,
    is_default: bool,
    resources: Vec<v1::ResourceRoute>,
) -> v1::StageRoutes {
    v1::StageRoutes {
        project: project.into(),
        endpoint_id: endpoint.into(),
        endpoint: format!("{endpoint}-name"),
        stage_id: stage_id.into(),
        stage: format!("{stage_id}-name"),
        is_default,
        resources,
        config_version: 1,
        use_log: true,
    }
}

/// A table with keys for ep1 (project p1) and ep2 (project p2) and both project tokens.
pub fn table(version: u64, stages: Vec<v1::StageRoutes>) -> v1::RouteTable {
    let mut t = v1::RouteTable { version, stages, ..Default::default() };
    t.keys.push(v1::EndpointKeys {
        endpoint_id: "ep1".into(),
        project: "p1".into(),
        key_sha256: vec![sha256_hex(KEY_EP1)],
    });
    t.keys.push(v1::EndpointKeys {
        endpoint_id: "ep2".into(),
        project: "p2".into(),
        key_sha256: vec![sha256_hex(KEY_EP2)],
    });
    t.project_token_sha256.insert("p1".into(), sha256_hex(TOKEN_P1));
    t.project_token_sha256.insert("p2".into(), sha256_hex(TOKEN_P2));
    t
}

/// Polls `cond` until it holds or `within` passes.
pub async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
