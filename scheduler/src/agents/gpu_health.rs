//! GPU health from heartbeats.
//!
//! - Unhealthy GPUs go into the replicated state (placement must skip them on every
//!   replica), but only when an agent's set changes: [`GpuHealthReporter`] compares each
//!   heartbeat with the state and proposes `SetGpuHealth` for a difference, one at a
//!   time per session.
//! - XID events stay in each replica's memory like the rest of a heartbeat: the agent
//!   resends its recent ones with every heartbeat and [`merge_xid_events`] keeps a
//!   bounded list per node, across agent restarts and sessions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gantry_proto::v1::{NodeMetrics, XidEvent};

use crate::raft::RaftHandle;
use crate::state::gpu_health::{MAX_REASON, MAX_UNHEALTHY, differs};
use crate::state::{Command, CommandV1};

/// XID events kept per node: enough for an operator to see a pattern, bounded against
/// a flapping GPU.
pub const MAX_XID_EVENTS: usize = 64;

/// UUID → why, for every GPU the heartbeat reports unhealthy, bounded as the state
/// accepts it (a longer reason is cut, not refused: a refusal would be retried forever).
pub fn reported_unhealthy(metrics: &NodeMetrics) -> BTreeMap<String, String> {
    metrics
        .gpus
        .iter()
        .filter(|g| !g.unhealthy_reason.is_empty() && !g.uuid.trim().is_empty() && g.uuid.len() <= 128)
        .map(|g| (g.uuid.clone(), truncate(&g.unhealthy_reason, MAX_REASON)))
        .take(MAX_UNHEALTHY)
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Adds the events of `incoming` that `kept` does not have yet, oldest first, and
/// keeps the newest [`MAX_XID_EVENTS`].
pub fn merge_xid_events(kept: &mut VecDeque<XidEvent>, incoming: &[XidEvent]) {
    let mut added = false;
    for e in incoming {
        if !kept.contains(e) {
            kept.push_back(e.clone());
            added = true;
        }
    }
    if added {
        kept.make_contiguous().sort_by_key(|e| e.at_ms);
    }
    while kept.len() > MAX_XID_EVENTS {
        kept.pop_front();
    }
}

/// Turns one session's heartbeats into `SetGpuHealth` entries when they disagree with
/// the replicated state.
pub struct GpuHealthReporter {
    raft: RaftHandle,
    node_id: String,
    in_flight: Arc<AtomicBool>,
}

impl GpuHealthReporter {
    pub fn new(raft: RaftHandle, node_id: &str) -> Self {
        GpuHealthReporter { raft, node_id: node_id.to_string(), in_flight: Arc::new(AtomicBool::new(false)) }
    }

    /// Proposes the heartbeat's unhealthy set if the state holds another one and no
    /// proposal of this session is under way (the next heartbeat checks again).
    pub fn observe(&self, metrics: &NodeMetrics, now_ms: u64) {
        let unhealthy = reported_unhealthy(metrics);
        if !differs(&self.raft.state(), &self.node_id, &unhealthy) {
            return;
        }
        if self.in_flight.swap(true, Ordering::AcqRel) {
            return;
        }
        let (raft, in_flight) = (self.raft.clone(), self.in_flight.clone());
        let node_id = self.node_id.clone();
        // Off the session's loop: a commit waits for a quorum, heartbeats must not.
        tokio::spawn(async move {
            tracing::info!(node = %node_id, unhealthy = ?unhealthy, "gpu health changed");
            let cmd = CommandV1::SetGpuHealth { node_id: node_id.clone(), unhealthy, now_ms };
            match raft.propose(&Command::V1(cmd)).await {
                Ok((_, Ok(_))) => {}
                Ok((_, Err(rejected))) => tracing::warn!(node = %node_id, %rejected, "gpu health refused"),
                Err(e) => tracing::debug!(node = %node_id, error = %e, "gpu health not recorded yet"),
            }
            in_flight.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::GpuMetrics;

    use super::*;

    fn event(at_ms: u64, xid: u32) -> XidEvent {
        XidEvent { at_ms, gpu_uuid: "GPU-1".into(), xid, meaning: String::new() }
    }

    #[test]
    fn events_are_merged_once_in_time_order_and_bounded() {
        let mut kept = VecDeque::new();
        merge_xid_events(&mut kept, &[event(10, 79), event(20, 48)]);
        // The next heartbeat resends both and adds one; an agent restart resends none.
        merge_xid_events(&mut kept, &[event(10, 79), event(20, 48), event(30, 31)]);
        merge_xid_events(&mut kept, &[event(5, 13)]);
        let at: Vec<u64> = kept.iter().map(|e| e.at_ms).collect();
        assert_eq!(at, [5, 10, 20, 30]);
        let many: Vec<XidEvent> = (100..300).map(|t| event(t, 79)).collect();
        merge_xid_events(&mut kept, &many);
        assert_eq!(kept.len(), MAX_XID_EVENTS);
        assert_eq!(kept.back().map(|e| e.at_ms), Some(299));
    }

    #[test]
    fn the_reported_set_is_the_gpus_with_a_reason() {
        let gpu = |uuid: &str, why: &str| GpuMetrics {
            uuid: uuid.into(),
            unhealthy_reason: why.into(),
            ..Default::default()
        };
        let long = "x".repeat(2 * MAX_REASON);
        let m = NodeMetrics {
            gpus: vec![gpu("GPU-0", ""), gpu("GPU-1", "xid 79"), gpu("GPU-2", &long)],
            ..Default::default()
        };
        let set = reported_unhealthy(&m);
        assert_eq!(set.keys().collect::<Vec<_>>(), ["GPU-1", "GPU-2"]);
        assert_eq!(set["GPU-2"].len(), MAX_REASON);
    }
}
