//! The generic schedulable unit. Trainings now — and notebooks, tuning trials and
//! endpoint pods later — all reduce to a [`WorkloadDemand`]: a gang of `count` identical
//! containers that must be placed whole or not at all.

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// What placement needs to know about a pending workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadDemand {
    pub id: String,
    /// Resources of one container (the instance type's shape).
    pub per_container: Resources,
    /// GPU core type every container's GPUs must be; `None` for CPU-only work.
    pub gpu_model: Option<String>,
    /// Gang size: all `count` containers are placed together or none is.
    pub count: u32,
    /// Anti-affinity: never two containers of workloads of the same group on one node
    /// (an endpoint stage's instances, group = stage id). `None`: no such rule.
    #[serde(default)]
    pub spread_group: Option<String>,
}

/// Where one container of a gang runs and which GPUs it owns exclusively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    pub node_id: String,
    pub gpu_uuids: Vec<String>,
}

/// A whole gang's placement; `assignments[rank]` is container `rank`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub assignments: Vec<Assignment>,
}
