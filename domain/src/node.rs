//! Nodes: the servers agents run on, as the scheduler knows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// One physical GPU as NVML (or a fake inventory) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    pub uuid: String,
    pub model: String,
    pub memory_mib: u64,
}

/// What a node offers to workloads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeInventory {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub gpus: Vec<Gpu>,
}

impl NodeInventory {
    pub fn capacity(&self) -> Resources {
        Resources::new(self.cpu_millis, self.memory_mib, self.gpus.len() as u32)
    }
}

/// A node's standing with the scheduler. Only `Ready` nodes receive new placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    Ready,
    /// Heartbeats stopped past the timeout; its workloads are being failed over.
    Down,
    /// The operator asked for no new work; running work continues.
    Draining,
}

impl NodeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeStatus::Ready => "READY",
            NodeStatus::Down => "DOWN",
            NodeStatus::Draining => "DRAINING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub address: String,
    pub inventory: NodeInventory,
    pub status: NodeStatus,
    pub registered_at_ms: u64,
    pub status_changed_at_ms: u64,
    /// GPUs its agent reported unhealthy, by UUID: placement skips them. Changed only
    /// when the agent's report changes (a raft entry each time, not per heartbeat).
    #[serde(default)]
    pub unhealthy_gpus: BTreeMap<String, GpuFault>,
}

/// Why a GPU must not get work, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuFault {
    pub reason: String,
    pub since_ms: u64,
}

impl Node {
    /// All GPUs of the node are of one model in practice; a mixed node reports the most
    /// common one first and placement treats each model separately.
    pub fn gpu_models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = self.inventory.gpus.iter().map(|g| g.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        models
    }
}
