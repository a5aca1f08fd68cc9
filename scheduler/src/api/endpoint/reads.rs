//! EndpointService reads: answered from this replica's state after the read barrier.

use gantry_domain::api_stats::MinuteStats;
use gantry_domain::endpoint as d;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{routes, wire};
use crate::api::context::{ApiContext, now_ms};
use crate::state::State;

/// Statistics windows: default one hour, at most the 24 h kept.
pub const STATS_MINUTES_DEFAULT: u32 = 60;
pub const STATS_MINUTES_MAX: u32 = 1440;

fn endpoint<'a>(state: &'a State, project: &str, name: &str) -> Result<&'a d::Endpoint, Status> {
    state
        .project(project)
        .and_then(|p| p.endpoints.get(name))
        .ok_or_else(|| Status::not_found(format!("endpoint '{name}' not found")))
}

fn stage<'a>(state: &'a State, project: &str, e: &str, s: &str) -> Result<(&'a d::Endpoint, &'a d::Stage), Status> {
    let e = endpoint(state, project, e)?;
    let s = e
        .stages
        .get(s)
        .ok_or_else(|| Status::not_found(format!("stage '{s}' of endpoint '{}' not found", e.meta.name)))?;
    Ok((e, s))
}

pub async fn get_endpoint(ctx: &ApiContext, req: Request<GetEndpointRequest>) -> Result<Response<Endpoint>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(req.get_ref().read.as_ref()).await?;
    let r = req.get_ref();
    let mut out = {
        let state = ctx.raft.state();
        wire::endpoint(&state, &ctx.gateway_url, endpoint(&state, &r.project, &r.name)?, now_ms())
    };
    wire::fill_usage_all(&ctx.hub, &mut out);
    Ok(Response::new(out))
}

pub async fn list_endpoints(
    ctx: &ApiContext,
    req: Request<ListEndpointsRequest>,
) -> Result<Response<ListEndpointsResponse>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(req.get_ref().read.as_ref()).await?;
    let now = now_ms();
    let mut endpoints: Vec<Endpoint> = {
        let state = ctx.raft.state();
        state
            .project(&req.get_ref().project)
            .map(|p| p.endpoints.values().map(|e| wire::endpoint(&state, &ctx.gateway_url, e, now)).collect())
            .unwrap_or_default()
    };
    for e in endpoints.iter_mut() {
        wire::fill_usage_all(&ctx.hub, e);
    }
    Ok(Response::new(ListEndpointsResponse { endpoints }))
}

pub async fn get_stage(ctx: &ApiContext, req: Request<GetStageRequest>) -> Result<Response<Stage>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(req.get_ref().read.as_ref()).await?;
    let r = req.get_ref();
    let mut out = {
        let state = ctx.raft.state();
        let (e, s) = stage(&state, &r.project, &r.endpoint, &r.stage)?;
        wire::stage(&state, &ctx.gateway_url, e, s, now_ms())
    };
    wire::fill_usage(&ctx.hub, &mut out);
    Ok(Response::new(out))
}

pub async fn list_stages(
    ctx: &ApiContext,
    req: Request<ListStagesRequest>,
) -> Result<Response<ListStagesResponse>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(req.get_ref().read.as_ref()).await?;
    let r = req.get_ref();
    let now = now_ms();
    let mut stages: Vec<Stage> = {
        let state = ctx.raft.state();
        let e = endpoint(&state, &r.project, &r.endpoint)?;
        e.stages.values().map(|s| wire::stage(&state, &ctx.gateway_url, e, s, now)).collect()
    };
    for s in stages.iter_mut() {
        wire::fill_usage(&ctx.hub, s);
    }
    Ok(Response::new(ListStagesResponse { stages }))
}

pub async fn get_gateway_config(
    ctx: &ApiContext,
    req: Request<GetGatewayConfigRequest>,
) -> Result<Response<GatewayConfig>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(None).await?;
    let r = req.get_ref();
    let state = ctx.raft.state();
    let (e, s) = stage(&state, &r.project, &r.endpoint, &r.stage)?;
    let mut out = Vec::new();
    if let Some(sr) = routes::stage_routes(&state, e, s) {
        for res in sr.resources {
            let mut paths = vec![format!("/s/{}{}", s.id, res.resource_path)];
            if sr.is_default {
                paths.push(format!("/e/{}{}", e.meta.id, res.resource_path));
            }
            for path in paths {
                out.push(GatewayRoute {
                    path,
                    resource_id: res.resource_id.clone(),
                    model: res.model.clone(),
                    backends: res.backends.clone(),
                });
            }
        }
    }
    let gateways = s
        .gateways
        .iter()
        .map(|(id, g)| GatewayReport {
            gateway_id: id.clone(),
            applied_version: g.applied_version,
            error: g.error.as_ref().filter(|(v, _)| *v >= s.config_version).map(|(_, e)| e.clone()).unwrap_or_default(),
            reported_at_ms: g.reported_at_ms,
        })
        .collect();
    Ok(Response::new(GatewayConfig {
        stage_id: s.id.clone(),
        version: s.config_version,
        routes: out,
        gateways,
        gateway_status: wire::gateway_status(s, now_ms()),
    }))
}

pub async fn get_stage_stats(
    ctx: &ApiContext,
    req: Request<GetStageStatsRequest>,
) -> Result<Response<StageStats>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    let r = req.get_ref();
    let minutes = if r.minutes == 0 { STATS_MINUTES_DEFAULT } else { r.minutes };
    if minutes > STATS_MINUTES_MAX {
        return Err(Status::invalid_argument(format!("minutes: must be at most {STATS_MINUTES_MAX} (24 h are kept)")));
    }
    ctx.read_barrier(None).await?;
    let state = ctx.raft.state();
    let (_, s) = stage(&state, &r.project, &r.endpoint, &r.stage)?;
    let since = now_ms().saturating_sub(u64::from(minutes) * 60_000);
    let out = s
        .stats
        .range(since..)
        .map(|(minute, by_gateway)| {
            let mut sum = MinuteStats::default();
            for m in by_gateway.values() {
                sum.merge(m);
            }
            StatsMinute {
                minute_ms: *minute,
                calls: sum.calls,
                errors: sum.errors,
                p50_us: sum.percentile_us(0.5).unwrap_or(0),
                p90_us: sum.percentile_us(0.9).unwrap_or(0),
                p99_us: sum.percentile_us(0.99).unwrap_or(0),
            }
        })
        .collect();
    Ok(Response::new(StageStats { minutes: out }))
}

pub async fn list_api_keys(
    ctx: &ApiContext,
    req: Request<ListApiKeysRequest>,
) -> Result<Response<ListApiKeysResponse>, Status> {
    ctx.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
    ctx.read_barrier(None).await?;
    let r = req.get_ref();
    let state = ctx.raft.state();
    let e = endpoint(&state, &r.project, &r.endpoint)?;
    let keys = e.api_keys.iter().map(|k| wire::api_key(&e.meta.name, k, String::new())).collect();
    Ok(Response::new(ListApiKeysResponse { keys }))
}
