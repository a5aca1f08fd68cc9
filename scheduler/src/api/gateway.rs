//! GatewayService: the route table to every gateway process, and what they report.
//!
//! Callers present a cluster-wide token (the cluster admin token or a dedicated `*`
//! token for the gateways; docs/serving.md). Served by every replica from its local
//! state: a gateway keeps routing with a follower while there is no leader.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_domain::api_stats::MinuteStats;
use gantry_proto::v1::gateway_service_server::GatewayService;
use gantry_proto::v1::*;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::context::{ApiContext, now_ms};
use super::endpoint::routes::route_table;
use crate::state::CommandV1;
use crate::state::endpoints::{EndpointCommand, StageError as DStageError, StageMinute as DStageMinute};

pub struct GatewayApi {
    pub ctx: ApiContext,
    /// SHA-256 of each project's token, by project (tokens are configuration, not
    /// replicated state).
    pub project_token_sha256: BTreeMap<String, String>,
}

/// A report that changes nothing but the time is replicated at most this often (the
/// liveness window is 30 s).
const REFRESH_MS: u64 = 10_000;

#[tonic::async_trait]
impl GatewayService for GatewayApi {
    type WatchRoutesStream = ReceiverStream<Result<RouteTable, Status>>;

    async fn watch_routes(
        &self,
        req: Request<WatchRoutesRequest>,
    ) -> Result<Response<Self::WatchRoutesStream>, Status> {
        self.ctx.auth.authenticate(&req)?.authorize_cluster()?;
        gantry_domain::validate::non_empty_bounded("gateway_id", &req.get_ref().gateway_id, 253)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let ctx = self.ctx.clone();
        let tokens = self.project_token_sha256.clone();
        tokio::spawn(async move {
            let mut applied = ctx.raft.applied_watch();
            let mut last: Option<RouteTable> = None;
            loop {
                let table = route_table(&ctx.raft.state(), tokens.clone());
                // Only a change of content is sent (the version moves on every entry).
                let changed = last.as_ref().is_none_or(|l| RouteTable { version: table.version, ..l.clone() } != table);
                if changed {
                    if tx.send(Ok(table.clone())).await.is_err() {
                        return;
                    }
                    last = Some(table);
                }
                if applied.changed().await.is_err() {
                    return;
                }
                // Coalesce bursts of applies into one table.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn report_gateway(
        &self,
        req: Request<ReportGatewayRequest>,
    ) -> Result<Response<ReportGatewayResponse>, Status> {
        self.ctx.auth.authenticate(&req)?.authorize_cluster()?;
        let r = req.into_inner();
        let now = now_ms();
        if !self.worth_replicating(&r, now) {
            return Ok(Response::new(ReportGatewayResponse {}));
        }
        let errors = r
            .errors
            .into_iter()
            .map(|e| DStageError { stage_id: e.stage_id, config_version: e.config_version, error: e.error })
            .collect();
        let minutes = r
            .minutes
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let stats = MinuteStats::from_parts(m.calls, m.errors, m.latency_buckets).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "minutes[{i}].latency_buckets: must have {} buckets (gantry_domain::api_stats)",
                        gantry_domain::api_stats::LATENCY_BUCKETS
                    ))
                })?;
                Ok(DStageMinute { stage_id: m.stage_id, minute_ms: m.minute_ms, stats })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let cmd = EndpointCommand::ReportGateway {
            gateway_id: r.gateway_id,
            applied_version: r.applied_version,
            errors,
            minutes,
            now_ms: now,
        };
        self.ctx.write(CommandV1::Endpoint(cmd)).await?;
        Ok(Response::new(ReportGatewayResponse {}))
    }
}

impl GatewayApi {
    /// Replicate only when something changed: minutes to add, an error, a newer
    /// version somewhere, or the last replicated report is getting old.
    fn worth_replicating(&self, r: &ReportGatewayRequest, now: u64) -> bool {
        if !r.minutes.is_empty() || !r.errors.is_empty() {
            return true;
        }
        let state = self.ctx.raft.state();
        let stages = state.projects.values().flat_map(|p| p.endpoints.values()).flat_map(|e| e.stages.values());
        for s in stages {
            match s.gateways.get(&r.gateway_id) {
                Some(g)
                    if g.applied_version == r.applied_version
                        && g.error.is_none()
                        && now.saturating_sub(g.reported_at_ms) < REFRESH_MS => {}
                _ => return true,
            }
        }
        // Every stage already has this report (or there are no stages to record it on).
        false
    }
}
