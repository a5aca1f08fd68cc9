//! The workload table and the indexes `apply`, placement and the agent streams read
//! instead of scanning every workload.
//!
//! ```text
//!   Workloads ─┬─ map:   id ─▶ Workload                  (replicated, serialized)
//!              └─ index: node ─▶ load (sums, GPUs, ids)   (derived, never serialized)
//!                        GPU uuid ─▶ holders
//!                        pending, in placement order
//! ```
//!
//! The map can only be changed through [`Workloads::insert`], [`Workloads::remove`] and
//! [`Workloads::get_mut`] (whose guard re-indexes the workload when dropped), so the
//! index always equals [`Index::of`] the map: one write costs the entities it touches,
//! not the whole table. Deserializing rebuilds the index, so a restored snapshot carries
//! no stale one.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use gantry_domain::{Assignment, Resources};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Workload;

/// The containers of `w` that hold node resources (CPU, memory, GPUs) right now. The
/// one definition both the incremental and the from-scratch index use.
pub fn held_assignments(w: &Workload) -> impl Iterator<Item = &Assignment> {
    // An ended workload's ranks hold until their containers are reported gone.
    w.held().map(|(_, a)| a)
}

/// What the placed containers of every workload hold on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLoad {
    // Wide sums so adding and subtracting stay exact: no realistic table overflows them,
    // and the reported value saturates like `Resources::add` does.
    cpu_millis: u128,
    memory_mib: u128,
    gpus: u128,
    /// GPU uuids held here, with how many containers hold each (more than one only in
    /// a state that broke the no-double-booking rule; counting keeps removal exact).
    held_gpus: BTreeMap<String, u32>,
    /// Workloads with containers here, with how many.
    workloads: BTreeMap<String, u32>,
}

impl NodeLoad {
    /// Sum of the per-container demand of every container placed here.
    pub fn used(&self) -> Resources {
        let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        Resources {
            cpu_millis: sat(self.cpu_millis),
            memory_mib: sat(self.memory_mib),
            gpus: u32::try_from(self.gpus).unwrap_or(u32::MAX),
        }
    }

    /// Whether a container placed here holds GPU `uuid`.
    pub fn holds_gpu(&self, uuid: &str) -> bool {
        self.held_gpus.contains_key(uuid)
    }

    /// The GPU uuids held here, in uuid order, once per container holding each.
    pub fn held_gpus(&self) -> impl Iterator<Item = &String> {
        self.held_gpus.iter().flat_map(|(uuid, n)| std::iter::repeat_n(uuid, *n as usize))
    }

    fn is_empty(&self) -> bool {
        self.workloads.is_empty()
    }
}

/// Derived from the workload map alone; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    nodes: BTreeMap<String, NodeLoad>,
    /// GPU uuid → the workloads holding it (one in a consistent state).
    gpu_holders: BTreeMap<String, BTreeSet<String>>,
    /// Unplaced workloads by (creation index, id): the order placement considers them in.
    pending: BTreeSet<(u64, String)>,
}

/// The sign of an index update.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

fn count(map: &mut BTreeMap<String, u32>, key: &str, change: Change) {
    match change {
        Change::Add => *map.entry(key.to_string()).or_default() += 1,
        Change::Remove => {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

impl Index {
    /// The index of `map`, computed from scratch.
    pub fn of(map: &BTreeMap<String, Workload>) -> Index {
        let mut index = Index::default();
        for (id, w) in map {
            index.update(id, w, Change::Add);
        }
        index
    }

    fn update(&mut self, id: &str, w: &Workload, change: Change) {
        if w.placement.is_none() {
            let key = (w.created_index, id.to_string());
            match change {
                Change::Add => self.pending.insert(key),
                Change::Remove => self.pending.remove(&key),
            };
        }
        let per = &w.demand.per_container;
        for a in held_assignments(w) {
            let load = self.nodes.entry(a.node_id.clone()).or_default();
            let (cpu, mem, gpus) = (u128::from(per.cpu_millis), u128::from(per.memory_mib), u128::from(per.gpus));
            match change {
                Change::Add => {
                    load.cpu_millis += cpu;
                    load.memory_mib += mem;
                    load.gpus += gpus;
                }
                Change::Remove => {
                    load.cpu_millis -= cpu;
                    load.memory_mib -= mem;
                    load.gpus -= gpus;
                }
            }
            count(&mut load.workloads, id, change);
            for uuid in &a.gpu_uuids {
                count(&mut load.held_gpus, uuid, change);
                let holders = self.gpu_holders.entry(uuid.clone()).or_default();
                match change {
                    Change::Add => holders.insert(id.to_string()),
                    Change::Remove => holders.remove(id),
                };
                if holders.is_empty() {
                    self.gpu_holders.remove(uuid);
                }
            }
            if load.is_empty() {
                self.nodes.remove(&a.node_id);
            }
        }
    }
}

/// Bumped on every change to the pending set: a process-wide sequence, so a value never
/// comes back (not even after a snapshot restore) and "unchanged" is one comparison.
static PENDING_VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_pending_version() -> u64 {
    PENDING_VERSIONS.fetch_add(1, Ordering::Relaxed)
}

/// Workloads by id, with their [`Index`]. Reads go through `Deref` to the map.
#[derive(Clone)]
pub struct Workloads {
    map: BTreeMap<String, Workload>,
    index: Index,
    pending_version: u64,
}

impl Default for Workloads {
    fn default() -> Self {
        Workloads { map: BTreeMap::new(), index: Index::default(), pending_version: next_pending_version() }
    }
}

impl Workloads {
    pub fn insert(&mut self, id: String, w: Workload) -> Option<Workload> {
        let old = self.remove(&id);
        self.index.update(&id, &w, Change::Add);
        if w.placement.is_none() {
            self.pending_version = next_pending_version();
        }
        self.map.insert(id, w);
        old
    }

    pub fn remove(&mut self, id: &str) -> Option<Workload> {
        let w = self.map.remove(id)?;
        self.index.update(id, &w, Change::Remove);
        if w.placement.is_none() {
            self.pending_version = next_pending_version();
        }
        Some(w)
    }

    /// The workload, to change in place; the index follows when the guard is dropped.
    pub fn get_mut(&mut self, id: &str) -> Option<WorkloadMut<'_>> {
        let w = self.map.get_mut(id)?;
        self.index.update(id, w, Change::Remove);
        if w.placement.is_none() {
            self.pending_version = next_pending_version();
        }
        Some(WorkloadMut { id: id.to_string(), w, index: &mut self.index, pending_version: &mut self.pending_version })
    }

    /// What the containers placed on `node_id` hold (`None`: nothing is placed there).
    pub fn load_on(&self, node_id: &str) -> Option<&NodeLoad> {
        self.index.nodes.get(node_id)
    }

    /// The workloads with a container on `node_id`, by id.
    pub fn on_node<'a>(&'a self, node_id: &str) -> impl Iterator<Item = (&'a String, &'a Workload)> + 'a {
        let ids = self.index.nodes.get(node_id).into_iter().flat_map(|l| l.workloads.keys());
        ids.filter_map(|id| self.map.get_key_value(id))
    }

    /// Unplaced workloads, oldest first (ties by id).
    pub fn pending(&self) -> impl Iterator<Item = (&String, &Workload)> {
        self.index.pending.iter().filter_map(|(_, id)| self.map.get_key_value(id))
    }

    pub fn pending_count(&self) -> usize {
        self.index.pending.len()
    }

    /// Changes whenever a workload becomes or stops being pending, or a pending one
    /// changes (its reason, say); equal values mean the same pending set.
    pub fn pending_version(&self) -> u64 {
        self.pending_version
    }

    /// The workloads holding GPU `uuid` (at most one in a consistent state).
    pub fn gpu_holders(&self, uuid: &str) -> impl Iterator<Item = &String> {
        self.index.gpu_holders.get(uuid).into_iter().flatten()
    }

    /// Whether the maintained index equals one computed from scratch (tests check it
    /// after every step).
    pub fn index_is_consistent(&self) -> bool {
        self.index == Index::of(&self.map)
    }
}

impl Deref for Workloads {
    type Target = BTreeMap<String, Workload>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'a> IntoIterator for &'a Workloads {
    type Item = (&'a String, &'a Workload);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Workload>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl FromIterator<(String, Workload)> for Workloads {
    fn from_iter<I: IntoIterator<Item = (String, Workload)>>(iter: I) -> Self {
        let map: BTreeMap<String, Workload> = iter.into_iter().collect();
        let index = Index::of(&map);
        Workloads { map, index, pending_version: next_pending_version() }
    }
}

/// Equal when the workloads are: the index is derived and the version is local.
impl PartialEq for Workloads {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl std::fmt::Debug for Workloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map.fmt(f)
    }
}

/// Serialized as the plain map (the snapshot format is unchanged).
impl Serialize for Workloads {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Workloads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, Workload>::deserialize(d)?.into_iter().collect())
    }
}

/// A workload being changed in place; dropping it puts it back into the index.
pub struct WorkloadMut<'a> {
    id: String,
    w: &'a mut Workload,
    index: &'a mut Index,
    pending_version: &'a mut u64,
}

impl Deref for WorkloadMut<'_> {
    type Target = Workload;
    fn deref(&self) -> &Workload {
        self.w
    }
}

impl DerefMut for WorkloadMut<'_> {
    fn deref_mut(&mut self) -> &mut Workload {
        self.w
    }
}

impl Drop for WorkloadMut<'_> {
    fn drop(&mut self) {
        self.index.update(&self.id, self.w, Change::Add);
        if self.w.placement.is_none() {
            *self.pending_version = next_pending_version();
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::{Assignment, Placement, Resources, WorkloadDemand};

    use super::*;
    use crate::state::WorkloadOwner;

    fn workload(created_index: u64, cpu: u64, ranks: &[(&str, &[&str])]) -> Workload {
        let placement = (!ranks.is_empty()).then(|| Placement {
            assignments: ranks
                .iter()
                .map(|(n, g)| Assignment {
                    node_id: n.to_string(),
                    gpu_uuids: g.iter().map(|u| u.to_string()).collect(),
                })
                .collect(),
        });
        Workload {
            owner: WorkloadOwner::Training { project: "p".into(), name: "t".into() },
            demand: WorkloadDemand {
                id: String::new(),
                per_container: Resources::new(cpu, 10, 1),
                gpu_model: None,
                count: ranks.len() as u32,
                spread_group: None,
            },
            image: String::new(),
            placement,
            pending_reason: String::new(),
            created_index,
            phases: Vec::new(),
            ports: None,
            ended: false,
            gone: Vec::new(),
        }
    }

    #[test]
    fn the_index_follows_inserts_changes_and_removals() {
        let mut ws = Workloads::default();
        ws.insert("b".into(), workload(5, 100, &[]));
        ws.insert("a".into(), workload(7, 100, &[]));
        ws.insert("g".into(), workload(1, 300, &[("n1", &["G1"]), ("n1", &["G2"]), ("n2", &["G3"])]));
        assert_eq!(ws.pending().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["b", "a"], "oldest first");
        assert_eq!(ws.load_on("n1").map(NodeLoad::used), Some(Resources::new(600, 20, 2)));
        assert_eq!(ws.gpu_holders("G3").collect::<Vec<_>>(), ["g"]);

        let version = ws.pending_version();
        if let Some(mut b) = ws.get_mut("b") {
            b.placement = Some(Placement { assignments: vec![Assignment { node_id: "n2".into(), gpu_uuids: vec![] }] });
        }
        assert_ne!(ws.pending_version(), version);
        assert_eq!(ws.pending_count(), 1);
        assert_eq!(ws.on_node("n2").map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["b", "g"]);
        assert!(ws.index_is_consistent());

        ws.remove("g");
        assert!(ws.load_on("n1").is_none(), "an emptied node leaves the index");
        assert_eq!(ws.gpu_holders("G1").count(), 0);
        assert!(ws.index_is_consistent());
        let restored: Workloads = serde_json::from_slice(&serde_json::to_vec(&ws).unwrap()).unwrap();
        assert_eq!(restored, ws);
        assert!(restored.index_is_consistent());
        assert_eq!(restored.on_node("n2").count(), 1);
    }
}
