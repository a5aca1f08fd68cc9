//! When a workload's node resources become free again: not when its owner ends (the
//! terminal status is committed while containers may still run, e.g. the other ranks
//! of a failed gang, or a node that comes back after it was declared lost), but when
//! the agent of each rank reports that rank's container gone.
//!
//! ```text
//!   owner ends ──▶ end(): unplaced → removed at once
//!                         placed   → `ended`: assignments say `release`, resources held
//!   agent: container removed (or never there) ──ContainerGone──▶ gone[rank]; freed
//!   every rank gone ──▶ workload removed
//! ```
//!
//! A lost or revoked node's ranks stay held until its agent is back and reports them
//! gone: a DOWN node is not placeable anyway, and one that returns may still run them.

use super::ownership;
use super::{Applied, Outcome, Rejected, State};

/// The owner of `workload_id` has ended: free what runs nowhere, hold the rest until
/// its containers are gone.
pub(super) fn end(state: &mut State, workload_id: &str) {
    let holds = {
        let Some(mut w) = state.workloads.get_mut(workload_id) else { return };
        w.ended = true;
        w.held().next().is_some()
    };
    if !holds {
        state.workloads.remove(workload_id);
    }
}

/// `node_id`'s agent reports the container of rank `rank` gone: its resources are free.
pub(super) fn container_gone(state: &mut State, node_id: &str, workload_id: &str, rank: u32) -> Outcome {
    ownership::check_container_owner(state, node_id, workload_id, rank)?;
    let holds = {
        let Some(mut w) = state.workloads.get_mut(workload_id) else {
            return Err(Rejected::not_found(format!("workload '{workload_id}'")));
        };
        if !w.ended {
            return Err(Rejected::precondition(format!(
                "workload '{workload_id}' has not ended: its containers are not released"
            )));
        }
        let ranks = w.placement.as_ref().map_or(0, |p| p.assignments.len());
        if w.gone.len() != ranks {
            w.gone.resize(ranks, false);
        }
        if let Some(slot) = w.gone.get_mut(rank as usize) {
            *slot = true;
        }
        w.held().next().is_some()
    };
    if !holds {
        state.workloads.remove(workload_id);
    }
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use gantry_domain::{
        Assignment, Framework, Gpu, Image, ImageCoreType, InstanceType, NodeInventory, Placement, TrainingStatus,
    };

    use crate::state::tests::{granted, spec};
    use crate::state::{CommandV1, ContainerPhase, State, apply};

    /// One node `a` with one GPU, a one-GPU instance type and a GPU image.
    fn one_gpu_node() -> State {
        let mut state = granted(State::default());
        let it = InstanceType {
            name: "g1".into(),
            cpu_millis: 1000,
            memory_mib: 1024,
            gpu_count: 1,
            gpu_model: Some("A100-80GB".into()),
        };
        let image = Image {
            name: "gpu".into(),
            reference: "r".into(),
            core_type: ImageCoreType::Gpu,
            framework: Framework::Python,
            framework_version: String::new(),
            python_version: "3.11".into(),
        };
        let inventory = NodeInventory {
            cpu_millis: 8000,
            memory_mib: 8192,
            disk_mib: 0,
            gpus: vec![Gpu { uuid: "GPU-0".into(), model: "A100-80GB".into(), memory_mib: 1 }],
        };
        let node = CommandV1::RegisterNode { hostname: "a".into(), address: String::new(), inventory, now_ms: 1 };
        for (i, c) in [CommandV1::PutInstanceType { instance_type: it }, CommandV1::PutImage { image }, node]
            .into_iter()
            .enumerate()
        {
            apply(&mut state, i as u64 + 1, c.into()).expect("catalog");
        }
        state
    }

    fn create(name: &str, id: &str) -> CommandV1 {
        CommandV1::CreateTraining {
            project: "p".into(),
            id: id.into(),
            experiment_id: "e1".into(),
            request_id: String::new(),
            spec: spec(name, "e", "g1", "gpu", 1),
            now_ms: 1,
        }
    }

    fn on_gpu(id: &str) -> CommandV1 {
        let assignments = vec![Assignment { node_id: "a".into(), gpu_uuids: vec!["GPU-0".into()] }];
        CommandV1::Place { workload_id: id.into(), placement: Placement { assignments }, now_ms: 2, ports: None }
    }

    fn report(id: &str, phase: ContainerPhase) -> CommandV1 {
        CommandV1::ReportContainer {
            node_id: "a".into(),
            workload_id: id.into(),
            rank: 0,
            phase,
            reason: String::new(),
            now_ms: 3,
        }
    }

    #[test]
    fn regression_a_gpu_is_not_placed_again_before_its_container_is_gone() {
        let mut state = one_gpu_node();
        let mut i = 10;
        let mut run = |state: &mut State, c: CommandV1| {
            i += 1;
            apply(state, i, c.into())
        };
        run(&mut state, create("t1", "w1")).expect("create t1");
        run(&mut state, on_gpu("w1")).expect("place t1");
        run(&mut state, report("w1", ContainerPhase::Running)).expect("running");
        let stop = CommandV1::StopTraining { project: "p".into(), name: "t1".into(), now_ms: 4, reason: String::new() };
        run(&mut state, stop).expect("stop");
        run(&mut state, report("w1", ContainerPhase::Stopped)).expect("stopped");
        assert_eq!(state.training("p", "t1").expect("t1").status, TrainingStatus::Stopped);

        // The training has ended, but its container is not gone yet: the GPU is held.
        run(&mut state, create("t2", "w2")).expect("create t2");
        assert!(state.node_snapshots()[0].free_gpus.is_empty(), "the GPU looks free while its container exists");
        let err = run(&mut state, on_gpu("w2")).expect_err("placed on a GPU still in use");
        assert!(matches!(err, crate::state::Rejected::FailedPrecondition { .. }), "{err:?}");

        // Gone is only for ended workloads, and only from the rank's own node.
        let gone =
            |node: &str, id: &str| CommandV1::ContainerGone { node_id: node.into(), workload_id: id.into(), rank: 0 };
        run(&mut state, gone("b", "w1")).expect_err("another node");
        run(&mut state, gone("a", "w1")).expect("gone");
        assert!(!state.workloads.contains_key("w1"), "a released workload is forgotten");
        run(&mut state, on_gpu("w2")).expect("the GPU is free once the container is gone");
        let err = run(&mut state, gone("a", "w2")).expect_err("w2 runs");
        assert!(matches!(err, crate::state::Rejected::FailedPrecondition { .. }), "{err:?}");
    }

    #[test]
    fn a_lost_nodes_gpus_stay_held_until_its_agent_reports_them_gone() {
        let mut state = one_gpu_node();
        apply(&mut state, 11, create("t1", "w1").into()).expect("create");
        apply(&mut state, 12, on_gpu("w1").into()).expect("place");
        let down = CommandV1::SetNodeStatus {
            node_id: "a".into(),
            status: gantry_domain::NodeStatus::Down,
            now_ms: 5,
            reason: String::new(),
        };
        apply(&mut state, 13, down.into()).expect("down");
        assert_eq!(state.training("p", "t1").expect("t1").status, TrainingStatus::FailTrain);
        let (_, gpus) = state.allocated_on("a");
        assert_eq!(gpus, ["GPU-0"], "the node may come back with the container still running");
        let ready = CommandV1::SetNodeStatus {
            node_id: "a".into(),
            status: gantry_domain::NodeStatus::Ready,
            now_ms: 6,
            reason: String::new(),
        };
        apply(&mut state, 14, ready.into()).expect("ready");
        assert!(state.node_snapshots()[0].free_gpus.is_empty());
        let gone = CommandV1::ContainerGone { node_id: "a".into(), workload_id: "w1".into(), rank: 0 };
        apply(&mut state, 15, gone.into()).expect("gone");
        assert_eq!(state.node_snapshots()[0].free_gpus.len(), 1);
    }
}
