//! What every Gantry daemon (`gantry-scheduler`, `gantry-agent`) does the same way:
//! `tracing` logs (text for people, JSON for journald and log shippers, filtered by
//! `GANTRY_LOG`), graceful shutdown on SIGTERM or Ctrl-C, and systemd `Type=notify`
//! readiness.

/// Installs the global `tracing` subscriber. `GANTRY_LOG` (an `EnvFilter` directive)
/// overrides `default_filter`.
pub fn init_tracing(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    if json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}

/// Resolves on SIGTERM (systemd's stop) or Ctrl-C.
pub async fn shutdown_signal() {
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

/// Tells systemd the service is ready (`Type=notify`); a no-op outside systemd.
pub fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}
