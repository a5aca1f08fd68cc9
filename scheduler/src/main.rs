//! `gantry-scheduler`: one replica of the control plane.

use std::path::PathBuf;

use clap::Parser;
use gantry_scheduler::config::Config;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Gantry scheduler replica")]
struct Args {
    /// TOML config file; without it, the embedded single-node defaults apply.
    #[arg(long, short, env = "GANTRY_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// Plain TCP, no TLS (local experiments only).
    #[arg(long)]
    insecure_dev: bool,
    /// Log as JSON (for journald / log shippers).
    #[arg(long, env = "GANTRY_LOG_JSON")]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    gantry_pki::install_crypto_provider();
    let args = Args::parse();
    gantry_daemonkit::init_tracing(args.log_json, "info,raft=warn,h2=warn,tower=warn");
    let mut config = Config::load(args.config.as_deref())?;
    if args.insecure_dev {
        config.tls.insecure_dev = true;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            gantry_daemonkit::shutdown_signal().await;
            tracing::info!("shutting down");
            signal_cancel.cancel();
        });
        // Type=notify: systemd considers the unit started once both listeners accept.
        gantry_scheduler::server::run(config, cancel, gantry_daemonkit::notify_ready).await
    })
}
