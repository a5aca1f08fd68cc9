//! The labels that mark a container as Gantry's, and selectors over them.
//!
//! Labels are the durable record of ownership: an agent restarted after a crash lists
//! containers by [`CLUSTER`] and [`NODE`] and learns which workload, rank and GPUs each
//! one holds without any local database.

use std::collections::BTreeMap;

/// The workload (training, notebook, …) the container belongs to.
pub const WORKLOAD: &str = "org.gantry.workload";
/// The node id of the agent that started it.
pub const NODE: &str = "org.gantry.node";
/// The cluster id, so two clusters sharing a Docker engine (tests) never see each
/// other's containers.
pub const CLUSTER: &str = "org.gantry.cluster";
/// The container's rank within its gang (0-based).
pub const RANK: &str = "org.gantry.rank";
/// The serving pod a container runs (endpoint stage instances only): its pod id.
pub const POD: &str = "org.gantry.pod";
/// Comma-separated UUIDs of the GPUs the container owns; set whenever it has GPUs, in
/// every [`crate::runtime::GpuMode`].
pub const GPUS: &str = "org.gantry.gpus";

/// The ownership labels every Gantry container carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GantryLabels {
    pub cluster: String,
    pub node: String,
    pub workload: String,
    pub rank: u32,
}

impl GantryLabels {
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (CLUSTER.to_string(), self.cluster.clone()),
            (NODE.to_string(), self.node.clone()),
            (WORKLOAD.to_string(), self.workload.clone()),
            (RANK.to_string(), self.rank.to_string()),
        ])
    }
}

/// Matches containers whose labels include every `key = value` pair; the empty
/// selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub BTreeMap<String, String>);

impl LabelSelector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a required `key = value` pair.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.to_string(), value.to_string());
        self
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Docker's `label` filter form: `key=value` per pair.
    pub fn to_docker_filters(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_requires_every_pair() {
        let labels = GantryLabels { cluster: "c".into(), node: "n1".into(), workload: "w".into(), rank: 2 }.to_map();
        assert!(LabelSelector::new().matches(&labels));
        assert!(LabelSelector::new().with(CLUSTER, "c").with(RANK, "2").matches(&labels));
        assert!(!LabelSelector::new().with(CLUSTER, "c").with(NODE, "n2").matches(&labels));
        assert!(!LabelSelector::new().with(GPUS, "x").matches(&labels));
        assert_eq!(
            LabelSelector::new().with(CLUSTER, "c").with(NODE, "n").to_docker_filters(),
            ["org.gantry.cluster=c", "org.gantry.node=n"]
        );
    }
}
