//! The replicated state machine: cluster catalogs, nodes, project resources and the
//! workloads placement works on.
//!
//! ```text
//!   raft log ──entry──▶ apply(&mut State, index, Command) ──▶ Outcome (Applied | Rejected)
//!                              (pure: no clock, no I/O)
//! ```
//!
//! Every replica applies the same entries in the same order and so holds the same
//! `State`; snapshots are this struct serialized.

mod apply;
mod command;
pub mod containers;
pub mod endpoints;
pub mod gpu_health;
pub mod index;
mod models;
mod node_loss;
mod nodes;
mod outcome;
pub mod ownership;
mod release;
pub mod rendezvous;
pub mod revocations;
mod workload;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod invariants;
#[cfg(test)]
mod models_tests;
#[cfg(test)]
mod regressions;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

use gantry_domain::{Experiment, Image, InstanceType, Model, Node, NodeStatus, Resources, StorageGrants, Training};
use gantry_placement::{FreeGpu, NodeSnapshot};
use serde::{Deserialize, Serialize};

pub use apply::apply;
pub use command::{Command, CommandV1};
pub use containers::ContainerPhase;
pub use index::Workloads;
pub use outcome::{Applied, Outcome, Rejected};
pub use workload::{Workload, WorkloadOwner};

/// One project's (appkey's) resources, keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub experiments: BTreeMap<String, Experiment>,
    pub trainings: BTreeMap<String, Training>,
    /// By name.
    #[serde(default)]
    pub models: BTreeMap<String, Model>,
    /// By name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, gantry_domain::endpoint::Endpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub instance_types: BTreeMap<String, InstanceType>,
    pub images: BTreeMap<String, Image>,
    /// By node id.
    pub nodes: BTreeMap<String, Node>,
    pub projects: BTreeMap<String, Project>,
    /// Workloads that want or hold node resources, by id. Removed when their owner ends.
    pub workloads: Workloads,
    /// Index of the last applied log entry.
    pub applied_index: u64,
    /// The storage each project may use, by project (absent: nothing granted).
    #[serde(default)]
    pub storage_grants: BTreeMap<String, StorageGrants>,
    /// Revoked nodes, by node id (see [`revocations`]).
    #[serde(default)]
    pub node_revocations: BTreeMap<String, revocations::NodeRevocation>,
    /// The public key (hex) each node joined with, by node id.
    #[serde(default)]
    pub join_keys: BTreeMap<String, String>,
    /// Host ports pods are published on (`None`: `endpoints::DEFAULT_POD_PORTS`).
    #[serde(default)]
    pub pod_ports: Option<(u16, u16)>,
}

impl State {
    pub fn project(&self, project: &str) -> Option<&Project> {
        self.projects.get(project)
    }

    pub fn training(&self, project: &str, name: &str) -> Option<&Training> {
        self.projects.get(project)?.trainings.get(name)
    }

    /// The project's storage grants (empty when it has none).
    pub fn grants(&self, project: &str) -> StorageGrants {
        self.storage_grants.get(project).cloned().unwrap_or_default()
    }

    pub fn model(&self, project: &str, name: &str) -> Option<&Model> {
        self.projects.get(project)?.models.get(name)
    }

    pub fn experiment(&self, project: &str, name: &str) -> Option<&Experiment> {
        self.projects.get(project)?.experiments.get(name)
    }

    pub fn trainings_of_experiment<'a>(
        &'a self,
        project: &str,
        experiment_id: &'a str,
    ) -> impl Iterator<Item = &'a Training> + 'a {
        self.projects
            .get(project)
            .into_iter()
            .flat_map(|p| p.trainings.values())
            .filter(move |t| t.experiment_id == experiment_id)
    }

    /// Resources and GPU uuids held on `node_id` by placed workloads (uuids in order).
    pub fn allocated_on(&self, node_id: &str) -> (Resources, Vec<String>) {
        match self.workloads.load_on(node_id) {
            Some(load) => (load.used(), load.held_gpus().cloned().collect()),
            None => (Resources::ZERO, Vec::new()),
        }
    }

    /// What placement sees: every READY node with what is still free on it (a GPU its
    /// agent reported unhealthy is never free).
    pub fn node_snapshots(&self) -> Vec<NodeSnapshot> {
        self.nodes.values().filter_map(|n| self.node_snapshot(n)).collect()
    }

    /// What placement sees of one node (`None` unless it is READY); costs the node's
    /// GPUs, not the workloads.
    pub fn node_snapshot(&self, n: &Node) -> Option<NodeSnapshot> {
        if n.status != NodeStatus::Ready {
            return None;
        }
        let load = self.workloads.load_on(&n.id);
        let capacity = n.inventory.capacity();
        let used = load.map_or(Resources::ZERO, |l| l.used());
        let free_gpus: Vec<FreeGpu> = n
            .inventory
            .gpus
            .iter()
            .filter(|g| !load.is_some_and(|l| l.holds_gpu(&g.uuid)) && !n.unhealthy_gpus.contains_key(&g.uuid))
            .map(|g| FreeGpu { uuid: g.uuid.clone(), model: g.model.clone() })
            .collect();
        let mut free = capacity.saturating_sub(&used);
        free.gpus = free_gpus.len() as u32;
        let spread_groups = self
            .workloads
            .on_node(&n.id)
            .filter(|(_, w)| !w.ended)
            .filter_map(|(_, w)| w.demand.spread_group.clone())
            .collect();
        Some(NodeSnapshot { id: n.id.clone(), free, capacity, free_gpus, spread_groups })
    }
}
