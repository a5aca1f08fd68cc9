//! Endpoint commands for the state fuzzer (`state::fuzz`): templates resolved against
//! the current state, mostly aimed at live records, some at unknown ones.

use gantry_domain::api_stats::MinuteStats;
use gantry_domain::endpoint::{EndpointSpec, StageResourceSpec, StageSpec};
use gantry_domain::{Framework, Image, ImageCoreType, Meta, Model, ModelFramework, ModelSource};
use proptest::prelude::*;
use proptest::sample::Index;

use super::EndpointCommand as C;
use super::command::{PodReport, StageError, StageMinute};
use crate::state::{CommandV1, State, WorkloadOwner};

#[derive(Debug, Clone)]
pub(crate) enum EpOp {
    Create { endpoint: usize, instances: u32, pods: u32, model: usize, gpus: u32 },
    AddStage { endpoint: usize, stage: usize, instances: u32 },
    DeleteStage { endpoint: usize, stage: usize },
    DeleteEndpoint { endpoint: usize },
    SetDefault { endpoint: usize, stage: usize },
    Redeploy { endpoint: usize, stage: usize },
    AddResource { endpoint: usize, stage: usize, path: usize, pods: u32 },
    DeleteResource { endpoint: usize, stage: usize, resource: Index },
    UpdateResource { endpoint: usize, stage: usize, resource: Index, model: usize },
    Pods { workload: Index, own_node: bool, ready: bool, fail: bool, keep: Index },
    Gateway { gateway: usize, behind: u64, error: bool, minute: u64 },
}

/// A count that is usually valid (1..=2) and sometimes 0.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0u32), 6 => 1u32..3]
}

pub(crate) fn op() -> impl Strategy<Value = EpOp> {
    let e = 0usize..3;
    let s = 0usize..3;
    prop_oneof![
        // Mostly valid forms, so the later ops find live stages; some bad ones.
        4 => (e.clone(), count(), count(), prop_oneof![6 => Just(0usize), 1 => 1usize..3], 0u32..2)
            .prop_map(|(endpoint, instances, pods, model, gpus)| EpOp::Create { endpoint, instances, pods, model, gpus }),
        2 => (e.clone(), s.clone(), 1u32..3).prop_map(|(endpoint, stage, instances)| EpOp::AddStage { endpoint, stage, instances }),
        1 => (e.clone(), s.clone()).prop_map(|(endpoint, stage)| EpOp::DeleteStage { endpoint, stage }),
        1 => e.clone().prop_map(|endpoint| EpOp::DeleteEndpoint { endpoint }),
        1 => (e.clone(), s.clone()).prop_map(|(endpoint, stage)| EpOp::SetDefault { endpoint, stage }),
        1 => (e.clone(), s.clone()).prop_map(|(endpoint, stage)| EpOp::Redeploy { endpoint, stage }),
        1 => (e.clone(), s.clone(), 0usize..3, 1u32..3).prop_map(|(endpoint, stage, path, pods)| EpOp::AddResource { endpoint, stage, path, pods }),
        1 => (e.clone(), s.clone(), any::<Index>()).prop_map(|(endpoint, stage, resource)| EpOp::DeleteResource { endpoint, stage, resource }),
        2 => (e.clone(), s.clone(), any::<Index>(), 0usize..3).prop_map(|(endpoint, stage, resource, model)| EpOp::UpdateResource { endpoint, stage, resource, model }),
        10 => (any::<Index>(), prop::bool::weighted(0.9), prop::bool::weighted(0.8), prop::bool::weighted(0.05), any::<Index>())
            .prop_map(|(workload, own_node, ready, fail, keep)| EpOp::Pods { workload, own_node, ready, fail, keep }),
        3 => (0usize..2, 0u64..3, prop::bool::weighted(0.1), 0u64..3)
            .prop_map(|(gateway, behind, error, minute)| EpOp::Gateway { gateway, behind, error, minute }),
    ]
}

/// Models (one with a serving image, one without) and the ONNX serving image.
pub(crate) fn seed(state: &mut State) {
    let image = Image {
        name: super::serving_image_name(ModelFramework::Onnx),
        reference: "serving-onnx".into(),
        core_type: ImageCoreType::Cpu,
        framework: Framework::Python,
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    state.images.insert(image.name.clone(), image);
    for (i, framework) in [ModelFramework::Onnx, ModelFramework::PyTorch].into_iter().enumerate() {
        let name = format!("m{i}");
        let meta = Meta {
            id: format!("mdl-{i}"),
            project: "p1".into(),
            name: name.clone(),
            description: String::new(),
            tags: vec![],
            created_at_ms: 0,
            updated_at_ms: 0,
            request_id: String::new(),
        };
        let model = Model {
            meta,
            framework,
            framework_version: "1".into(),
            artifact_path: "file:///m".into(),
            source: ModelSource::External,
        };
        state.projects.entry("p1".into()).or_default().models.insert(name, model);
    }
}

fn stage_spec(name: String, instances: u32, pods: u32, model: usize, gpus: u32) -> StageSpec {
    StageSpec {
        name,
        description: String::new(),
        instance_type: format!("it{gpus}"),
        instance_count: instances,
        resources: vec![StageResourceSpec {
            model: format!("m{model}"),
            resource_path: "/inference".into(),
            pod_count: pods,
            description: String::new(),
        }],
    }
}

fn stage_name(state: &State, endpoint: usize, stage: usize) -> String {
    let default = state
        .projects
        .get("p1")
        .and_then(|p| p.endpoints.get(&format!("e{endpoint}")))
        .map(|e| e.default_stage.clone());
    match stage {
        0 => default.unwrap_or_else(|| "default".into()),
        n => format!("s{n}"),
    }
}

fn resource_id(state: &State, endpoint: usize, stage: &str, i: &Index) -> String {
    let ids: Vec<String> = state
        .projects
        .get("p1")
        .and_then(|p| p.endpoints.get(&format!("e{endpoint}")))
        .and_then(|e| e.stages.get(stage))
        .map(|s| s.resources.iter().map(|r| r.id.clone()).collect())
        .unwrap_or_default();
    if ids.is_empty() { "nope".into() } else { ids[i.index(ids.len())].clone() }
}

pub(crate) fn resolve(op: &EpOp, state: &State, step: u64, now_ms: u64) -> CommandV1 {
    let p = || "p1".to_string();
    let ep = |e: usize| format!("e{e}");
    let c = match op.clone() {
        EpOp::Create { endpoint, instances, pods, model, gpus } => C::CreateEndpoint {
            project: p(),
            id: format!("ep-{step}"),
            stage_id: format!("st-{step}"),
            request_id: String::new(),
            spec: EndpointSpec {
                name: ep(endpoint),
                description: String::new(),
                tags: vec![],
                stage: stage_spec("default".into(), instances, pods, model, gpus),
            },
            now_ms,
        },
        EpOp::AddStage { endpoint, stage, instances } => C::CreateStage {
            project: p(),
            endpoint: ep(endpoint),
            stage_id: format!("st-{step}"),
            request_id: String::new(),
            spec: stage_spec(format!("s{}", stage.max(1)), instances, 1, 0, 0),
            now_ms,
        },
        EpOp::DeleteStage { endpoint, stage } => {
            C::DeleteStage { project: p(), endpoint: ep(endpoint), stage: stage_name(state, endpoint, stage), now_ms }
        }
        EpOp::DeleteEndpoint { endpoint } => C::DeleteEndpoint { project: p(), name: ep(endpoint), now_ms },
        EpOp::SetDefault { endpoint, stage } => C::SetDefaultStage {
            project: p(),
            endpoint: ep(endpoint),
            stage: stage_name(state, endpoint, stage),
            now_ms,
        },
        EpOp::Redeploy { endpoint, stage } => {
            C::RedeployStage { project: p(), endpoint: ep(endpoint), stage: stage_name(state, endpoint, stage), now_ms }
        }
        EpOp::AddResource { endpoint, stage, path, pods } => C::AddStageResource {
            project: p(),
            endpoint: ep(endpoint),
            stage: stage_name(state, endpoint, stage),
            spec: StageResourceSpec {
                model: "m0".into(),
                resource_path: format!("/r{path}"),
                pod_count: pods,
                description: String::new(),
            },
            now_ms,
        },
        EpOp::DeleteResource { endpoint, stage, resource } => {
            let stage = stage_name(state, endpoint, stage);
            let resource_id = resource_id(state, endpoint, &stage, &resource);
            C::DeleteStageResource { project: p(), endpoint: ep(endpoint), stage, resource_id, now_ms }
        }
        EpOp::UpdateResource { endpoint, stage, resource, model } => {
            let stage = stage_name(state, endpoint, stage);
            let resource_id = resource_id(state, endpoint, &stage, &resource);
            C::UpdateStageResource {
                project: p(),
                endpoint: ep(endpoint),
                stage,
                resource_id,
                model: format!("m{model}"),
                now_ms,
            }
        }
        EpOp::Pods { workload, own_node, ready, fail, keep } => {
            pods(state, &workload, own_node, ready, fail, &keep, now_ms)
        }
        EpOp::Gateway { gateway, behind, error, minute } => {
            let stages: Vec<String> = state
                .projects
                .values()
                .flat_map(|p| p.endpoints.values())
                .flat_map(|e| e.stages.values().map(|s| s.id.clone()))
                .collect();
            let errors = match stages.first() {
                Some(s) if error => vec![StageError { stage_id: s.clone(), config_version: step, error: "x".into() }],
                _ => vec![],
            };
            let minutes = stages
                .iter()
                .map(|s| StageMinute {
                    stage_id: s.clone(),
                    minute_ms: (now_ms / 60_000).saturating_sub(minute) * 60_000,
                    stats: one_call(),
                })
                .collect();
            C::ReportGateway {
                gateway_id: format!("g{gateway}"),
                applied_version: step.saturating_sub(behind),
                errors,
                minutes,
                now_ms,
            }
        }
    };
    CommandV1::Endpoint(c)
}

fn pods(state: &State, workload: &Index, own_node: bool, ready: bool, fail: bool, keep: &Index, now_ms: u64) -> C {
    // A report from its own node is about a placed instance; the others hit anything.
    let instances: Vec<(&String, &crate::state::Workload)> = state
        .workloads
        .iter()
        .filter(|(_, w)| matches!(w.owner, WorkloadOwner::StageInstance { .. }))
        .filter(|(_, w)| !own_node || w.placement.is_some())
        .collect();
    if instances.is_empty() {
        return C::ReportPods { node_id: "node-0".into(), workload_id: "nope".into(), pods: vec![], now_ms };
    }
    let (id, w) = instances[workload.index(instances.len())];
    let node_id = match w.placement.as_ref().and_then(|p| p.assignments.first()) {
        Some(a) if own_node => a.node_id.clone(),
        _ => "node-9".into(),
    };
    let WorkloadOwner::StageInstance { stage_id, index, .. } = &w.owner else { unreachable!("filtered") };
    let pod_ids: Vec<String> = state
        .projects
        .values()
        .flat_map(|p| p.endpoints.values())
        .flat_map(|e| e.stages.values())
        .filter(|s| &s.id == stage_id)
        .flat_map(|s| s.pods().filter(|p| p.instance_index == *index).map(|p| p.id.clone()).collect::<Vec<_>>())
        .collect();
    // Ready reports list every pod; the others sometimes leave pods out (the agent no
    // longer runs them).
    let kept = if ready || pod_ids.is_empty() { pod_ids.len() } else { keep.index(pod_ids.len() + 1) };
    let pods = pod_ids
        .into_iter()
        .take(kept.max(1))
        .map(|pod_id| PodReport { pod_id, ready, failed: if fail { "artifact missing".into() } else { String::new() } })
        .collect();
    C::ReportPods { node_id, workload_id: id.clone(), pods, now_ms }
}

/// A minute with one fast call.
fn one_call() -> MinuteStats {
    let mut stats = MinuteStats::default();
    stats.record(1_000, false);
    stats
}
