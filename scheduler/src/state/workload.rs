//! The replicated record of a schedulable unit.

use gantry_domain::{GangPorts, Placement, WorkloadDemand};

use super::containers::ContainerPhase;
use serde::{Deserialize, Serialize};

/// Which resource a workload runs for. Notebooks, tuning trials and endpoint pods add
/// variants here; placement never looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadOwner {
    Training { project: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub owner: WorkloadOwner,
    pub demand: WorkloadDemand,
    /// Image reference the containers run.
    pub image: String,
    /// `None` while pending.
    pub placement: Option<Placement>,
    /// Why it is still pending (empty once placed).
    pub pending_reason: String,
    /// Log index of its creation: the order placement considers pending work in.
    pub created_index: u64,
    /// Phase of each rank's container as its agent reported it; one per rank once
    /// placed, empty while pending.
    #[serde(default)]
    pub phases: Vec<ContainerPhase>,
    /// The ports of a gang on several nodes (see [`super::rendezvous`]), set at
    /// placement and released with the workload; `None` for a gang on one node.
    #[serde(default)]
    pub ports: Option<GangPorts>,
}
