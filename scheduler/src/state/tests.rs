//! Properties of `apply`: replaying a log gives the same state, a snapshot taken at any
//! point and replayed from gives the same state, and rejections change nothing.

use gantry_domain::*;
use proptest::prelude::*;

use super::{Command, CommandV1, State, apply};

/// A valid training form (creating its experiment inline); shared by controller tests.
pub(crate) fn spec(name: &str, experiment: &str, instance_type: &str, image: &str, count: u32) -> TrainingSpec {
    TrainingSpec {
        name: name.into(),
        description: String::new(),
        tags: vec![],
        experiment: experiment.into(),
        create_experiment: true,
        algorithm: Algorithm::Own { path: StoragePath::File { path: "/a".into() }, entry_point: "train.py".into() },
        hyperparameters: vec![Hyperparameter { key: "lr".into(), value: "0.1".into() }],
        image: image.into(),
        instance_type: instance_type.into(),
        instance_count: count,
        nproc_per_node: 1,
        use_torchrun: false,
        datasets: vec![],
        checkpoint_input_path: None,
        output_path: StoragePath::File { path: "/o".into() },
        checkpoint_output_path: None,
        data_storage_size_gb: 0,
        timeout_minutes: 10,
        use_log: true,
    }
}

/// Creates training `t` (experiment `e`, created inline) of `count` containers in
/// project `p`, as workload `id`.
pub(crate) fn create_t(id: &str, count: u32) -> CommandV1 {
    CommandV1::CreateTraining {
        project: "p".into(),
        id: id.into(),
        experiment_id: "e1".into(),
        request_id: String::new(),
        spec: spec("t", "e", "it0", "cpu", count),
        now_ms: 1,
    }
}

/// A random but meaningful command: names come from small pools so creates collide,
/// deletes hit existing records and placements sometimes fit.
fn command() -> impl Strategy<Value = CommandV1> {
    let name = prop::sample::select(vec!["a", "b", "c", "d"]);
    let project = prop::sample::select(vec!["p1", "p2"]);
    prop_oneof![
        // Revoking and granting again: creates in between are denied.
        (project.clone(), prop::bool::weighted(0.8)).prop_map(|(p, grant)| CommandV1::SetStorageGrants {
            project: p.into(),
            grants: if grant {
                StorageGrants { read: vec![], write: vec![StoragePath::File { path: "/".into() }] }
            } else {
                StorageGrants::default()
            },
        }),
        (1u64..16, 0u32..3).prop_map(|(cpus, gpus)| CommandV1::PutInstanceType {
            instance_type: InstanceType {
                name: format!("it{gpus}"),
                cpu_millis: cpus * 1000,
                memory_mib: 1024,
                gpu_count: gpus,
                gpu_model: (gpus > 0).then(|| "A100-80GB".to_string()),
            },
        }),
        prop::bool::ANY.prop_map(|gpu| CommandV1::PutImage {
            image: Image {
                name: if gpu { "gpu".into() } else { "cpu".into() },
                reference: "img".into(),
                core_type: if gpu { ImageCoreType::Gpu } else { ImageCoreType::Cpu },
                framework: Framework::Python,
                framework_version: String::new(),
                python_version: "3.11".into(),
            },
        }),
        (0u32..3, 0usize..4).prop_map(|(n, gpus)| CommandV1::RegisterNode {
            hostname: format!("node{n}"),
            address: String::new(),
            inventory: NodeInventory {
                cpu_millis: 8000,
                memory_mib: 8192,
                disk_mib: 0,
                gpus: (0..gpus)
                    .map(|g| Gpu { uuid: format!("GPU-{n}-{g}"), model: "A100-80GB".into(), memory_mib: 1 })
                    .collect(),
            },
            now_ms: 1,
        }),
        (project.clone(), name.clone(), name.clone(), 0u32..3, prop::bool::ANY, 1u32..3).prop_map(
            |(p, n, e, gpus, gpu_img, count)| CommandV1::CreateTraining {
                project: p.into(),
                id: format!("trn-{p}-{n}"),
                experiment_id: format!("exp-{p}-{e}"),
                request_id: format!("req-{n}"),
                spec: spec(n, e, &format!("it{gpus}"), if gpu_img { "gpu" } else { "cpu" }, count),
                now_ms: 2,
            }
        ),
        (project.clone(), name.clone()).prop_map(|(p, n)| CommandV1::StopTraining {
            project: p.into(),
            name: n.into(),
            now_ms: 3,
            reason: String::new(),
        }),
        (project.clone(), name.clone(), 0u32..3, 0u32..2, 0usize..6).prop_map(|(p, n, node, rank, phase)| {
            use crate::state::ContainerPhase as P;
            CommandV1::ReportContainer {
                node_id: format!("node{node}"),
                workload_id: format!("trn-{p}-{n}"),
                rank,
                phase: [P::Pending, P::Running, P::Uploading, P::Succeeded, P::Failed, P::Stopped][phase],
                reason: "r".into(),
                now_ms: 5,
            }
        }),
        (0u32..3, prop::bool::ANY).prop_map(|(n, down)| CommandV1::SetNodeStatus {
            node_id: format!("node{n}"),
            status: if down { NodeStatus::Down } else { NodeStatus::Ready },
            now_ms: 6,
            reason: String::new(),
        }),
        (0u32..3, 0u32..2).prop_map(|(n, k)| CommandV1::JoinNode {
            hostname: format!("node{n}"),
            address: String::new(),
            inventory: NodeInventory { cpu_millis: 8000, memory_mib: 8192, disk_mib: 0, gpus: vec![] },
            now_ms: 7,
            key: format!("key{k}"),
        }),
        (0u32..3).prop_map(|n| CommandV1::RevokeNode { node_id: format!("node{n}"), reason: String::new(), now_ms: 8 }),
        (0u32..3).prop_map(|n| CommandV1::AdmitNode { node_id: format!("node{n}") }),
        (project.clone(), name.clone())
            .prop_map(|(p, n)| CommandV1::DeleteTraining { project: p.into(), name: n.into() }),
        (project.clone(), name.clone())
            .prop_map(|(p, n)| CommandV1::DeleteExperiment { project: p.into(), name: n.into() }),
        (project, name, 0u32..3, prop::collection::vec(0usize..4, 0..3)).prop_map(|(p, n, node, gpus)| {
            CommandV1::Place {
                workload_id: format!("trn-{p}-{n}"),
                placement: Placement {
                    assignments: vec![Assignment {
                        node_id: format!("node{node}"),
                        gpu_uuids: gpus.iter().map(|g| format!("GPU-{node}-{g}")).collect(),
                    }],
                },
                now_ms: 4,
                ports: None,
            }
        }),
    ]
}

/// Projects `p`, `p1` and `p2` may read and write all of `file:///` (entries need
/// no index: the grants are put in place directly).
pub(crate) fn granted(mut state: State) -> State {
    let all = StoragePath::File { path: "/".into() };
    for p in ["p", "p1", "p2"] {
        let grants = StorageGrants { read: vec![], write: vec![all.clone()] };
        state.storage_grants.insert(p.to_string(), grants);
    }
    state
}

fn replay(commands: &[CommandV1]) -> (State, Vec<String>) {
    let mut state = granted(State::default());
    let outcomes = commands
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{:?}", apply(&mut state, i as u64 + 1, Command::V1(c.clone()))))
        .collect();
    (state, outcomes)
}

proptest! {
    #[test]
    fn replaying_a_log_gives_the_same_state(commands in prop::collection::vec(command(), 1..80)) {
        let (a, outcomes_a) = replay(&commands);
        let (b, outcomes_b) = replay(&commands);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(outcomes_a, outcomes_b);
    }

    #[test]
    fn a_snapshot_at_any_point_round_trips(commands in prop::collection::vec(command(), 1..80), cut in 0usize..80) {
        let cut = cut.min(commands.len());
        let (full, _) = replay(&commands);
        let (prefix, _) = replay(&commands[..cut]);
        let bytes = serde_json::to_vec(&prefix).unwrap();
        let mut restored: State = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&restored, &prefix);
        for (i, c) in commands.iter().enumerate().skip(cut) {
            let _ = apply(&mut restored, i as u64 + 1, Command::V1(c.clone()));
        }
        prop_assert_eq!(restored, full);
    }

    #[test]
    fn rejections_change_nothing_but_the_applied_index(commands in prop::collection::vec(command(), 1..60)) {
        let mut state = granted(State::default());
        for (i, c) in commands.iter().enumerate() {
            let before = state.clone();
            if apply(&mut state, i as u64 + 1, Command::V1(c.clone())).is_err() {
                let mut expected = before;
                expected.applied_index = i as u64 + 1;
                prop_assert_eq!(&state, &expected, "command {:?}", c);
            }
        }
    }

    #[test]
    fn committed_placements_never_overcommit(commands in prop::collection::vec(command(), 1..80)) {
        let (state, _) = replay(&commands);
        for node in state.nodes.values() {
            let (used, gpus) = state.allocated_on(&node.id);
            prop_assert!(used.cpu_millis <= node.inventory.cpu_millis);
            prop_assert!(used.memory_mib <= node.inventory.memory_mib);
            let mut unique = gpus.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), gpus.len(), "a GPU is double-booked on {}", node.id);
            prop_assert!(gpus.iter().all(|g| node.inventory.gpus.iter().any(|ng| &ng.uuid == g)));
        }
    }
}

/// A state whose catalog has the CPU instance type `it0` and the CPU image `cpu`
/// (entries 1 and 2).
pub(crate) fn cpu_catalog() -> State {
    let mut state = State::default();
    let it = InstanceType { name: "it0".into(), cpu_millis: 1000, memory_mib: 1024, gpu_count: 0, gpu_model: None };
    let image = Image {
        name: "cpu".into(),
        reference: "r".into(),
        core_type: ImageCoreType::Cpu,
        framework: Framework::Python,
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    apply(&mut state, 1, CommandV1::PutInstanceType { instance_type: it }.into()).unwrap();
    apply(&mut state, 2, CommandV1::PutImage { image }.into()).unwrap();
    granted(state)
}

#[test]
fn create_is_idempotent_per_request_id_and_rejects_other_duplicates() {
    let mut state = cpu_catalog();
    let create = |req: &str| CommandV1::CreateTraining {
        project: "p".into(),
        id: format!("trn-{req}"),
        experiment_id: "exp-1".into(),
        request_id: req.into(),
        spec: spec("t", "e", "it0", "cpu", 1),
        now_ms: 5,
    };
    let first = apply(&mut state, 3, create("r1").into()).unwrap();
    let retry = apply(&mut state, 4, create("r1").into()).unwrap();
    assert_eq!(first, retry);
    assert!(matches!(apply(&mut state, 5, create("r2").into()), Err(super::Rejected::AlreadyExists { .. })));
    assert_eq!(state.projects["p"].trainings.len(), 1);
    assert_eq!(state.workloads.len(), 1);
}

#[test]
fn an_experiment_with_trainings_cannot_be_deleted() {
    let mut state = cpu_catalog();
    apply(&mut state, 3, create_t("t1", 1).into()).unwrap();
    let err =
        apply(&mut state, 4, CommandV1::DeleteExperiment { project: "p".into(), name: "e".into() }.into()).unwrap_err();
    assert!(matches!(err, super::Rejected::FailedPrecondition { .. }));
    apply(
        &mut state,
        5,
        CommandV1::StopTraining { project: "p".into(), name: "t".into(), now_ms: 2, reason: String::new() }.into(),
    )
    .unwrap();
    assert_eq!(state.training("p", "t").unwrap().status, TrainingStatus::Stopped);
    apply(&mut state, 6, CommandV1::DeleteTraining { project: "p".into(), name: "t".into() }.into()).unwrap();
    apply(&mut state, 7, CommandV1::DeleteExperiment { project: "p".into(), name: "e".into() }.into()).unwrap();
}

#[test]
fn a_create_outside_the_grants_is_rejected_at_apply_and_changes_nothing() {
    let mut state = cpu_catalog();
    // Revoked after the API checked the form: the entry itself must still be refused.
    apply(&mut state, 3, CommandV1::SetStorageGrants { project: "p".into(), grants: StorageGrants::default() }.into())
        .unwrap();
    let before = state.clone();
    let create = create_t("t1", 1);
    let err = apply(&mut state, 4, create.into()).unwrap_err();
    assert!(
        matches!(&err, super::Rejected::PermissionDenied { reason } if reason.starts_with("spec.algorithm_path: ")),
        "{err:?}"
    );
    assert_eq!(state.projects, before.projects);
    assert!(state.workloads.is_empty());
}

fn node(name: &str, gpus: &[&str]) -> CommandV1 {
    CommandV1::RegisterNode {
        hostname: name.into(),
        address: String::new(),
        inventory: NodeInventory {
            cpu_millis: 8000,
            memory_mib: 8192,
            disk_mib: 0,
            gpus: gpus.iter().map(|u| Gpu { uuid: u.to_string(), model: "A100-80GB".into(), memory_mib: 1 }).collect(),
        },
        now_ms: 1,
    }
}

#[test]
fn regression_a_gpu_uuid_another_node_reports_is_rejected() {
    let mut state = cpu_catalog();
    apply(&mut state, 3, node("a", &["GPU-1", "GPU-2"]).into()).unwrap();
    let before = state.nodes.clone();
    let err = apply(&mut state, 4, node("b", &["GPU-3", "GPU-2"]).into()).unwrap_err();
    assert!(
        matches!(&err, super::Rejected::InvalidArgument { field, .. } if field == "inventory.gpus[1].uuid"),
        "{err:?}"
    );
    assert_eq!(state.nodes, before, "node b must not be registered");
    // The node that owns the GPU may register it again (a restart), and b without it.
    apply(&mut state, 5, node("a", &["GPU-1", "GPU-2"]).into()).unwrap();
    apply(&mut state, 6, node("b", &["GPU-3"]).into()).unwrap();
}

#[test]
fn regression_a_report_for_a_workload_restored_without_phases_does_not_panic() {
    let mut state = cpu_catalog();
    apply(&mut state, 3, node("a", &[]).into()).unwrap();
    let create = create_t("w1", 2);
    apply(&mut state, 4, create.into()).unwrap();
    let a = || Assignment { node_id: "a".into(), gpu_uuids: vec![] };
    let placement = Placement { assignments: vec![a(), a()] };
    apply(&mut state, 5, CommandV1::Place { workload_id: "w1".into(), placement, now_ms: 2, ports: None }.into())
        .unwrap();
    // As an older snapshot, written before phases were recorded, would restore it.
    state.workloads.get_mut("w1").unwrap().phases.clear();
    let report = |rank| CommandV1::ReportContainer {
        node_id: "a".into(),
        workload_id: "w1".into(),
        rank,
        phase: super::ContainerPhase::Running,
        reason: String::new(),
        now_ms: 3,
    };
    apply(&mut state, 6, report(1).into()).unwrap();
    assert_eq!(state.workloads["w1"].phases.len(), 2);
    assert_eq!(state.training("p", "t").unwrap().status, TrainingStatus::Running);
    apply(&mut state, 7, report(2).into()).unwrap_err();
}
