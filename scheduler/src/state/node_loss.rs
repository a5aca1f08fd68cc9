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

use gantry_domain::{Node, TrainingStatus};

use super::apply::{training_mut, transition};
use super::index::held_assignments;
use super::{State, WorkloadOwner};

/// A lost node's containers are gone or unreachable: every training with one there ends.
pub(super) fn end_workloads_on_lost_node(state: &mut State, node_id: &str, reason: &str, now_ms: u64) {
    let hit: Vec<String> = state.workloads.on_node(node_id).map(|(id, _)| id.clone()).collect();
    let reason = if reason.is_empty() { format!("node {node_id} was lost") } else { reason.to_string() };
    end_workloads(state, hit, &reason, now_ms);
}

/// After `node` registered its (possibly new) inventory: ends the trainings placed there
/// that it no longer has room for. Costs the workloads on the node.
pub(super) fn end_what_no_longer_fits(state: &mut State, node: &Node, now_ms: u64) {
    let have: BTreeSet<&str> = node.inventory.gpus.iter().map(|g| g.uuid.as_str()).collect();
    let (mut lost_gpu, mut rest) = (Vec::new(), Vec::new());
    for (id, w) in state.workloads.on_node(&node.id) {
        let held_here = held_assignments(w).filter(|a| a.node_id == node.id);
        if held_here.flat_map(|a| &a.gpu_uuids).any(|g| !have.contains(g.as_str())) {
            lost_gpu.push(id.clone());
        } else {
            rest.push((w.created_index, id.clone()));
        }
    }
    let reason = format!("node {} registered again without a GPU this training held", node.id);
    end_workloads(state, lost_gpu, &reason, now_ms);
    // Oldest first, so popping ends the newest: the work lost is the least far along.
    rest.sort();
    let capacity = node.inventory.capacity();
    let reason = format!("node {} registered again with less CPU or memory than its trainings hold", node.id);
    while let Some(load) = state.workloads.load_on(&node.id) {
        let used = load.used();
        if used.cpu_millis <= capacity.cpu_millis && used.memory_mib <= capacity.memory_mib {
            break;
        }
        let Some((_, id)) = rest.pop() else { break };
        end_workloads(state, vec![id], &reason, now_ms);
    }
}

/// Removes the workloads and ends their trainings.
fn end_workloads(state: &mut State, ids: Vec<String>, reason: &str, now_ms: u64) {
    for id in ids {
        let Some(w) = state.workloads.remove(&id) else { continue };
        let WorkloadOwner::Training { project, name } = &w.owner;
        let Ok(t) = training_mut(state, project, name) else { continue };
        let to = if t.status == TrainingStatus::StopInProgress {
            TrainingStatus::Stopped
        } else {
            TrainingStatus::FailTrain
        };
        if t.status.can_transition(to) {
            transition(t, to, reason.to_string(), now_ms);
        }
    }
}
