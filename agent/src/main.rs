//! `gantry-agent`: the node agent (one per GPU/CPU server).

use std::path::PathBuf;

use clap::Parser;
use gantry_agent::daemon::{self, AgentConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Gantry node agent")]
struct Args {
    /// TOML config file; without it, the defaults for a local single-node cluster apply.
    #[arg(long, short, env = "GANTRY_AGENT_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// Log as JSON (for journald / log shippers).
    #[arg(long, env = "GANTRY_LOG_JSON")]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    gantry_pki::install_crypto_provider();
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,h2=warn,tower=warn,hyper=warn"));
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = AgentConfig::load(args.config.as_deref())?;
    // Two worker threads: the agent mostly waits on Docker and the network, and a
    // small footprint on the GPU server is part of its job.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down (containers keep running)");
            signal_cancel.cancel();
        });
        daemon::run(config, cancel, || {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        })
        .await
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
