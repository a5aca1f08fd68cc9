//! The replicated record of a schedulable unit.

use gantry_domain::{Assignment, GangPorts, Placement, WorkloadDemand};

use super::containers::ContainerPhase;
use serde::{Deserialize, Serialize};

/// Which resource a workload runs for. Notebooks, tuning trials and endpoint pods add
/// variants here; placement never looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadOwner {
    Training {
        project: String,
        name: String,
    },
    /// Instance `index` of an endpoint stage (ids, which never change on a rename).
    StageInstance {
        project: String,
        endpoint_id: String,
        stage_id: String,
        index: u32,
    },
}

impl WorkloadOwner {
    pub fn project(&self) -> &str {
        match self {
            WorkloadOwner::Training { project, .. } | WorkloadOwner::StageInstance { project, .. } => project,
        }
    }
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
    /// Its owner has ended. It stays only to hold the node resources of the ranks whose
    /// container may still exist, until their agents report them gone (see
    /// [`super::release`]).
    #[serde(default)]
    pub ended: bool,
    /// Per rank: its agent reported the container gone (exited and removed, or never
    /// started), so its resources are free again. Shorter than the ranks (an older
    /// snapshot): the missing ranks are not gone.
    #[serde(default)]
    pub gone: Vec<bool>,
}

impl Workload {
    /// The placed ranks that still hold their node's resources, with their rank.
    pub fn held(&self) -> impl Iterator<Item = (usize, &Assignment)> {
        self.placement
            .iter()
            .flat_map(|p| p.assignments.iter().enumerate())
            .filter(|(rank, _)| !self.gone.get(*rank).copied().unwrap_or(false))
    }
}
