//! What agents report about pods, and what a lost instance means for them.

use std::collections::BTreeMap;

use gantry_domain::endpoint::{Pod, Stage};

use super::build::{self, DEFAULT_POD_PORTS};
use super::command::PodReport;
use crate::state::{Applied, Outcome, Rejected, State, WorkloadOwner, ownership, release};

fn stage_of<'a>(state: &'a mut State, project: &str, endpoint_id: &str, stage_id: &str) -> Option<&'a mut Stage> {
    state
        .projects
        .get_mut(project)?
        .endpoints
        .values_mut()
        .find(|e| e.meta.id == endpoint_id)?
        .stages
        .values_mut()
        .find(|s| s.id == stage_id)
}

/// The node running instance `workload_id` reports its pods (the full list).
pub(super) fn report_pods(
    state: &mut State,
    index: u64,
    node_id: &str,
    workload_id: &str,
    pods: Vec<PodReport>,
    now_ms: u64,
) -> Outcome {
    ownership::check_container_owner(state, node_id, workload_id, 0)?;
    let w = state.workloads.get(workload_id).ok_or_else(|| Rejected::not_found(format!("workload '{workload_id}'")))?;
    let WorkloadOwner::StageInstance { project, endpoint_id, stage_id, index: instance } = w.owner.clone() else {
        return Err(Rejected::precondition(format!("workload '{workload_id}' is not a stage instance")));
    };
    if w.ended {
        return Err(Rejected::not_found(format!("workload '{workload_id}' (it has ended)")));
    }
    let reported: BTreeMap<&str, &PodReport> = pods.iter().map(|p| (p.pod_id.as_str(), p)).collect();
    let s = stage_of(state, &project, &endpoint_id, &stage_id)
        .ok_or_else(|| Rejected::not_found(format!("stage '{stage_id}'")))?;
    let mut routes_changed = false;
    for r in s.resources.iter_mut() {
        let routed = r.routed_generation;
        let here = |p: &Pod| p.instance_index == instance;
        if let Some(failed) = r.pods.iter().filter(|p| here(p)).find_map(|p| {
            reported
                .get(p.id.as_str())
                .filter(|rep| !rep.failed.is_empty())
                .map(|rep| (p.id.clone(), rep.failed.clone()))
        }) {
            // Nothing half-made: the resource fails and every pod of it goes.
            r.failed = Some(format!("pod {}: {}", failed.0, failed.1));
            routes_changed |= r.routed_generation.is_some();
            r.routed_generation = None;
            r.pods.clear();
            continue;
        }
        // A pod the agent no longer runs, that is not wanted any more, is gone.
        let wanted_gen = r.generation;
        let deleting = r.deleting;
        r.pods.retain(|p| {
            let unwanted = deleting || (p.generation != wanted_gen && Some(p.generation) != routed);
            !(here(p) && unwanted && !reported.contains_key(p.id.as_str()))
        });
        for p in r.pods.iter_mut().filter(|p| here(p)) {
            let ready = reported.get(p.id.as_str()).is_some_and(|rep| rep.ready);
            if p.ready != ready {
                p.ready = ready;
                routes_changed |= Some(p.generation) == routed;
            }
        }
    }
    if routes_changed {
        s.config_version = index;
    }
    s.updated_at_ms = now_ms;
    super::refresh::settle_project(state, index, &project, Some(now_ms));
    Ok(Applied::Done)
}

/// Instance `workload_id` lost its node: it ends (held until its container is
/// reported gone) and a new instance workload replaces it; its pods are made again
/// with new ids and ports.
pub(crate) fn instance_lost(state: &mut State, index: u64, workload_id: &str) {
    let Some(WorkloadOwner::StageInstance { project, endpoint_id, stage_id, index: instance }) =
        state.workloads.get(workload_id).map(|w| w.owner.clone())
    else {
        return;
    };
    release::end(state, workload_id);
    let mut used = build::used_ports(state);
    let range = state.pod_ports.unwrap_or(DEFAULT_POD_PORTS);
    let Some(mut s) = stage_of(state, &project, &endpoint_id, &stage_id).map(|s| s.clone()) else { return };
    if s.deleting || s.instances.get(instance as usize).is_none_or(|w| w != workload_id) {
        return;
    }
    let mut routes_changed = false;
    for r in s.resources.iter_mut() {
        let mut fresh = Vec::new();
        for p in r.pods.iter().filter(|p| p.instance_index == instance) {
            let Ok(port) = build::take_port(&mut used, range) else { continue };
            routes_changed |= p.ready && Some(p.generation) == r.routed_generation;
            fresh.push(Pod {
                id: Pod::pod_id(&r.id, p.generation, r.next_pod + fresh.len() as u32),
                index: r.next_pod + fresh.len() as u32,
                host_port: port,
                ready: false,
                ..p.clone()
            });
        }
        r.next_pod += fresh.len() as u32;
        r.pods.retain(|p| p.instance_index != instance);
        r.pods.extend(fresh);
    }
    if routes_changed {
        s.config_version = index;
    }
    build::add_instance(state, index, &project, &endpoint_id, &mut s, instance);
    if let Some(slot) = stage_of(state, &project, &endpoint_id, &stage_id) {
        *slot = s;
    }
    super::refresh::settle_project(state, index, &project, None);
}
