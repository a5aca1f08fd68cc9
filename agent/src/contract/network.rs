//! Which network a training container joins and the names its gang's ranks know each
//! other by (pure).
//!
//! | the gang's ranks | network | rank hostnames |
//! | --- | --- | --- |
//! | one container, or all on this node | the workload's own bridge network `gantry-{cluster}-{workload}` | `{training}-{rank}`, DNS aliases on that network |
//! | on several nodes | the host's, on the ports the scheduler allocated to the gang | the node addresses |
//!
//! Two trainings never share a bridge network, so one cannot reach the other's
//! processes there; on the hosts' network their ports differ.

use super::distributed::RendezvousPorts;
use crate::runtime::{Network, workload_network_name};

/// The part of an assignment the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct GangPlacement<'a> {
    pub cluster: &'a str,
    /// This agent's node.
    pub node_id: &'a str,
    pub workload_id: &'a str,
    pub training_name: &'a str,
    pub rank: u32,
    pub instance_count: u32,
    /// The node of every rank, by rank. An assignment from a scheduler that does not
    /// send it (empty) counts as spanning nodes, the case that still works.
    pub rank_node_ids: &'a [String],
    /// The address of every rank's node, by rank.
    pub rank_addresses: &'a [String],
    /// The gang's ports on the hosts' network from the scheduler (0 / empty: none).
    pub master_port: u32,
    pub worker_ports: &'a [u32],
}

/// Where one training container goes on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingNetwork {
    pub network: Network,
    /// Every rank's hostname, by rank (for `MASTER_ADDR`, `TF_CONFIG`).
    pub hostnames: Vec<String>,
    /// This container's own hostname; `None` on the host's network.
    pub hostname: Option<String>,
    /// Where the gang's ranks listen.
    pub ports: RendezvousPorts,
}

/// True when the gang's ranks are on more than one node.
pub fn spans_nodes(p: &GangPlacement<'_>) -> bool {
    p.instance_count > 1
        && (p.rank_node_ids.len() != p.instance_count as usize || p.rank_node_ids.iter().any(|n| n != p.node_id))
}

pub fn training_network(p: &GangPlacement<'_>) -> TrainingNetwork {
    if spans_nodes(p) {
        return TrainingNetwork {
            network: Network::HostForMultiNodeGang,
            hostnames: p.rank_addresses.to_vec(),
            hostname: None,
            ports: RendezvousPorts::from_assignment(p.master_port, p.worker_ports, p.instance_count),
        };
    }
    let hostnames: Vec<String> = (0..p.instance_count.max(1)).map(|r| format!("{}-{r}", p.training_name)).collect();
    let own = hostnames.get(p.rank as usize).cloned().unwrap_or_else(|| format!("{}-{}", p.training_name, p.rank));
    TrainingNetwork {
        network: Network::Workload {
            name: workload_network_name(p.cluster, p.workload_id),
            aliases: vec![own.clone()],
        },
        hostnames,
        hostname: Some(own),
        ports: RendezvousPorts::fixed(p.instance_count.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement<'a>(count: u32, nodes: &'a [String], addresses: &'a [String]) -> GangPlacement<'a> {
        GangPlacement {
            cluster: "c",
            node_id: "n1",
            workload_id: "w7",
            training_name: "train",
            rank: 1.min(count - 1),
            instance_count: count,
            rank_node_ids: nodes,
            rank_addresses: addresses,
            master_port: 29503,
            worker_ports: &[29504, 29505],
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_single_container_gets_the_workload_network() {
        let (nodes, addrs) = (strings(&["n1"]), strings(&["10.0.0.1"]));
        let n = training_network(&placement(1, &nodes, &addrs));
        assert_eq!(n.network, Network::Workload { name: "gantry-c-w7".into(), aliases: strings(&["train-0"]) });
        assert_eq!((n.hostnames, n.hostname), (strings(&["train-0"]), Some("train-0".into())));
    }

    #[test]
    fn a_gang_on_this_node_shares_the_workload_network_and_finds_ranks_by_name() {
        let (nodes, addrs) = (strings(&["n1", "n1"]), strings(&["10.0.0.1", "10.0.0.1"]));
        let n = training_network(&placement(2, &nodes, &addrs));
        assert_eq!(n.network, Network::Workload { name: "gantry-c-w7".into(), aliases: strings(&["train-1"]) });
        assert_eq!(n.hostnames, strings(&["train-0", "train-1"]));
        assert_eq!(n.ports, RendezvousPorts::fixed(2), "its own network: the default ports");
    }

    #[test]
    fn a_gang_across_nodes_or_of_unknown_placement_uses_the_host_network() {
        let addrs = strings(&["10.0.0.1", "10.0.0.2"]);
        for nodes in [strings(&["n1", "n2"]), Vec::new()] {
            let n = training_network(&placement(2, &nodes, &addrs));
            assert_eq!(n.network, Network::HostForMultiNodeGang);
            assert_eq!((n.hostnames, n.hostname), (addrs.clone(), None));
            assert_eq!(n.ports, RendezvousPorts { master: 29503, workers: vec![29504, 29505] });
        }
    }
}
