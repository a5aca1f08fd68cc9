//! What ends when a node loses what its containers run on (documented in docs/agent.md).
//!
//! ```text
//!   node DOWN (lost, revoked)                 ─▶ every training with a container there ends
//!   node re-registers without a GPU it lent  ─▶ the trainings holding that GPU end
//!   node re-registers with less CPU/memory   ─▶ its newest trainings end until the rest fit
//! ```
//!
//! A training ends as FAIL TRAIN, or STOPPED when a stop was already under way; there is
//! no restart from a checkpoint yet. Ending them keeps the node's allocations within
//! what it has, so placement never sees negative free resources or a GPU held twice.

use std::collections::BTreeSet;

use gantry_domain::{Assignment, Node, Resources, TrainingStatus};

use super::apply::{training_mut, transition};
use super::index::held_assignments;
use super::release;
use super::{State, WorkloadOwner};

/// A lost node's containers are gone or unreachable: every training with one there ends.
pub(super) fn end_workloads_on_lost_node(state: &mut State, node_id: &str, reason: &str, now_ms: u64) {
    let hit: Vec<String> =
        state.workloads.on_node(node_id).filter(|(_, w)| !w.ended).map(|(id, _)| id.clone()).collect();
    let reason = if reason.is_empty() { format!("node {node_id} was lost") } else { reason.to_string() };
    end_workloads(state, hit, &reason, now_ms);
}

/// After `node` registered its (possibly new) inventory: ends the trainings placed there
/// that it no longer has room for. Costs the workloads on the node.
pub(super) fn end_what_no_longer_fits(state: &mut State, node: &Node, now_ms: u64) {
    let have: BTreeSet<&str> = node.inventory.gpus.iter().map(|g| g.uuid.as_str()).collect();
    let (mut lost_gpu, mut rest) = (Vec::new(), Vec::new());
    // Ended workloads are already on their way out (held until their containers are
    // reported gone): only running ones can be ended to make room.
    let mut ended_use = Resources::ZERO;
    for (id, w) in state.workloads.on_node(&node.id) {
        let held_here: Vec<&Assignment> = held_assignments(w).filter(|a| a.node_id == node.id).collect();
        if w.ended {
            for _ in &held_here {
                ended_use = ended_use.add(&w.demand.per_container);
            }
        } else if held_here.iter().flat_map(|a| &a.gpu_uuids).any(|g| !have.contains(g.as_str())) {
            lost_gpu.push(id.clone());
        } else {
            rest.push((w.created_index, id.clone(), w.demand.per_container, held_here.len()));
        }
    }
    let reason = format!("node {} registered again without a GPU this training held", node.id);
    end_workloads(state, lost_gpu, &reason, now_ms);
    // Oldest first, so popping ends the newest: the work lost is the least far along.
    rest.sort_by_key(|r| r.0);
    let capacity = node.inventory.capacity();
    let mut used = rest.iter().fold(ended_use, |u, (_, _, per, n)| (0..*n).fold(u, |u, _| u.add(per)));
    let reason = format!("node {} registered again with less CPU or memory than its trainings hold", node.id);
    while used.cpu_millis > capacity.cpu_millis || used.memory_mib > capacity.memory_mib {
        let Some((_, id, per, n)) = rest.pop() else { break };
        for _ in 0..n {
            used = used.saturating_sub(&per);
        }
        end_workloads(state, vec![id], &reason, now_ms);
    }
}

/// Ends the workloads' trainings; their resources stay held until their containers
/// are reported gone (see `release`).
fn end_workloads(state: &mut State, ids: Vec<String>, reason: &str, now_ms: u64) {
    for id in ids {
        let Some(owner) = state.workloads.get(&id).map(|w| w.owner.clone()) else { continue };
        let WorkloadOwner::Training { project, name } = owner else {
            // A serving instance is replaced by a new one elsewhere.
            // Ids of the replacement derive from the entry being applied.
            let index = state.applied_index;
            super::endpoints::instance_lost(state, index, &id);
            continue;
        };
        if let Ok(t) = training_mut(state, &project, &name) {
            let to = if t.status == TrainingStatus::StopInProgress {
                TrainingStatus::Stopped
            } else {
                TrainingStatus::FailTrain
            };
            if t.status.can_transition(to) {
                transition(t, to, reason.to_string(), now_ms);
            }
        }
        release::end(state, &id);
    }
}
