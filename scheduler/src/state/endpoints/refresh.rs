//! After every endpoint change: routes switch to a ready generation, what waited for
//! the gateways or for containers to go is removed, statuses are derived again.

use gantry_domain::endpoint::derive;
use gantry_domain::endpoint::{Endpoint, Stage, StageStatus};

use crate::state::{State, WorkloadOwner, release};

/// Per instance of `stage`: is its current workload placed (and not ended)?
pub(super) fn placed(state: &State, stage: &Stage) -> Vec<bool> {
    stage.instances.iter().map(|w| state.workloads.get(w).is_some_and(|w| w.placement.is_some() && !w.ended)).collect()
}

/// Settles the project that owns workload `workload_id` if it is a stage instance
/// (after a placement, a pending reason or a container gone).
pub(crate) fn refresh_instance_owner(state: &mut State, index: u64, owner: &WorkloadOwner) {
    if let WorkloadOwner::StageInstance { project, .. } = owner {
        let project = project.clone();
        settle_project(state, index, &project, None);
    }
}

/// Settles every endpoint of `project`. `now_ms` is the command's time when it has one:
/// without it, nothing that depends on gateway liveness moves.
pub(crate) fn settle_project(state: &mut State, index: u64, project: &str, now_ms: Option<u64>) {
    let names: Vec<String> = state.project(project).map(|p| p.endpoints.keys().cloned().collect()).unwrap_or_default();
    for name in names {
        let Some(mut e) = state.projects.get_mut(project).and_then(|p| p.endpoints.remove(&name)) else { continue };
        let to_end = settle_endpoint(state, &mut e, index, now_ms);
        for w in to_end {
            release::end(state, &w);
        }
        let gone = e.deleting && e.stages.is_empty();
        if !gone && let Some(p) = state.projects.get_mut(project) {
            p.endpoints.insert(name, e);
        }
    }
}

/// Returns the instance workloads to end (stages retired now).
fn settle_endpoint(state: &State, e: &mut Endpoint, index: u64, now_ms: Option<u64>) -> Vec<String> {
    let mut to_end = Vec::new();
    for s in e.stages.values_mut() {
        switch_ready_generations(s, index);
        if let Some(now) = now_ms {
            retire_old_generations(s, now);
            if let Some(v) = s.retire_after
                && derive::all_live_applied(v, s.gateways.values(), now)
            {
                s.retire_after = None;
                s.deleting = true;
                s.config_version = index;
                to_end.extend(s.instances.iter().cloned());
            }
        }
        s.resources.retain(|r| !(r.deleting && r.pods.is_empty()));
    }
    // A deleting stage goes when no instance workload of it is left (every container
    // reported gone); ones ended just now are still held.
    e.stages.retain(|_, s| {
        !(s.deleting
            && s.instances.iter().all(|w| !state.workloads.contains_key(w))
            && !to_end.iter().any(|w| s.instances.contains(w)))
    });
    for s in e.stages.values_mut() {
        let placed = placed(state, s);
        for r in s.resources.iter_mut() {
            (r.status, r.status_reason) = derive::resource_status(r, &placed);
        }
        let (status, mut reason) = derive::stage_status(s, &placed);
        if status == StageStatus::CreateRequested
            && let Some(why) = s
                .instances
                .iter()
                .filter_map(|w| state.workloads.get(w))
                .map(|w| &w.pending_reason)
                .find(|r| !r.is_empty())
        {
            reason = why.clone();
        }
        if status == StageStatus::Active {
            s.ever_active = true;
        }
        (s.status, s.status_reason) = (status, reason);
    }
    let default = e.stages.get(&e.default_stage).map(|s| s.status);
    let others: Vec<StageStatus> =
        e.stages.iter().filter(|(n, _)| **n != e.default_stage).map(|(_, s)| s.status).collect();
    e.status = derive::endpoint_status(e.deleting, default, &others);
    e.status_reason = e.stages.get(&e.default_stage).map(|s| s.status_reason.clone()).unwrap_or_default();
    to_end
}

/// A resource whose newest generation is whole and ready is routed to it.
fn switch_ready_generations(s: &mut Stage, index: u64) {
    let mut changed = false;
    for r in s.resources.iter_mut().filter(|r| !r.deleting && r.failed.is_none()) {
        if r.routed_generation == Some(r.generation) {
            continue;
        }
        let newest: Vec<bool> = r.newest_pods().map(|p| p.ready).collect();
        if newest.len() as u32 == r.pod_count && newest.iter().all(|ready| *ready) {
            r.routed_generation = Some(r.generation);
            r.switched_at = index;
            changed = true;
        }
    }
    if changed {
        s.config_version = index;
    }
}

/// Pods of generations older than the routed one go once every live gateway applied
/// the switch.
fn retire_old_generations(s: &mut Stage, now_ms: u64) {
    let gateways = &s.gateways;
    for r in s.resources.iter_mut() {
        let Some(routed) = r.routed_generation else { continue };
        if r.pods.iter().any(|p| p.generation < routed)
            && derive::all_live_applied(r.switched_at, gateways.values(), now_ms)
        {
            r.pods.retain(|p| p.generation >= routed);
        }
    }
}
