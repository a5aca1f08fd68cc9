//! The HTTP gateway inside the scheduler process (single-node default). It follows this
//! replica's routes through `GatewayService` over loopback, exactly as a
//! `gantry-gateway` daemon follows a cluster's replicas, so there is one code path.

use std::sync::Arc;

use gantry_gateway::{FileLogSink, Gateway, GatewayConfig, LogSink, WatchConfig, watch};
use tokio_util::sync::CancellationToken;

use crate::bootstrap::Secrets;
use crate::config::Config;

/// What the gateway needs of the replica's secrets: its token and the CA to trust.
pub struct Access {
    token: Option<String>,
    ca_cert: Option<std::path::PathBuf>,
}

impl Access {
    pub fn of(secrets: &Secrets) -> Access {
        Access {
            token: secrets.gateway_token.as_ref().map(|t| t.expose().to_owned()),
            ca_cert: secrets.tls.as_ref().map(|t| t.ca_cert.clone()),
        }
    }
}

/// The name the dev replica certificate carries (the embedded agent checks the same).
const REPLICA_SERVER_NAME: &str = "localhost";

/// Serves callers on `[gateway] listen` until `cancel`. A port that cannot be bound or
/// a log directory that cannot be made leaves the scheduler serving without a gateway.
pub async fn run(config: Config, access: Access, cancel: CancellationToken) {
    let log_dir = config.gateway.inference_log_dir.clone().unwrap_or_else(|| {
        config
            .replica
            .data_dir
            .parent()
            .map(|p| p.join("inference-logs"))
            .unwrap_or_else(|| config.replica.data_dir.join("inference-logs"))
    });
    let log_sink: Option<Arc<dyn LogSink>> = match FileLogSink::new(log_dir.clone()) {
        Ok(sink) => Some(Arc::new(sink)),
        Err(e) => {
            tracing::warn!(dir = %log_dir.display(), error = %e, "inference logs are not kept");
            None
        }
    };
    let gateway = Gateway::new(GatewayConfig { log_sink, ..GatewayConfig::default() });
    let scheme = if access.ca_cert.is_some() { "https" } else { "http" };
    let mut watch_config =
        WatchConfig::new(vec![format!("{scheme}://{}", config.replica.listen_api)], "embedded".into());
    watch_config.token = access.token;
    if let Some(ca_cert) = &access.ca_cert {
        match gantry_pki::client_tls_ca_only(ca_cert, REPLICA_SERVER_NAME) {
            Ok(t) => watch_config.tls = Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "embedded gateway not started: cannot read the CA");
                return;
            }
        }
    }
    let listener = match tokio::net::TcpListener::bind(config.gateway.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(listen = %config.gateway.listen, error = %e, "embedded gateway not started");
            return;
        }
    };
    tracing::info!(listen = %config.gateway.listen, "embedded gateway serving");
    let watcher = tokio::spawn(watch(gateway.clone(), watch_config, cancel.clone()));
    if let Err(e) = gateway.serve_until(listener, cancel).await {
        tracing::warn!(error = %e, "embedded gateway stopped");
    }
    let _ = watcher.await;
}
