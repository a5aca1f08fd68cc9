//! Node liveness: a node whose agent has not been heard from for `down_after` is
//! declared DOWN, which ends the trainings that ran there (see `state::apply`).
//!
//! Heartbeats stay out of the raft log (each replica keeps them in memory, in the
//! [`AgentHub`]); only the status change is replicated, as in Nomad. A new leader has
//! heard nothing yet, so it counts silence from the moment it took over. Silence is
//! measured on the monotonic clock: a wall-clock jump (NTP step, a VM resumed) must not
//! declare every node lost at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_domain::NodeStatus;
use tokio_util::sync::CancellationToken;

use crate::agents::AgentHub;
use crate::api::now_ms;
use crate::raft::RaftHandle;
use crate::state::{Command, CommandV1, State};

/// How often the leader checks.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Pure: the READY nodes to declare DOWN. `silence` holds how long each node with a
/// session has been silent; `leading_for` how long this replica has been listening
/// (leading). Both are monotonic durations; `now_ms` only dates the command.
pub fn nodes_to_mark_down(
    state: &State,
    silence: &BTreeMap<String, Duration>,
    leading_for: Duration,
    now_ms: u64,
    down_after: Duration,
) -> Vec<CommandV1> {
    state
        .nodes
        .values()
        .filter(|n| n.status == NodeStatus::Ready)
        .filter_map(|n| {
            let silent = silence.get(&n.id).copied().unwrap_or(leading_for).min(leading_for);
            (silent > down_after).then(|| CommandV1::SetNodeStatus {
                node_id: n.id.clone(),
                status: NodeStatus::Down,
                now_ms,
                reason: format!("node {} lost: no heartbeat from its agent for {}s", n.id, silent.as_secs()),
            })
        })
        .collect()
}

pub async fn run(raft: RaftHandle, hub: AgentHub, down_after: Duration, cancel: CancellationToken) {
    let mut leader_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if !raft.is_leader() {
            leader_since = None;
            continue;
        }
        let now = Instant::now();
        let leading_for = now.saturating_duration_since(*leader_since.get_or_insert(now));
        let commands = {
            let state = raft.state();
            let silence = state.nodes.keys().filter_map(|id| Some((id.clone(), hub.silent_for(id, now)?))).collect();
            nodes_to_mark_down(&state, &silence, leading_for, now_ms(), down_after)
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn silent_nodes_go_down_after_the_timeout() {
        let s = two_nodes();
        let t = Duration::from_secs(5);
        let lead = Duration::from_secs(3600);
        let silence = |a, b| BTreeMap::from([("a".to_string(), ms(a)), ("b".to_string(), ms(b))]);
        assert!(down(&nodes_to_mark_down(&s, &silence(0, 5_000), lead, 0, t)).is_empty());
        assert_eq!(down(&nodes_to_mark_down(&s, &silence(0, 5_001), lead, 0, t)), ["b"]);
        assert_eq!(down(&nodes_to_mark_down(&s, &silence(5_001, 14_001), lead, 0, t)), ["a", "b"]);
    }

    #[test]
    fn a_new_leader_waits_a_full_timeout_before_judging() {
        let s = two_nodes();
        let t = Duration::from_secs(5);
        let long_ago = BTreeMap::from([("a".to_string(), Duration::from_secs(600))]);
        assert!(down(&nodes_to_mark_down(&s, &long_ago, ms(4_000), 0, t)).is_empty());
        assert_eq!(down(&nodes_to_mark_down(&s, &long_ago, ms(5_001), 0, t)), ["a", "b"]);
    }

    #[test]
    fn regression_a_wall_clock_jump_declares_no_node_lost() {
        // Heartbeats arrived a second ago on the monotonic clock; the wall clock has just
        // jumped a day ahead (`now_ms`). Only the monotonic silence counts.
        let s = two_nodes();
        let silence = BTreeMap::from([("a".to_string(), ms(1_000)), ("b".to_string(), ms(1_000))]);
        let jumped = 86_400_000 + 10_000;
        assert!(down(&nodes_to_mark_down(&s, &silence, Duration::from_secs(3600), jumped, ms(5_000))).is_empty());
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
        assert_eq!(down(&nodes_to_mark_down(&s, &BTreeMap::new(), ms(60_000), 0, Duration::from_secs(5))), ["b"]);
    }
}
