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
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,raft=warn,h2=warn,tower=warn"));
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let mut config = Config::load(args.config.as_deref())?;
    if args.insecure_dev {
        config.tls.insecure_dev = true;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            signal_cancel.cancel();
        });
        gantry_scheduler::server::run(config, cancel, || {
            // Type=notify: systemd considers the unit started once both listeners accept.
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        })
        .await
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
