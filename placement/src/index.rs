//! The candidate index that makes best fit a range query instead of a scan.
//!
//! ```text
//!   pool (CPU work | GPU model)            one per kind of work
//!     └─ group (tier, node capacity)       one per instance shape, tiers in order
//!          └─ BTreeSet<(leftover, rank)>   nodes of that shape, fullest first
//! ```
//!
//! Within a group every node has the same capacity, so the score after placing a
//! container is the node's current leftover numerator minus a constant: the first node
//! at or above the container's own numerator that fits is the group's best, and nodes
//! below it (too full to ever fit) are never visited. The best of each group is then
//! compared across groups of the lowest tier that has any. A group stops being scanned
//! as soon as its scores can no longer beat the best found so far.
//!
//! Every node is in the CPU pool, and in the pool of each GPU model it has free GPUs of.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::Resources;

use crate::reason::container_fits;
use crate::score::{self, Leftover, Tier};
use crate::snapshot::NodeSnapshot;

/// Position of a node in the solver's id-sorted node list: comparing ranks compares ids.
pub(crate) type Rank = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    tier: Tier,
    cpu_millis: u64,
    memory_mib: u64,
    gpus: u32,
}

impl GroupKey {
    fn new(tier: Tier, capacity: &Resources) -> Self {
        Self { tier, cpu_millis: capacity.cpu_millis, memory_mib: capacity.memory_mib, gpus: capacity.gpus }
    }

    fn capacity(&self) -> Resources {
        Resources::new(self.cpu_millis, self.memory_mib, self.gpus)
    }
}

#[derive(Debug, Default)]
struct Pool {
    groups: BTreeMap<GroupKey, BTreeSet<(u128, Rank)>>,
}

impl Pool {
    fn insert(&mut self, key: GroupKey, entry: (u128, Rank)) {
        self.groups.entry(key).or_default().insert(entry);
    }

    fn remove(&mut self, key: GroupKey, entry: (u128, Rank)) {
        if let Some(group) = self.groups.get_mut(&key) {
            group.remove(&entry);
            if group.is_empty() {
                self.groups.remove(&key);
            }
        }
    }
}

/// Best-fit candidates for every kind of work, kept in step with the node list.
#[derive(Debug, Default)]
pub(crate) struct Index {
    cpu: Pool,
    gpu: BTreeMap<String, Pool>,
}

struct Best {
    tier: Tier,
    leftover: Leftover,
    rank: Rank,
}

impl Index {
    pub fn new(nodes: &[NodeSnapshot]) -> Self {
        let mut index = Index::default();
        for (rank, node) in nodes.iter().enumerate() {
            index.insert(rank as Rank, node);
        }
        index
    }

    /// Adds `node` under its current state. Pair every call with [`Index::remove`] on
    /// the same, unmodified state before the node changes.
    pub fn insert(&mut self, rank: Rank, node: &NodeSnapshot) {
        let entry = (score::numerator(&node.free, &node.capacity), rank);
        self.cpu.insert(GroupKey::new(score::cpu_work_tier(node), &node.capacity), entry);
        let gpu_key = GroupKey::new(score::gpu_work_tier(node), &node.capacity);
        for model in free_models(node) {
            if let Some(pool) = self.gpu.get_mut(model) {
                pool.insert(gpu_key, entry);
            } else {
                self.gpu.entry(model.to_owned()).or_default().insert(gpu_key, entry);
            }
        }
    }

    pub fn remove(&mut self, rank: Rank, node: &NodeSnapshot) {
        let entry = (score::numerator(&node.free, &node.capacity), rank);
        self.cpu.remove(GroupKey::new(score::cpu_work_tier(node), &node.capacity), entry);
        let gpu_key = GroupKey::new(score::gpu_work_tier(node), &node.capacity);
        for model in free_models(node) {
            if let Some(pool) = self.gpu.get_mut(model) {
                pool.remove(gpu_key, entry);
            }
        }
    }

    /// Ranks of the nodes with a free GPU of `model`, in index order.
    pub fn members(&self, model: &str) -> Vec<Rank> {
        let Some(pool) = self.gpu.get(model) else { return Vec::new() };
        pool.groups.values().flat_map(|group| group.iter().map(|&(_, rank)| rank)).collect()
    }

    /// Models with a free GPU on some node, sorted.
    pub fn free_models(&self) -> Vec<&str> {
        self.gpu.iter().filter(|(_, pool)| !pool.groups.is_empty()).map(|(model, _)| model.as_str()).collect()
    }

    /// The best node for one container, or `None` if it fits nowhere. `model` is the
    /// GPU model to match, `None` for CPU-only work (then `per_container.gpus` is 0);
    /// a node that already runs `spread_group` (anti-affinity) is skipped.
    pub fn best(
        &self,
        nodes: &[NodeSnapshot],
        per_container: &Resources,
        model: Option<&str>,
        spread_group: Option<&str>,
    ) -> Option<Rank> {
        let pool = match model {
            None => &self.cpu,
            Some(model) => self.gpu.get(model)?,
        };
        let mut best: Option<Best> = None;
        for (key, group) in &pool.groups {
            if best.as_ref().is_some_and(|b| key.tier > b.tier) {
                // Groups are ordered by tier first: a lower tier already has a fit.
                break;
            }
            let capacity = key.capacity();
            let need = score::numerator(per_container, &capacity);
            let denominator = score::denominator(&capacity);
            for &(numerator, rank) in group.range((need, 0)..) {
                let leftover = Leftover { numerator: numerator.saturating_sub(need), denominator };
                let verdict = best.as_ref().map(|b| leftover.cmp_score(&b.leftover).then(rank.cmp(&b.rank)));
                if verdict == Some(Ordering::Greater) {
                    // Later entries of this group score no better: stop scanning it.
                    break;
                }
                let Some(node) = nodes.get(rank as usize) else { continue };
                if container_fits(node, per_container, model) && node.admits(spread_group) {
                    best = Some(Best { tier: key.tier, leftover, rank });
                    break;
                }
            }
        }
        best.map(|b| b.rank)
    }
}

/// Distinct models among a node's free GPUs, in sorted order.
fn free_models(node: &NodeSnapshot) -> Vec<&str> {
    let mut models: Vec<&str> = node.free_gpus.iter().map(|g| g.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    models
}
