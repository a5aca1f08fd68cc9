//! Minimized regression tests for what the command fuzzer (`fuzz`) found; each also
//! checks every invariant of `invariants::check` afterwards.

use gantry_domain::*;

use super::invariants::check;
use super::tests::{cpu_catalog, create_t, spec};
use super::{Command, CommandV1, Rejected, State, apply};

fn run(state: &mut State, c: CommandV1) -> Result<super::Applied, Rejected> {
    let index = state.applied_index + 1;
    apply(state, index, Command::V1(c))
}

fn register(name: &str, cpu_millis: u64, gpus: &[&str]) -> CommandV1 {
    CommandV1::RegisterNode {
        hostname: name.into(),
        address: String::new(),
        inventory: NodeInventory {
            cpu_millis,
            memory_mib: 8192,
            disk_mib: 0,
            gpus: gpus.iter().map(|u| Gpu { uuid: u.to_string(), model: "A100-80GB".into(), memory_mib: 1 }).collect(),
        },
        now_ms: 1,
    }
}

fn place(workload_id: &str, node: &str, gpus: &[&str]) -> CommandV1 {
    let a = Assignment { node_id: node.into(), gpu_uuids: gpus.iter().map(|g| g.to_string()).collect() };
    CommandV1::Place {
        workload_id: workload_id.into(),
        placement: Placement { assignments: vec![a] },
        now_ms: 2,
        ports: None,
    }
}

fn gpu_catalog() -> State {
    let mut state = cpu_catalog();
    let it = InstanceType {
        name: "g1".into(),
        cpu_millis: 1000,
        memory_mib: 1024,
        gpu_count: 1,
        gpu_model: Some("A100-80GB".into()),
    };
    run(&mut state, CommandV1::PutInstanceType { instance_type: it }).unwrap();
    let image = Image {
        name: "gpu".into(),
        reference: "r".into(),
        core_type: ImageCoreType::Gpu,
        framework: Framework::Python,
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    run(&mut state, CommandV1::PutImage { image }).unwrap();
    state
}

fn status(state: &State, name: &str) -> TrainingStatus {
    state.training("p", name).unwrap().status
}

#[test]
fn regression_a_node_registering_again_without_a_gpu_ends_the_training_holding_it() {
    let mut state = gpu_catalog();
    run(&mut state, register("a", 8000, &["GPU-1"])).unwrap();
    let create = CommandV1::CreateTraining {
        project: "p".into(),
        id: "w1".into(),
        experiment_id: "e1".into(),
        request_id: String::new(),
        spec: spec("t", "e", "g1", "gpu", 1),
        now_ms: 1,
    };
    run(&mut state, create).unwrap();
    run(&mut state, place("w1", "a", &["GPU-1"])).unwrap();
    // The agent restarts and no longer sees the GPU.
    run(&mut state, register("a", 8000, &[])).unwrap();
    assert_eq!(status(&state, "t"), TrainingStatus::FailTrain);
    check(&state).unwrap();
    // Its container may still run: the GPU is held until the agent reports it gone.
    assert!(state.workloads.gpu_holders("GPU-1").next().is_some());
    let gone = CommandV1::ContainerGone { node_id: "a".into(), workload_id: "w1".into(), rank: 0 };
    run(&mut state, gone).unwrap();
    assert!(state.workloads.gpu_holders("GPU-1").next().is_none());
    check(&state).unwrap();
}

#[test]
fn regression_a_node_registering_again_smaller_ends_its_newest_trainings_until_the_rest_fit() {
    let mut state = cpu_catalog();
    run(&mut state, register("a", 4000, &[])).unwrap();
    for (id, name) in [("w1", "t1"), ("w2", "t2"), ("w3", "t3")] {
        let CommandV1::CreateTraining { project, experiment_id, request_id, mut spec, now_ms, .. } = create_t(id, 1)
        else {
            unreachable!()
        };
        spec.name = name.into();
        run(&mut state, CommandV1::CreateTraining { project, id: id.into(), experiment_id, request_id, spec, now_ms })
            .unwrap();
        run(&mut state, place(id, "a", &[])).unwrap();
    }
    run(&mut state, register("a", 1500, &[])).unwrap();
    assert_eq!(status(&state, "t1"), TrainingStatus::CreateInProgress, "the oldest keeps running");
    assert_eq!(status(&state, "t2"), TrainingStatus::FailTrain);
    assert_eq!(status(&state, "t3"), TrainingStatus::FailTrain);
    check(&state).unwrap();
}

#[test]
fn regression_a_join_refused_for_its_gpus_leaves_the_admission_unused() {
    let mut state = cpu_catalog();
    run(&mut state, register("a", 1000, &[])).unwrap();
    run(&mut state, CommandV1::RevokeNode { node_id: "a".into(), reason: String::new(), now_ms: 2 }).unwrap();
    run(&mut state, register("b", 1000, &["GPU-6"])).unwrap();
    run(&mut state, CommandV1::AdmitNode { node_id: "a".into() }).unwrap();
    let join = |gpus: &[&str]| {
        let CommandV1::RegisterNode { hostname, address, inventory, now_ms } = register("a", 1000, gpus) else {
            unreachable!()
        };
        CommandV1::JoinNode { hostname, address, inventory, now_ms, key: "k".into() }
    };
    let before = state.clone();
    assert!(matches!(run(&mut state, join(&["GPU-6"])), Err(Rejected::InvalidArgument { .. })));
    assert_eq!(state.node_revocations, before.node_revocations, "the admission is still there");
    run(&mut state, join(&[])).unwrap();
    check(&state).unwrap();
}

#[test]
fn regression_a_stop_never_takes_an_edge_the_lifecycle_does_not_have() {
    let mut state = cpu_catalog();
    run(&mut state, register("a", 4000, &[])).unwrap();
    run(&mut state, create_t("w1", 1)).unwrap();
    run(&mut state, place("w1", "a", &[])).unwrap();
    let set = CommandV1::SetTrainingStatus {
        project: "p".into(),
        name: "t".into(),
        status: TrainingStatus::FailTrainInProgress,
        reason: String::new(),
        now_ms: 3,
    };
    run(&mut state, set).unwrap();
    let stop = CommandV1::StopTraining { project: "p".into(), name: "t".into(), now_ms: 4, reason: String::new() };
    assert!(matches!(run(&mut state, stop), Err(Rejected::FailedPrecondition { .. })));
    assert_eq!(status(&state, "t"), TrainingStatus::FailTrainInProgress);
    check(&state).unwrap();
}

#[test]
fn regression_a_training_waiting_for_placement_cannot_be_set_to_a_placed_status() {
    let mut state = cpu_catalog();
    run(&mut state, create_t("w1", 1)).unwrap();
    let set = |status| CommandV1::SetTrainingStatus {
        project: "p".into(),
        name: "t".into(),
        status,
        reason: String::new(),
        now_ms: 3,
    };
    assert!(matches!(run(&mut state, set(TrainingStatus::CreateInProgress)), Err(Rejected::FailedPrecondition { .. })));
    check(&state).unwrap();
    run(&mut state, set(TrainingStatus::CreateFailed)).unwrap();
    assert!(state.workloads.is_empty());
    check(&state).unwrap();
}
