//! Commands: the only way replicated state changes. Each is one Raft log entry.
//!
//! Commands are a versioned enum so that a log written by an older scheduler still
//! replays after an upgrade: new variants go into the newest version, old versions are
//! never changed, only translated on apply. Everything a command's effect depends on
//! (ids, times) is inside it, so every replica applies it identically.

use std::collections::BTreeMap;

use gantry_domain::{
    ExperimentSpec, GangPorts, Image, InstanceType, ModelSource, ModelSpec, NodeInventory, NodeStatus, Placement,
    StorageGrants, Tag, TrainingSpec, TrainingStatus,
};
use serde::{Deserialize, Serialize};

use super::containers::ContainerPhase;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    V1(CommandV1),
}

impl From<CommandV1> for Command {
    fn from(c: CommandV1) -> Self {
        Command::V1(c)
    }
}

// Commands are decoded once per entry and applied at once: a training form inline
// costs nothing that boxing it would save.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CommandV1 {
    /// Create or replace an instance type.
    PutInstanceType {
        instance_type: InstanceType,
    },
    /// Remove an instance type. Workloads already created keep their copied shape.
    DeleteInstanceType {
        name: String,
    },
    /// Create or replace an image.
    PutImage {
        image: Image,
    },
    DeleteImage {
        name: String,
    },
    /// An agent joined (or re-joined with a new inventory). Node id = hostname.
    RegisterNode {
        hostname: String,
        address: String,
        inventory: NodeInventory,
        now_ms: u64,
    },
    /// Marking a node DOWN ends what ran on it: running trainings FAIL TRAIN with
    /// `reason`, stopping ones are STOPPED (their containers are gone with the node).
    SetNodeStatus {
        node_id: String,
        status: NodeStatus,
        now_ms: u64,
        #[serde(default)]
        reason: String,
    },
    /// Precondition: `spec` passed `ExperimentSpec::validate`.
    CreateExperiment {
        project: String,
        id: String,
        request_id: String,
        spec: ExperimentSpec,
        now_ms: u64,
    },
    /// Fails while the experiment has trainings.
    DeleteExperiment {
        project: String,
        name: String,
    },
    /// Precondition: `spec` passed `TrainingSpec::validate`. `experiment_id` is used only
    /// when the experiment is created inline (`spec.create_experiment`).
    CreateTraining {
        project: String,
        id: String,
        experiment_id: String,
        request_id: String,
        spec: TrainingSpec,
        now_ms: u64,
    },
    /// A user's stop, or the deadline controller's when the maximum training time
    /// passed (`reason` says which; empty means a user's stop).
    StopTraining {
        project: String,
        name: String,
        now_ms: u64,
        #[serde(default)]
        reason: String,
    },
    /// Fails unless the training has ended.
    DeleteTraining {
        project: String,
        name: String,
    },
    /// The leader's placement decision. Re-checked against current free resources on
    /// apply, so a decision made on stale data (e.g. by a deposed leader) can never
    /// double-book a GPU: it is rejected instead. A gang on several nodes carries the
    /// ports the leader chose for it, checked the same way (an entry written before
    /// ports existed has none: its ranks use the frameworks' fixed ports).
    Place {
        workload_id: String,
        placement: Placement,
        now_ms: u64,
        #[serde(default)]
        ports: Option<GangPorts>,
    },
    /// Why pending workloads cannot be placed right now (only changed reasons are sent).
    SetPendingReasons {
        reasons: Vec<(String, String)>,
        now_ms: u64,
    },
    /// A status reported by the runtime (agents) or a controller.
    SetTrainingStatus {
        project: String,
        name: String,
        status: TrainingStatus,
        reason: String,
        now_ms: u64,
    },
    /// An agent reports a phase change of one container (rank) of a workload placed on
    /// its node.
    ReportContainer {
        node_id: String,
        workload_id: String,
        rank: u32,
        phase: ContainerPhase,
        reason: String,
        now_ms: u64,
    },
    /// An agent reports that the container of rank `rank` of an ended workload placed on
    /// its node is gone (exited and removed, or never started): the node resources
    /// that rank held are free from this entry on.
    ContainerGone {
        node_id: String,
        workload_id: String,
        rank: u32,
    },
    /// Replaces a project's storage grants; an empty set removes them. Workloads
    /// already created keep running; new ones are checked against the new grants.
    SetStorageGrants {
        project: String,
        grants: StorageGrants,
    },
    /// No-op used to measure replicated write throughput.
    Noop,
    /// An agent joins with the join token: a new node name, or a revoked one an operator
    /// admitted again (once). An existing name is refused (it re-registers with its own
    /// certificate, through `RegisterNode`).
    JoinNode {
        hostname: String,
        address: String,
        inventory: NodeInventory,
        now_ms: u64,
        /// The public key (hex) of the CSR the join asks a certificate for: a retry of
        /// a join whose answer was lost asks for the same key and is recognised by it.
        #[serde(default)]
        key: String,
    },
    /// Refuses the node's certificates issued before `now_ms` and marks it DOWN (its
    /// trainings end as for a lost node).
    RevokeNode {
        node_id: String,
        #[serde(default)]
        reason: String,
        now_ms: u64,
    },
    /// Allows one fresh join of a revoked node with the join token.
    AdmitNode {
        node_id: String,
    },
    /// The node's agent reports a different set of unhealthy GPUs (UUID → why); sent
    /// only when the set changes, never per heartbeat.
    SetGpuHealth {
        node_id: String,
        unhealthy: BTreeMap<String, String>,
        now_ms: u64,
    },
    /// Registers a model (see [`super::models`]). From a training, `source` names it
    /// and apply takes the artifact path from it (it must still exist and be
    /// COMPLETE); otherwise `spec.artifact_path` is used and must be readable under
    /// the project's grants.
    CreateModel {
        project: String,
        id: String,
        request_id: String,
        spec: ModelSpec,
        source: ModelSource,
        now_ms: u64,
    },
    /// Changes what the guide lets a user change: name, description, tags (each `Some`
    /// replaces the current value).
    UpdateModel {
        project: String,
        name: String,
        new_name: Option<String>,
        description: Option<String>,
        tags: Option<Vec<Tag>>,
        now_ms: u64,
    },
    /// Fails while an endpoint uses the model.
    DeleteModel {
        project: String,
        name: String,
    },
    /// Endpoints, stages, stage resources, pods and gateway reports (see
    /// [`super::endpoints`]).
    Endpoint(super::endpoints::EndpointCommand),
}
