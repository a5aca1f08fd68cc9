//! Node liveness: a node whose agent has not been heard from for `down_after` is
//! declared DOWN, which ends the trainings that ran there (see `state::apply`).
//!
//! Heartbeats stay out of the raft log (each replica keeps them in memory, in the
//! [`AgentHub`]); only the status change is replicated, as in Nomad. A new leader has
//! heard nothing yet, so it counts silence from the moment it took over.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_domain::NodeStatus;
use tokio_util::sync::CancellationToken;

use crate::agents::AgentHub;
use crate::api::now_ms;
use crate::raft::RaftHandle;
use crate::state::{Command, CommandV1, State};

/// How often the leader checks.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Pure: the READY nodes to declare DOWN. `last_seen` holds what this replica heard;
/// `since_ms` is when it started listening (took the lead).
pub fn nodes_to_mark_down(
    state: &State,
    last_seen: &BTreeMap<String, u64>,
    since_ms: u64,
    now_ms: u64,
    down_after: Duration,
) -> Vec<CommandV1> {
    let limit = down_after.as_millis() as u64;
    state
        .nodes
        .values()
        .filter(|n| n.status == NodeStatus::Ready)
        .filter_map(|n| {
            let heard = last_seen.get(&n.id).copied().unwrap_or(0).max(since_ms);
            let silent = now_ms.saturating_sub(heard);
            (silent > limit).then(|| CommandV1::SetNodeStatus {
                node_id: n.id.clone(),
                status: NodeStatus::Down,
                now_ms,
                reason: format!("node {} lost: no heartbeat from its agent for {}s", n.id, silent / 1000),
            })
        })
        .collect()
}

pub async fn run(raft: RaftHandle, hub: AgentHub, down_after: Duration, cancel: CancellationToken) {
    let mut leader_since: Option<u64> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if !raft.is_leader() {
            leader_since = None;
            continue;
        }
        let since = *leader_since.get_or_insert_with(now_ms);
        let commands = {
            let state = raft.state();
            let seen = state.nodes.keys().filter_map(|id| Some((id.clone(), hub.last_seen_ms(id)?))).collect();
            nodes_to_mark_down(&state, &seen, since, now_ms(), down_after)
        };
        for c in commands {
            tracing::warn!(?c, "declaring node down");
            if let Err(e) = raft.propose(&Command::V1(c)).await {
                tracing::debug!(error = %e, "node-down proposal failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::NodeInventory;

    use super::*;
    use crate::state::apply;

    fn two_nodes() -> State {
        let mut s = State::default();
        for (i, n) in ["a", "b"].into_iter().enumerate() {
            let c = CommandV1::RegisterNode {
                hostname: n.into(),
                address: String::new(),
                inventory: NodeInventory { cpu_millis: 1000, memory_mib: 1024, disk_mib: 0, gpus: vec![] },
                now_ms: 0,
            };
            apply(&mut s, i as u64 + 1, c.into()).unwrap();
        }
        s
    }

    fn down(cmds: &[CommandV1]) -> Vec<&str> {
        cmds.iter()
            .map(|c| match c {
                CommandV1::SetNodeStatus { node_id, .. } => node_id.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn silent_nodes_go_down_after_the_timeout() {
        let s = two_nodes();
        let seen = BTreeMap::from([("a".to_string(), 10_000), ("b".to_string(), 1_000)]);
        let t = Duration::from_secs(5);
        assert!(down(&nodes_to_mark_down(&s, &seen, 0, 6_000, t)).is_empty());
        assert_eq!(down(&nodes_to_mark_down(&s, &seen, 0, 6_001, t)), ["b"]);
        assert_eq!(down(&nodes_to_mark_down(&s, &seen, 0, 15_001, t)), ["a", "b"]);
    }

    #[test]
    fn a_new_leader_waits_a_full_timeout_before_judging() {
        let s = two_nodes();
        let t = Duration::from_secs(5);
        assert!(down(&nodes_to_mark_down(&s, &BTreeMap::new(), 100_000, 104_000, t)).is_empty());
        assert_eq!(down(&nodes_to_mark_down(&s, &BTreeMap::new(), 100_000, 105_001, t)), ["a", "b"]);
    }

    #[test]
    fn down_nodes_are_not_declared_again() {
        let mut s = two_nodes();
        let c = CommandV1::SetNodeStatus {
            node_id: "a".into(),
            status: NodeStatus::Down,
            now_ms: 1,
            reason: String::new(),
        };
        apply(&mut s, 3, c.into()).unwrap();
        assert_eq!(down(&nodes_to_mark_down(&s, &BTreeMap::new(), 0, 60_000, Duration::from_secs(5))), ["b"]);
    }
}
