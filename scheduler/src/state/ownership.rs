//! Which node speaks for which container: a rank of a workload belongs to the node its
//! placement put it on, and only that node may report it.

use super::{Rejected, State};

/// Whether `node_id` owns rank `rank` of `workload_id`.
///
/// `NotFound` when the workload has ended (or never existed); `PermissionDenied`,
/// naming the workload and rank, when it is unplaced, has no such rank, or that rank
/// runs on another node. A placement never moves, so a denial seen on a lagging replica
/// stays true on the leader.
pub fn check_container_owner(state: &State, node_id: &str, workload_id: &str, rank: u32) -> Result<(), Rejected> {
    let w = state
        .workloads
        .get(workload_id)
        .ok_or_else(|| Rejected::not_found(format!("workload '{workload_id}' (it has ended or never existed)")))?;
    let placed_here =
        w.placement.as_ref().and_then(|p| p.assignments.get(rank as usize)).is_some_and(|a| a.node_id == node_id);
    if !placed_here {
        return Err(Rejected::PermissionDenied {
            reason: format!("rank {rank} of workload '{workload_id}' is not placed on node '{node_id}'"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gantry_domain::{Assignment, NodeInventory, Placement};

    use super::*;
    use crate::state::tests::cpu_catalog;
    use crate::state::{CommandV1, apply};

    #[test]
    fn only_the_node_a_rank_is_placed_on_owns_it() {
        let mut state = cpu_catalog();
        for (i, n) in ["a", "b"].into_iter().enumerate() {
            let inventory = NodeInventory { cpu_millis: 8000, memory_mib: 8192, disk_mib: 0, gpus: vec![] };
            let join = CommandV1::JoinNode {
                hostname: n.into(),
                address: String::new(),
                inventory,
                now_ms: 1,
                key: String::new(),
            };
            apply(&mut state, 10 + i as u64, join.into()).expect("apply in test");
        }
        let create = crate::state::tests::create_t("w1", 2);
        apply(&mut state, 12, create.into()).expect("apply in test");
        let denied = |r: Result<(), Rejected>| matches!(r, Err(Rejected::PermissionDenied { .. }));
        assert!(denied(check_container_owner(&state, "a", "w1", 0)), "unplaced: nobody owns it");
        let assignments = vec![
            Assignment { node_id: "b".into(), gpu_uuids: vec![] },
            Assignment { node_id: "a".into(), gpu_uuids: vec![] },
        ];
        let place =
            CommandV1::Place { workload_id: "w1".into(), placement: Placement { assignments }, now_ms: 3, ports: None };
        apply(&mut state, 13, place.into()).expect("apply in test");
        assert_eq!(check_container_owner(&state, "a", "w1", 1), Ok(()));
        assert_eq!(check_container_owner(&state, "b", "w1", 0), Ok(()));
        assert!(denied(check_container_owner(&state, "a", "w1", 0)));
        assert!(denied(check_container_owner(&state, "a", "w1", 2)), "no such rank");
        assert!(matches!(check_container_owner(&state, "a", "w9", 0), Err(Rejected::NotFound { .. })));

        // Applying a report for another node's rank changes nothing.
        let before = state.clone();
        let report = CommandV1::ReportContainer {
            node_id: "a".into(),
            workload_id: "w1".into(),
            rank: 0,
            phase: crate::state::ContainerPhase::Failed,
            reason: "forged".into(),
            now_ms: 4,
        };
        assert!(matches!(apply(&mut state, 14, report.into()), Err(Rejected::PermissionDenied { .. })));
        assert_eq!(State { applied_index: before.applied_index, ..state }, before);
    }
}
