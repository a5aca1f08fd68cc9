//! `gantry-gateway`: the HTTP gateway as its own daemon (a cluster's gateway nodes).
//! Reads its configuration, follows the scheduler replicas' route tables and serves
//! callers until SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gantry_gateway::config::Config;
use gantry_gateway::{FileLogSink, Gateway, GatewayConfig, LogSink, WatchConfig, tls_from_pem, watch};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Gantry HTTP gateway: routes endpoint and stage URLs to serving pods")]
struct Cli {
    /// TOML configuration file (environment overrides: GANTRY_GATEWAY_*).
    #[arg(long, env = "GANTRY_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    gantry_daemonkit::init_tracing(config.log_json, "info");
    gantry_pki::install_crypto_provider();

    let log_sink: Option<Arc<dyn LogSink>> = match &config.inference_logs.dir {
        Some(dir) => Some(Arc::new(
            FileLogSink::new(dir.clone()).with_context(|| format!("inference log directory {}", dir.display()))?,
        )),
        None => None,
    };
    let tls = match &config.tls {
        Some(t) => Some(tls_from_pem(&t.cert, &t.key)?),
        None => None,
    };
    let gateway = Gateway::new(GatewayConfig {
        request_timeout: config.request_timeout,
        connect_timeout: config.connect_timeout,
        max_body_bytes: config.max_body_bytes,
        pool_idle_timeout: config.pool_idle_timeout,
        log_sink,
        tls,
    });

    let gateway_id = config.gateway_id.clone().unwrap_or_else(host_name);
    let mut watch_config = WatchConfig::new(config.scheduler.endpoints.clone(), gateway_id);
    watch_config.report_every = config.scheduler.report_every;
    if let Some(ca) = &config.scheduler.ca {
        watch_config.tls = Some(gantry_pki::client_tls_ca_only(ca, &config.scheduler.domain)?);
    }
    if let Some(path) = &config.scheduler.token_file {
        let token = std::fs::read_to_string(path).with_context(|| format!("token file {}", path.display()))?;
        watch_config.token = Some(token.trim().to_string());
    }

    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, tls = config.tls.is_some(), "gateway serving");
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(watch(gateway.clone(), watch_config, shutdown.clone()));
    let server = tokio::spawn({
        let gateway = gateway.clone();
        let shutdown = shutdown.clone();
        async move { gateway.serve_until(listener, shutdown).await }
    });
    gantry_daemonkit::notify_ready();
    gantry_daemonkit::shutdown_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    watcher.await.context("watch task")?;
    server.await.context("server task")??;
    Ok(())
}

/// The kernel's host name: a stable gateway id by default.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".into())
}
