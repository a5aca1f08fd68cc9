//! Following the scheduler: stream route tables from any replica
//! (`GatewayService/WatchRoutes`) into the [`Gateway`], and report back the applied
//! version, deploy errors and finished minutes (`ReportGateway`).
//!
//! ```text
//!   replicas[i] ──WatchRoutes──▶ apply ──▶ Gateway      (stream ends/fails: backoff,
//!   replicas[i] ◀─ReportGateway── every report_every     next replica; routes kept)
//! ```

use std::time::Duration;

use gantry_proto::v1;
use gantry_proto::v1::gateway_service_client::GatewayServiceClient;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::gateway::Gateway;
use crate::stats::now_ms;

/// How the gateway finds and talks to the scheduler.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Scheduler replica URLs (`https://host:port`); any of them serves the routes.
    pub endpoints: Vec<String>,
    pub tls: Option<ClientTlsConfig>,
    /// The cluster's gateway token, sent as `authorization: Bearer …`.
    pub token: Option<String>,
    /// Stable id of this gateway process.
    pub gateway_id: String,
    pub report_every: Duration,
    /// First reconnect delay; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl WatchConfig {
    pub fn new(endpoints: Vec<String>, gateway_id: String) -> WatchConfig {
        WatchConfig {
            endpoints,
            tls: None,
            token: None,
            gateway_id,
            report_every: Duration::from_secs(10),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Why following a replica stopped (the loop moves to the next one).
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("invalid scheduler endpoint {0}: {1}")]
    Endpoint(String, tonic::transport::Error),
    #[error("connecting failed: {0}")]
    Connect(tonic::transport::Error),
    #[error("call failed: {0}")]
    Status(#[from] tonic::Status),
    #[error("the route stream ended")]
    Ended,
}

/// Follows the scheduler until `cancel`; never returns early: every failure is retried
/// on the next replica after a backoff, with the last applied routes kept meanwhile.
pub async fn watch(gateway: Gateway, config: WatchConfig, cancel: CancellationToken) {
    if config.endpoints.is_empty() {
        tracing::warn!("no scheduler endpoints: routes will never change");
        cancel.cancelled().await;
        return;
    }
    let token = config.token.as_deref().and_then(|t| MetadataValue::try_from(format!("Bearer {}", t.trim())).ok());
    let mut backoff = config.min_backoff;
    let mut replica = 0usize;
    loop {
        let endpoint = &config.endpoints[replica % config.endpoints.len()];
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = follow(&gateway, &config, endpoint, token.as_ref(), &mut backoff) => r,
        };
        if let Err(e) = result {
            tracing::warn!(scheduler = %endpoint, error = %e, retry_in = ?backoff, "route watch interrupted");
        }
        replica += 1;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// One connection to one replica: stream tables and report periodically until it fails.
async fn follow(
    gateway: &Gateway,
    config: &WatchConfig,
    url: &str,
    token: Option<&MetadataValue<Ascii>>,
    backoff: &mut Duration,
) -> Result<(), WatchError> {
    let mut endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| WatchError::Endpoint(url.into(), e))?;
    if let Some(tls) = &config.tls {
        endpoint = endpoint.tls_config(tls.clone()).map_err(|e| WatchError::Endpoint(url.into(), e))?;
    }
    let channel: Channel =
        endpoint.connect_timeout(Duration::from_secs(5)).connect().await.map_err(WatchError::Connect)?;
    let mut client = GatewayServiceClient::new(channel);
    let mut stream = client
        .watch_routes(with_token(v1::WatchRoutesRequest { gateway_id: config.gateway_id.clone() }, token))
        .await?
        .into_inner();
    tracing::info!(scheduler = %url, "watching routes");
    let mut ticker = tokio::time::interval(config.report_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            table = stream.next() => match table {
                Some(Ok(table)) => {
                    *backoff = config.min_backoff;
                    match gateway.apply(&table) {
                        Ok(errors) => {
                            tracing::info!(version = table.version, failed_stages = errors.len(), "routes applied");
                            // Report at once: the scheduler waits for it to call the stage ACTIVE.
                            report(gateway, config, &mut client, token).await?;
                        }
                        Err(stale) => tracing::debug!(%stale, "route table ignored"),
                    }
                }
                Some(Err(status)) => return Err(status.into()),
                None => return Err(WatchError::Ended),
            },
            _ = ticker.tick() => report(gateway, config, &mut client, token).await?,
        }
    }
}

/// Sends the applied version, deploy errors and finished minutes; minutes go back into
/// the gateway when the call fails.
async fn report(
    gateway: &Gateway,
    config: &WatchConfig,
    client: &mut GatewayServiceClient<Channel>,
    token: Option<&MetadataValue<Ascii>>,
) -> Result<(), WatchError> {
    let Some(applied_version) = gateway.applied_version() else { return Ok(()) };
    let minutes = gateway.take_finished_minutes();
    let request = v1::ReportGatewayRequest {
        gateway_id: config.gateway_id.clone(),
        applied_version,
        errors: gateway.deploy_errors(),
        minutes: minutes.clone(),
    };
    match client.report_gateway(with_token(request, token)).await {
        Ok(_) => Ok(()),
        Err(status) => {
            gateway.inner.stats.restore(minutes, now_ms());
            Err(status.into())
        }
    }
}

fn with_token<T>(message: T, token: Option<&MetadataValue<Ascii>>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        request.metadata_mut().insert("authorization", t.clone());
    }
    request
}
