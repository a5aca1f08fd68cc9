//! Rendezvous ports of gangs whose ranks run on several nodes.
//!
//! Such a gang is on the hosts' network (its ranks reach each other at the node
//! addresses), so the ports its ranks listen on are the nodes' own. The leader gives
//! each one a block ([`GangPorts`]) from the configured range that no live workload
//! holds on any node of the gang, inside the `Place` entry; apply checks it the way it
//! checks GPUs, so every replica agrees and a stale decision is refused. A block is
//! released with its workload.

use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::{GangPorts, Placement, PortRange};

use super::{Rejected, State};

/// True when the gang's ranks are on more than one node.
pub fn spans_nodes(placement: &Placement) -> bool {
    let mut nodes = placement.assignments.iter().map(|a| a.node_id.as_str());
    let first = nodes.next();
    nodes.any(|n| Some(n) != first)
}

/// The blocks held on each node.
#[derive(Debug, Default)]
pub struct PortBook {
    by_node: BTreeMap<String, Vec<GangPorts>>,
}

impl PortBook {
    /// What the placed workloads of `state` hold.
    pub fn of(state: &State) -> PortBook {
        let mut book = PortBook::default();
        for w in state.workloads.values() {
            if let (Some(ports), Some(placement)) = (w.ports, &w.placement) {
                book.record(placement, ports);
            }
        }
        book
    }

    fn record(&mut self, placement: &Placement, ports: GangPorts) {
        let nodes: BTreeSet<&str> = placement.assignments.iter().map(|a| a.node_id.as_str()).collect();
        for node in nodes {
            self.by_node.entry(node.to_string()).or_default().push(ports);
        }
    }

    fn used_on(&self, placement: &Placement) -> Vec<GangPorts> {
        let nodes: BTreeSet<&str> = placement.assignments.iter().map(|a| a.node_id.as_str()).collect();
        nodes.into_iter().flat_map(|n| self.by_node.get(n).into_iter().flatten().copied()).collect()
    }

    /// The node of `placement` where `ports` overlap a block already held, if any.
    pub fn conflict<'p>(&self, placement: &'p Placement, ports: &GangPorts) -> Option<&'p str> {
        placement
            .assignments
            .iter()
            .map(|a| a.node_id.as_str())
            .find(|n| self.by_node.get(*n).is_some_and(|held| held.iter().any(|h| h.overlaps(ports))))
    }

    /// Takes the lowest free block in `range` for `placement` (a gang on several nodes)
    /// and records it, so gangs planned together get different blocks.
    pub fn reserve(&mut self, placement: &Placement, range: PortRange) -> Option<GangPorts> {
        let ranks = u32::try_from(placement.assignments.len()).ok()?;
        let ports = range.first_free(ranks, &self.used_on(placement))?;
        self.record(placement, ports);
        Some(ports)
    }
}

/// The check of a `Place` entry's ports against the state it applies to.
pub(super) fn check(state: &State, placement: &Placement, ports: Option<&GangPorts>) -> Result<(), Rejected> {
    let Some(ports) = ports else { return Ok(()) };
    if !spans_nodes(placement) {
        return Err(Rejected::invalid("ports", "only a gang on several nodes is given ports"));
    }
    if usize::from(ports.count) != placement.assignments.len() + 1 || GangPorts::for_gang(ports.first, 0).is_none() {
        return Err(Rejected::invalid("ports", "a block holds one port per rank plus the rendezvous port"));
    }
    if ports.last() > u32::from(u16::MAX) {
        return Err(Rejected::invalid("ports", "the block runs past port 65535"));
    }
    if let Some(node) = PortBook::of(state).conflict(placement, ports) {
        return Err(Rejected::precondition(format!(
            "placement no longer fits: ports {}-{} are taken on node {node}",
            ports.first,
            ports.last()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gantry_domain::Assignment;

    use super::*;
    use crate::state::tests::{cpu_catalog, create_t};
    use crate::state::{CommandV1, apply};

    fn on(nodes: &[&str]) -> Placement {
        Placement {
            assignments: nodes.iter().map(|n| Assignment { node_id: n.to_string(), gpu_uuids: vec![] }).collect(),
        }
    }

    fn nodes(state: &mut State, names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            let node = CommandV1::RegisterNode {
                hostname: name.to_string(),
                address: format!("10.0.0.{i}"),
                inventory: gantry_domain::NodeInventory { cpu_millis: 2000, memory_mib: 8192, ..Default::default() },
                now_ms: 1,
            };
            apply(state, 100 + i as u64, node.into()).unwrap();
        }
    }

    fn create(state: &mut State, index: u64, id: &str, name: &str, count: u32) {
        let CommandV1::CreateTraining { project, id, experiment_id, request_id, mut spec, now_ms } =
            create_t(id, count)
        else {
            unreachable!()
        };
        spec.name = name.into();
        let cmd = CommandV1::CreateTraining { project, id, experiment_id, request_id, spec, now_ms };
        apply(state, index, cmd.into()).unwrap();
    }

    /// Regression (issue 9): two gangs across the same nodes both got 29500/2222.
    #[test]
    fn regression_two_gangs_sharing_nodes_get_distinct_ports() {
        let mut state = cpu_catalog();
        // Two 1-CPU ranks fit a node: a gang of 3 spans two nodes, and two such gangs
        // on three nodes share at least one.
        nodes(&mut state, &["a", "b", "c"]);
        create(&mut state, 200, "w1", "t1", 3);
        create(&mut state, 201, "w2", "t2", 3);
        let mut index = 300;
        for _ in 0..3 {
            for c in crate::controller::placement::plan(&state, 5, PortRange::default()) {
                if let CommandV1::Place { placement, ports, .. } = &c {
                    assert!(spans_nodes(placement) && ports.is_some(), "{c:?}");
                }
                index += 1;
                apply(&mut state, index, c.into()).unwrap();
            }
        }
        let placed = |id: &str| {
            let w = &state.workloads[id];
            let nodes: BTreeSet<String> =
                w.placement.as_ref().unwrap().assignments.iter().map(|a| a.node_id.clone()).collect();
            (w.ports.expect("placed with ports"), nodes)
        };
        let ((p1, n1), (p2, n2)) = (placed("w1"), placed("w2"));
        assert!(n1.intersection(&n2).next().is_some(), "the gangs share a node: {n1:?} {n2:?}");
        assert!(!p1.overlaps(&p2), "{p1:?} {p2:?}");
        assert!(PortRange::default().contains(&p1) && PortRange::default().contains(&p2));

        // Ending a gang releases its block: a new gang on those nodes may take it again.
        let stop = CommandV1::StopTraining { project: "p".into(), name: "t1".into(), now_ms: 6, reason: String::new() };
        apply(&mut state, 400, stop.into()).unwrap();
        let w1 = state.workloads["w1"].placement.clone().unwrap();
        for (rank, a) in w1.assignments.iter().enumerate() {
            let report = CommandV1::ReportContainer {
                node_id: a.node_id.clone(),
                workload_id: "w1".into(),
                rank: rank as u32,
                phase: crate::state::ContainerPhase::Stopped,
                reason: String::new(),
                now_ms: 7,
            };
            apply(&mut state, 401 + rank as u64, report.into()).unwrap();
        }
        // The block is held until every rank's container is reported gone.
        assert!(state.workloads.contains_key("w1"));
        for (rank, a) in w1.assignments.iter().enumerate() {
            let gone =
                CommandV1::ContainerGone { node_id: a.node_id.clone(), workload_id: "w1".into(), rank: rank as u32 };
            apply(&mut state, 410 + rank as u64, gone.into()).unwrap();
        }
        assert!(!state.workloads.contains_key("w1"));
        let again = PortBook::of(&state).reserve(&w1, PortRange::default());
        // The lowest block free beside w2's, which is what w1 held.
        assert_eq!(again, Some(p1));
    }

    #[test]
    fn apply_refuses_taken_or_malformed_ports() {
        let mut state = cpu_catalog();
        nodes(&mut state, &["a", "b"]);
        create(&mut state, 200, "w1", "t1", 2);
        create(&mut state, 201, "w2", "t2", 2);
        let place = |id: &str, placement: Placement, ports: Option<GangPorts>| CommandV1::Place {
            workload_id: id.into(),
            placement,
            now_ms: 3,
            ports,
        };
        let block = GangPorts { first: 29500, count: 3 };
        apply(&mut state, 300, place("w1", on(&["a", "b"]), Some(block)).into()).unwrap();
        let before = state.clone();
        // Overlapping on a shared node (a stale leader's choice), the wrong size, ports
        // for a gang on one node: all refused, nothing changes.
        for (ports, placement) in [
            (GangPorts { first: 29502, count: 3 }, on(&["b", "a"])),
            (GangPorts { first: 29600, count: 2 }, on(&["a", "b"])),
            (GangPorts { first: 29600, count: 3 }, on(&["a", "a"])),
            (GangPorts { first: 65535, count: 3 }, on(&["a", "b"])),
        ] {
            let out = apply(&mut state, 301, place("w2", placement, Some(ports)).into());
            assert!(out.is_err(), "{ports:?}");
            assert_eq!(state.workloads, before.workloads);
        }
        // An entry from before ports existed still applies (replay of an old log).
        apply(&mut state, 302, place("w2", on(&["a", "b"]), None).into()).unwrap();
        assert_eq!(state.workloads["w2"].ports, None);
    }
}
