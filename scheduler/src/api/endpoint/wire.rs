//! Endpoint records as the wire shows them, with URLs and derived gateway statuses.

use gantry_domain::endpoint::{self as d, derive};
use gantry_proto::convert;
use gantry_proto::v1 as pb;

use crate::state::State;

/// `{gateway}/s/{stage id}`: a stage's own URL.
pub fn stage_url(gateway: &str, stage_id: &str) -> String {
    format!("{}/s/{stage_id}", gateway.trim_end_matches('/'))
}

/// `{gateway}/e/{endpoint id}`: always answered by the endpoint's default stage.
pub fn endpoint_url(gateway: &str, endpoint_id: &str) -> String {
    format!("{}/e/{endpoint_id}", gateway.trim_end_matches('/'))
}

pub fn gateway_status(s: &d::Stage, now_ms: u64) -> String {
    derive::gateway_status(s.config_version, s.gateways.values(), now_ms).as_str().to_string()
}

pub fn stage(state: &State, gateway: &str, e: &d::Endpoint, s: &d::Stage, now_ms: u64) -> pb::Stage {
    let url = stage_url(gateway, &s.id);
    let resources: Vec<pb::StageResource> = s
        .resources
        .iter()
        .map(|r| pb::StageResource {
            id: r.id.clone(),
            model: r.model.clone(),
            model_id: r.model_id.clone(),
            resource_path: r.resource_path.clone(),
            pod_count: r.pod_count,
            description: r.description.clone(),
            status: r.status.as_str().to_string(),
            status_reason: r.status_reason.clone(),
            healthy_pods: r.pods.iter().filter(|p| p.ready).count() as u32,
            total_pods: r.pods.len() as u32,
            url: format!("{url}{}", r.resource_path),
        })
        .collect();
    let instances: Vec<pb::StageInstance> = s
        .instances
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let node_id = state
                .workloads
                .get(w)
                .and_then(|w| w.placement.as_ref())
                .and_then(|p| p.assignments.first())
                .map(|a| a.node_id.clone())
                .unwrap_or_default();
            let here = s.pods().filter(|p| p.instance_index == i as u32);
            let (healthy, total) = here.fold((0, 0), |(h, t), p| (h + u32::from(p.ready), t + 1));
            pb::StageInstance {
                node_id,
                workload_id: w.clone(),
                healthy_pods: healthy,
                total_pods: total,
                ..Default::default()
            }
        })
        .collect();
    let running_nodes = instances.iter().filter(|i| !i.node_id.is_empty()).count() as u32;
    let monitoring_disabled_reason = if s.ever_active {
        String::new()
    } else {
        "monitoring and statistics are shown once the stage is ACTIVE".to_string()
    };
    pb::Stage {
        id: s.id.clone(),
        endpoint_id: e.meta.id.clone(),
        endpoint: e.meta.name.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        is_default: e.default_stage == s.name,
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        status: s.status.as_str().to_string(),
        status_reason: s.status_reason.clone(),
        gateway_status: gateway_status(s, now_ms),
        url,
        healthy_pods: resources.iter().map(|r| r.healthy_pods).sum(),
        total_pods: resources.iter().map(|r| r.total_pods).sum(),
        resources,
        instances,
        running_nodes,
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
        monitoring_disabled_reason,
    }
}

pub fn endpoint(state: &State, gateway: &str, e: &d::Endpoint, now_ms: u64) -> pb::Endpoint {
    let default = e.stages.get(&e.default_stage);
    pb::Endpoint {
        id: e.meta.id.clone(),
        project: e.meta.project.clone(),
        name: e.meta.name.clone(),
        description: e.meta.description.clone(),
        tags: convert::tags_to_wire(&e.meta.tags),
        status: e.status.as_str().to_string(),
        status_reason: e.status_reason.clone(),
        default_stage: e.default_stage.clone(),
        url: endpoint_url(gateway, &e.meta.id),
        gateway_status: default
            .map_or_else(|| d::GatewayStatus::NotFoundStage.as_str().to_string(), |s| gateway_status(s, now_ms)),
        stages: e.stages.values().map(|s| stage(state, gateway, e, s, now_ms)).collect(),
        created_at_ms: e.meta.created_at_ms,
        updated_at_ms: e.meta.updated_at_ms,
    }
}

/// Fills each placed instance's CPU/memory/GPU use from its node's latest heartbeat
/// (the node's usage: an instance is the only stage instance on its node).
pub fn fill_usage(hub: &crate::agents::AgentHub, s: &mut pb::Stage) {
    for i in s.instances.iter_mut().filter(|i| !i.node_id.is_empty()) {
        let Some(m) = hub.health(&i.node_id).metrics else { continue };
        i.cpu_percent = m.cpu_pct;
        i.memory_used_mib = m.memory_used_mib;
        if !m.gpus.is_empty() {
            i.gpu_percent = m.gpus.iter().map(|g| f64::from(g.utilization_pct)).sum::<f64>() / m.gpus.len() as f64;
        }
    }
}

pub fn fill_usage_all(hub: &crate::agents::AgentHub, e: &mut pb::Endpoint) {
    for s in e.stages.iter_mut() {
        fill_usage(hub, s);
    }
}

pub fn resource_spec(r: &pb::StageResourceSpec) -> d::StageResourceSpec {
    d::StageResourceSpec {
        model: r.model.clone(),
        resource_path: r.resource_path.clone(),
        pod_count: r.pod_count,
        description: r.description.clone(),
    }
}

/// The stage form; an empty name is the default stage's name.
pub fn stage_spec(s: &pb::StageSpec) -> d::StageSpec {
    let name = if s.name.is_empty() { d::spec::DEFAULT_STAGE_NAME.to_string() } else { s.name.clone() };
    d::StageSpec {
        name,
        description: s.description.clone(),
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        resources: s.resources.iter().map(resource_spec).collect(),
    }
}

pub fn api_key(endpoint: &str, k: &d::ApiKey, secret: String) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.clone(),
        endpoint: endpoint.to_string(),
        description: k.description.clone(),
        secret,
        created_at_ms: k.created_at_ms,
    }
}
