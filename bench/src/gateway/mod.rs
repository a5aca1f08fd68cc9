//! `gateway`: what the Gantry gateway adds to a model call, next to nginx.
//!
//! ```text
//!   open-loop client ──▶ model server                       (direct)
//!   open-loop client ──▶ nginx ──keepalive──▶ model server  (nginx, Debian package)
//!   open-loop client ──▶ gantry gateway ──▶ model server    (auth, routing, stats)
//! ```
//! Same model server, same fixed rate and request count, one after the other in one
//! run. The gateway and nginx each get one worker (a thread / a process); the model
//! server has its own thread.

pub mod model_server;
pub mod nginx;
pub mod open_loop;

use std::time::Duration;

use bytes::Bytes;
use gantry_gateway::auth::sha256_hex;
use gantry_gateway::{Gateway, GatewayConfig};
use gantry_proto::v1;

use self::model_server::ModelServer;
use self::nginx::Nginx;
use self::open_loop::{OpenLoopReport, Target};

/// What the run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests per second, each target.
    pub rate: u32,
    /// Requests per target (after a warm-up of `rate / 4`).
    pub requests: u64,
    /// Each target's run stops after this even if requests remain.
    pub max: Duration,
}

/// The three targets' figures.
#[derive(Debug, Clone)]
pub struct GatewayReport {
    pub rate: u32,
    pub direct: OpenLoopReport,
    pub nginx: OpenLoopReport,
    pub gateway: OpenLoopReport,
}

const API_KEY: &str = "bench-api-key";
const BODY: &str = r#"{"instances":[[5.1,3.5,1.4,0.2]]}"#;

pub async fn run(opts: &Options) -> anyhow::Result<GatewayReport> {
    let model = ModelServer::start()?;
    let nginx = Nginx::start(model.addr).await?;
    let gateway_url = start_gateway(model.addr).await?;

    let predict = "/v1/models/iris:predict";
    let targets = [
        (format!("http://{}{predict}", model.addr), None),
        (format!("http://{}{predict}", nginx.addr), None),
        (format!("{gateway_url}/e/ep-bench/predict"), Some(format!("Bearer {API_KEY}"))),
    ];
    let mut reports = Vec::new();
    for (url, authorization) in targets {
        let target = || Target {
            url: url.clone(),
            authorization: authorization.clone(),
            body: Bytes::from_static(BODY.as_bytes()),
        };
        // Warm-up: connections opened, caches filled; not counted.
        open_loop::run(target(), opts.rate, u64::from(opts.rate / 4).max(10), opts.max).await?;
        reports.push(open_loop::run(target(), opts.rate, opts.requests, opts.max).await?);
    }
    let [direct, nginx, gateway] =
        <[OpenLoopReport; 3]>::try_from(reports).map_err(|_| anyhow::anyhow!("three targets give three reports"))?;
    Ok(GatewayReport { rate: opts.rate, direct, nginx, gateway })
}

/// The gateway on its own single-worker runtime and thread, routing one endpoint to
/// the model server; returns its base URL.
async fn start_gateway(model: std::net::SocketAddr) -> anyhow::Result<String> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let base = format!("http://{}", std_listener.local_addr()?);
    let gateway = Gateway::new(GatewayConfig::default());
    let mut table = v1::RouteTable { version: 1, ..Default::default() };
    table.stages.push(v1::StageRoutes {
        project: "bench".into(),
        endpoint_id: "ep-bench".into(),
        stage_id: "st-bench".into(),
        is_default: true,
        config_version: 1,
        resources: vec![v1::ResourceRoute {
            resource_id: "r".into(),
            resource_path: "/predict".into(),
            model: "iris".into(),
            backends: vec![model.to_string()],
        }],
        ..Default::default()
    });
    table.keys.push(v1::EndpointKeys {
        endpoint_id: "ep-bench".into(),
        project: "bench".into(),
        key_sha256: vec![sha256_hex(API_KEY)],
    });
    let errors = gateway.apply(&table)?;
    anyhow::ensure!(errors.is_empty(), "bench route table refused: {errors:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    std::thread::Builder::new().name("gateway".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
            let _ = gateway.serve(listener).await;
        });
    })?;
    Ok(base)
}

impl GatewayReport {
    pub fn print(&self) {
        println!("{:>8} {:>8} {:>8} {:>7} {:>9} {:>9}", "target", "sent", "ok", "failed", "p50_us", "p99_us");
        for (name, r) in [("direct", &self.direct), ("nginx", &self.nginx), ("gateway", &self.gateway)] {
            println!("{name:>8} {:>8} {:>8} {:>7} {:>9} {:>9}", r.sent, r.ok, r.failed, r.p50_us, r.p99_us);
        }
    }

    /// `failed` counts every target's failures: any is a broken comparison.
    pub fn bench_line(&self) -> String {
        format!(
            "bench: gateway rps={} p50_us={} p99_us={} direct_p50_us={} direct_p99_us={} nginx_p50_us={} nginx_p99_us={} failed={}",
            self.rate,
            self.gateway.p50_us,
            self.gateway.p99_us,
            self.direct.p50_us,
            self.direct.p99_us,
            self.nginx.p50_us,
            self.nginx.p99_us,
            self.direct.failed + self.nginx.failed + self.gateway.failed
        )
    }
}
