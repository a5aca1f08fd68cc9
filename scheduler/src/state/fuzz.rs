//! `apply` under random command sequences, valid and invalid: it never panics, and after
//! every step the state keeps its invariants (see [`super::invariants::check`]).
//!
//! Commands are drawn as templates and resolved against the current state, so most of
//! them hit live records (a report for a placed rank, a placement for a pending
//! workload) while the rest use wrong ranks, unknown ids and foreign GPUs.

use gantry_domain::*;
use proptest::prelude::*;
use proptest::sample::Index;

use super::invariants::check;
use super::tests::{granted, spec};
use super::{Command, CommandV1, ContainerPhase, State, apply};

const NODES: u32 = 4;
const GPUS_PER_NODE: u32 = 4;
const PHASES: [ContainerPhase; 6] = [
    ContainerPhase::Pending,
    ContainerPhase::Running,
    ContainerPhase::Uploading,
    ContainerPhase::Succeeded,
    ContainerPhase::Failed,
    ContainerPhase::Stopped,
];

/// A command before its targets are picked from the state it is applied to.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    InstanceType {
        gpus: u32,
        cpus: u64,
    },
    DeleteInstanceType {
        gpus: u32,
    },
    Image {
        gpu: bool,
    },
    DeleteImage {
        gpu: bool,
    },
    Grants {
        project: usize,
        grant: bool,
    },
    Register {
        node: u32,
        cpu_millis: u64,
        gpus: Vec<u32>,
        via_join: bool,
        key: u32,
    },
    NodeStatus {
        node: u32,
        down: bool,
    },
    Revoke {
        node: u32,
    },
    Admit {
        node: u32,
    },
    CreateExperiment {
        project: usize,
        name: usize,
    },
    DeleteExperiment {
        project: usize,
        name: usize,
    },
    Create {
        project: usize,
        name: usize,
        gpus: u32,
        gpu_image: bool,
        count: u32,
        request: u32,
    },
    Stop {
        training: Index,
    },
    Delete {
        training: Index,
    },
    SetStatus {
        training: Index,
        status: usize,
    },
    /// A placement for a workload: `fit` builds one from free resources, otherwise the
    /// ranks, nodes and GPUs are random.
    Place {
        workload: Index,
        fit: bool,
        ranks: Vec<(u32, Vec<u32>)>,
    },
    Reasons {
        workloads: Vec<Index>,
    },
    Report {
        workload: Index,
        rank: u32,
        own_node: bool,
        node: u32,
        phase: usize,
    },
    /// An agent reports a rank's container removed (frees its resources once ended).
    Gone {
        workload: Index,
        rank: u32,
        own_node: bool,
        node: u32,
    },
    /// A model from an external path (`training` None) or from a training picked from
    /// every project's (so some are in another project, missing or not COMPLETE).
    CreateModel {
        project: usize,
        name: usize,
        training: Option<Index>,
        request: u32,
    },
    UpdateModel {
        model: Index,
        new_name: Option<usize>,
    },
    DeleteModel {
        model: Index,
    },
    /// Endpoints, stages, pods and gateway reports (see `endpoints::fuzz`).
    Endpoint(super::endpoints::fuzz::EpOp),
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..NODES + 1; // the last one never registers
    prop_oneof![
        1 => (0u32..3, 1u64..9).prop_map(|(gpus, cpus)| Op::InstanceType { gpus, cpus }),
        1 => (0u32..3).prop_map(|gpus| Op::DeleteInstanceType { gpus }),
        1 => any::<bool>().prop_map(|gpu| Op::Image { gpu }),
        1 => any::<bool>().prop_map(|gpu| Op::DeleteImage { gpu }),
        1 => (0usize..2, prop::bool::weighted(0.8)).prop_map(|(project, grant)| Op::Grants { project, grant }),
        3 => (node.clone(), 0u64..12_000, prop::collection::vec(0..GPUS_PER_NODE * NODES, 0..5), any::<bool>(), 0u32..2)
            .prop_map(|(node, cpu_millis, gpus, via_join, key)| Op::Register { node, cpu_millis, gpus, via_join, key }),
        1 => (node.clone(), prop::bool::weighted(0.6)).prop_map(|(node, down)| Op::NodeStatus { node, down }),
        1 => node.clone().prop_map(|node| Op::Revoke { node }),
        1 => node.clone().prop_map(|node| Op::Admit { node }),
        1 => (0usize..2, 0usize..3).prop_map(|(project, name)| Op::CreateExperiment { project, name }),
        1 => (0usize..2, 0usize..3).prop_map(|(project, name)| Op::DeleteExperiment { project, name }),
        5 => (0usize..2, 0usize..4, 0u32..3, prop::bool::weighted(0.7), 0u32..4, 0u32..3).prop_map(
            |(project, name, gpus, gpu_image, count, request)| Op::Create { project, name, gpus, gpu_image, count, request }
        ),
        2 => any::<Index>().prop_map(|training| Op::Stop { training }),
        2 => any::<Index>().prop_map(|training| Op::Delete { training }),
        1 => (any::<Index>(), 0usize..TrainingStatus::ALL.len()).prop_map(|(training, status)| Op::SetStatus { training, status }),
        6 => (any::<Index>(), prop::bool::weighted(0.7), prop::collection::vec((node.clone(), prop::collection::vec(0..GPUS_PER_NODE * NODES, 0..3)), 0..4))
            .prop_map(|(workload, fit, ranks)| Op::Place { workload, fit, ranks }),
        1 => prop::collection::vec(any::<Index>(), 0..3).prop_map(|workloads| Op::Reasons { workloads }),
        8 => (any::<Index>(), 0u32..5, prop::bool::weighted(0.8), node, 0usize..PHASES.len())
            .prop_map(|(workload, rank, own_node, node, phase)| Op::Report { workload, rank, own_node, node, phase }),
        8 => super::endpoints::fuzz::op().prop_map(Op::Endpoint),
        4 => (any::<Index>(), 0u32..5, prop::bool::weighted(0.8), 0..NODES + 1)
            .prop_map(|(workload, rank, own_node, node)| Op::Gone { workload, rank, own_node, node }),
        2 => (0usize..2, 0usize..3, prop::option::weighted(0.7, any::<Index>()), 0u32..3)
            .prop_map(|(project, name, training, request)| Op::CreateModel { project, name, training, request }),
        1 => (any::<Index>(), prop::option::of(0usize..3)).prop_map(|(model, new_name)| Op::UpdateModel { model, new_name }),
        1 => any::<Index>().prop_map(|model| Op::DeleteModel { model }),
    ]
}

fn node_name(n: u32) -> String {
    format!("node{n}")
}

/// GPU `g` of the fleet's pool: it belongs to node `g / GPUS_PER_NODE`, so a node that
/// registers another node's GPU collides with it.
fn gpu_uuid(g: u32) -> String {
    format!("GPU-{g}")
}

const PROJECTS: [&str; 2] = ["p1", "p2"];
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// Picks the `i`th of `items`, or a name nothing has when `i` lands past them (so
/// some commands name what does not exist).
fn pick<T: Clone>(items: &[T], i: &Index, missing: T) -> T {
    let slot = i.index(items.len() + 1);
    items.get(slot).cloned().unwrap_or(missing)
}

fn models(state: &State) -> Vec<(String, String)> {
    state.projects.iter().flat_map(|(p, proj)| proj.models.keys().map(move |n| (p.clone(), n.clone()))).collect()
}

fn trainings(state: &State) -> Vec<(String, String)> {
    state.projects.iter().flat_map(|(p, proj)| proj.trainings.keys().map(move |n| (p.clone(), n.clone()))).collect()
}

/// A placement that fits free resources when one exists (first fit, node by node).
fn fitting_placement(state: &State, demand: &WorkloadDemand) -> Placement {
    let mut nodes = state.node_snapshots();
    let mut assignments = Vec::new();
    for _ in 0..demand.count {
        let Some(n) = nodes.iter_mut().find(|n| {
            n.free.cpu_millis >= demand.per_container.cpu_millis
                && n.free.memory_mib >= demand.per_container.memory_mib
                && n.free_gpus.len() >= demand.per_container.gpus as usize
        }) else {
            break;
        };
        n.free.cpu_millis -= demand.per_container.cpu_millis;
        n.free.memory_mib -= demand.per_container.memory_mib;
        let gpus: Vec<String> = n.free_gpus.drain(..demand.per_container.gpus as usize).map(|g| g.uuid).collect();
        assignments.push(Assignment { node_id: n.id.clone(), gpu_uuids: gpus });
    }
    Placement { assignments }
}

/// The workload a report names and the node it comes from: the rank's own node when
/// `own_node` and the rank is placed, another one otherwise.
fn rank_target(state: &State, workload: &Index, rank: u32, own_node: bool, node: u32) -> (String, String) {
    let all: Vec<String> = state.workloads.keys().cloned().collect();
    let workload_id = pick(&all, workload, "missing".into());
    let placed_on = state
        .workloads
        .get(&workload_id)
        .and_then(|w| w.placement.as_ref())
        .and_then(|p| p.assignments.get(rank as usize))
        .map(|a| a.node_id.clone());
    let node_id = match placed_on {
        Some(n) if own_node => n,
        _ => node_name(node),
    };
    (workload_id, node_id)
}

/// The command `op` stands for in `state`.
pub(crate) fn resolve(op: &Op, state: &State, step: u64) -> CommandV1 {
    let now_ms = step;
    match op.clone() {
        Op::InstanceType { gpus, cpus } => CommandV1::PutInstanceType {
            instance_type: InstanceType {
                name: format!("it{gpus}"),
                cpu_millis: cpus * 1000,
                memory_mib: 1024,
                gpu_count: gpus,
                gpu_model: (gpus > 0).then(|| "A100-80GB".to_string()),
            },
        },
        Op::DeleteInstanceType { gpus } => CommandV1::DeleteInstanceType { name: format!("it{gpus}") },
        Op::Image { gpu } => CommandV1::PutImage {
            image: Image {
                name: if gpu { "gpu".into() } else { "cpu".into() },
                reference: "img".into(),
                core_type: if gpu { ImageCoreType::Gpu } else { ImageCoreType::Cpu },
                framework: Framework::Python,
                framework_version: String::new(),
                python_version: "3.11".into(),
            },
        },
        Op::DeleteImage { gpu } => CommandV1::DeleteImage { name: if gpu { "gpu".into() } else { "cpu".into() } },
        Op::Grants { project, grant } => CommandV1::SetStorageGrants {
            project: PROJECTS[project].into(),
            grants: if grant {
                StorageGrants { read: vec![], write: vec![StoragePath::File { path: "/".into() }] }
            } else {
                StorageGrants::default()
            },
        },
        Op::Register { node, cpu_millis, mut gpus, via_join, key } => {
            gpus.sort_unstable();
            gpus.dedup();
            let inventory = NodeInventory {
                cpu_millis,
                memory_mib: 8192,
                disk_mib: 0,
                gpus: gpus
                    .into_iter()
                    .map(|g| Gpu { uuid: gpu_uuid(g), model: "A100-80GB".into(), memory_mib: 1 })
                    .collect(),
            };
            let (hostname, address) = (node_name(node), String::new());
            if via_join {
                CommandV1::JoinNode { hostname, address, inventory, now_ms, key: format!("key{key}") }
            } else {
                CommandV1::RegisterNode { hostname, address, inventory, now_ms }
            }
        }
        Op::NodeStatus { node, down } => CommandV1::SetNodeStatus {
            node_id: node_name(node),
            status: if down { NodeStatus::Down } else { NodeStatus::Ready },
            now_ms,
            reason: String::new(),
        },
        Op::Revoke { node } => CommandV1::RevokeNode { node_id: node_name(node), reason: String::new(), now_ms },
        Op::Admit { node } => CommandV1::AdmitNode { node_id: node_name(node) },
        Op::CreateExperiment { project, name } => CommandV1::CreateExperiment {
            project: PROJECTS[project].into(),
            id: format!("exp-{step}"),
            request_id: String::new(),
            spec: ExperimentSpec { name: format!("e{name}"), description: String::new(), tags: vec![] },
            now_ms,
        },
        Op::DeleteExperiment { project, name } => {
            CommandV1::DeleteExperiment { project: PROJECTS[project].into(), name: format!("e{name}") }
        }
        Op::Create { project, name, gpus, gpu_image, count, request } => CommandV1::CreateTraining {
            project: PROJECTS[project].into(),
            // Ids are unique per create, as the API makes them.
            id: format!("trn-{step}"),
            experiment_id: format!("exp-{step}"),
            request_id: format!("req-{request}"),
            spec: spec(
                NAMES[name],
                &format!("e{}", name % 3),
                &format!("it{gpus}"),
                if gpu_image { "gpu" } else { "cpu" },
                count,
            ),
            now_ms,
        },
        Op::Stop { training } => {
            let (project, name) = pick(&trainings(state), &training, ("p1".into(), "missing".into()));
            CommandV1::StopTraining { project, name, now_ms, reason: String::new() }
        }
        Op::Delete { training } => {
            let (project, name) = pick(&trainings(state), &training, ("p1".into(), "missing".into()));
            CommandV1::DeleteTraining { project, name }
        }
        Op::SetStatus { training, status } => {
            let (project, name) = pick(&trainings(state), &training, ("p1".into(), "missing".into()));
            CommandV1::SetTrainingStatus {
                project,
                name,
                status: TrainingStatus::ALL[status],
                reason: "set".into(),
                now_ms,
            }
        }
        Op::Place { workload, fit, ranks } => {
            let pending: Vec<String> = state.workloads.pending().map(|(id, _)| id.clone()).collect();
            let all: Vec<String> = state.workloads.keys().cloned().collect();
            // Mostly pending ones; sometimes a placed one (already placed) or none.
            let ids = if fit { &pending } else { &all };
            let workload_id = pick(ids, &workload, "missing".into());
            let placement = match state.workloads.get(&workload_id) {
                Some(w) if fit => fitting_placement(state, &w.demand),
                _ => Placement {
                    assignments: ranks
                        .into_iter()
                        .map(|(node, gpus)| Assignment {
                            node_id: node_name(node),
                            gpu_uuids: gpus.into_iter().map(gpu_uuid).collect(),
                        })
                        .collect(),
                },
            };
            CommandV1::Place { workload_id, placement, now_ms, ports: None }
        }
        Op::Reasons { workloads } => {
            let all: Vec<String> = state.workloads.keys().cloned().collect();
            let reasons = workloads
                .iter()
                .enumerate()
                .map(|(i, w)| (pick(&all, w, "missing".into()), format!("reason {}", (step + i as u64) % 2)))
                .collect();
            CommandV1::SetPendingReasons { reasons, now_ms }
        }
        Op::Report { workload, rank, own_node, node, phase } => {
            let (workload_id, node_id) = rank_target(state, &workload, rank, own_node, node);
            CommandV1::ReportContainer { node_id, workload_id, rank, phase: PHASES[phase], reason: "r".into(), now_ms }
        }
        Op::Gone { workload, rank, own_node, node } => {
            let (workload_id, node_id) = rank_target(state, &workload, rank, own_node, node);
            CommandV1::ContainerGone { node_id, workload_id, rank }
        }
        Op::CreateModel { project, name, training, request } => {
            let source = match training {
                None => ModelSource::External,
                Some(i) => {
                    let (p, training_name) = pick(&trainings(state), &i, ("p1".into(), "missing".into()));
                    let training_id =
                        state.training(&p, &training_name).map_or("missing".into(), |t| t.meta.id.clone());
                    ModelSource::Training { training_id, training_name }
                }
            };
            let spec = ModelSpec {
                name: format!("m{name}"),
                description: String::new(),
                tags: vec![],
                framework: ModelFramework::PyTorch,
                framework_version: "2.1".into(),
                artifact_path: if source == ModelSource::External { "file:///models/m".into() } else { String::new() },
            };
            let request_id = format!("req-{request}");
            CommandV1::CreateModel {
                project: PROJECTS[project].into(),
                id: format!("mdl-{step}"),
                request_id,
                spec,
                source,
                now_ms,
            }
        }
        Op::UpdateModel { model, new_name } => {
            let (project, name) = pick(&models(state), &model, ("p1".into(), "missing".into()));
            let new_name = new_name.map(|n| format!("m{n}"));
            CommandV1::UpdateModel { project, name, new_name, description: Some("d".into()), tags: None, now_ms }
        }
        Op::DeleteModel { model } => {
            let (project, name) = pick(&models(state), &model, ("p1".into(), "missing".into()));
            CommandV1::DeleteModel { project, name }
        }
        Op::Endpoint(op) => super::endpoints::fuzz::resolve(&op, state, step, now_ms),
    }
}

/// The starting state: a catalog that lets creates succeed.
fn start() -> State {
    let mut state = granted(State::default());
    for op in [
        Op::InstanceType { gpus: 0, cpus: 1 },
        Op::InstanceType { gpus: 1, cpus: 2 },
        Op::InstanceType { gpus: 2, cpus: 2 },
        Op::Image { gpu: false },
        Op::Image { gpu: true },
    ] {
        let c = resolve(&op, &state, 0);
        apply(&mut state, 0, Command::V1(c)).expect("the catalog applies");
    }
    super::endpoints::fuzz::seed(&mut state);
    state
}

/// Applies `ops` from [`start`], checking after every step; `Err` says which step broke
/// what. A panic inside `apply` fails the property by itself.
pub(crate) fn run(ops: &[Op]) -> Result<State, String> {
    let mut state = start();
    for (i, op) in ops.iter().enumerate() {
        let step = i as u64 + 1;
        let command = resolve(op, &state, step);
        let before = state.clone();
        let outcome = apply(&mut state, step, Command::V1(command.clone()));
        if outcome.is_err() {
            let mut expected = before;
            expected.applied_index = step;
            if state != expected {
                return Err(format!("step {step}: the rejected {command:?} changed the state"));
            }
        }
        check(&state).map_err(|e| format!("step {step}, after {command:?} -> {outcome:?}: {e}"))?;
    }
    Ok(state)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn apply_keeps_every_invariant_under_random_commands(ops in prop::collection::vec(op(), 1..64)) {
        if let Err(e) = run(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}
