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
    gantry_daemonkit::init_tracing(args.log_json, "info,h2=warn,tower=warn,hyper=warn");
    let config = AgentConfig::load(args.config.as_deref())?;
    // Two worker threads: the agent mostly waits on Docker and the network, and a
    // small footprint on the GPU server is part of its job.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            gantry_daemonkit::shutdown_signal().await;
            tracing::info!("shutting down (containers keep running)");
            signal_cancel.cancel();
        });
        daemon::run(config, cancel, gantry_daemonkit::notify_ready).await
    })
}
