//! Scoring: which of the nodes a container fits on it should go to.
//!
//! Two levels, compared in order:
//!
//! 1. **Tier** (lower wins outright). For GPU work, a node whose GPUs are all free is
//!    tier 1: breaking into it costs a future large gang its whole node, so it is used
//!    only when no partially-used node of the model fits. For CPU-only work, any node
//!    with GPUs is tier 1: CPU and memory taken there can strand its GPUs.
//! 2. **Leftover** (lower wins): what the node would have free after the container,
//!    as fractions of its capacity, `cpu/cap + mem/cap + GPU_WEIGHT * gpus/cap`. Best
//!    fit fills nodes up and leaves others whole. Nomad's best fit uses CPU and memory
//!    only; counting GPUs keeps a 1-GPU container off the 8-GPU node that is 7 GPUs free
//!    when a 2-GPU node with 1 free fits.
//!
//! Ties go to the lower node id, so the result never depends on input order.
//!
//! The fractions are kept as exact integers over a per-shape denominator
//! (`cap.cpu * cap.mem * cap.gpus`): within one node shape the order of the numerators
//! is the order of the scores, which lets the index keep each shape's nodes in one
//! sorted set and answer best fit with a range query. Across shapes, scores are
//! compared by cross-multiplying.

use std::cmp::Ordering;

use gantry_domain::Resources;

use crate::snapshot::NodeSnapshot;

/// A free GPU left stranded counts as much as the same fraction of CPU and memory
/// together: GPUs are the scarce, expensive dimension and the one gangs wait for.
const GPU_WEIGHT: u128 = 2;

/// The tier a node is in for one kind of work; lower tiers are always preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Tier {
    Preferred,
    LastResort,
}

/// Tier of `node` for work that needs GPUs.
pub(crate) fn gpu_work_tier(node: &NodeSnapshot) -> Tier {
    if node.gpus_untouched() { Tier::LastResort } else { Tier::Preferred }
}

/// Tier of `node` for work that needs no GPU.
pub(crate) fn cpu_work_tier(node: &NodeSnapshot) -> Tier {
    if node.capacity.gpus > 0 { Tier::LastResort } else { Tier::Preferred }
}

/// Per-dimension capacities, never zero so that a dimension a node lacks contributes
/// nothing instead of dividing by zero.
fn dims(capacity: &Resources) -> (u128, u128, u128) {
    (u128::from(capacity.cpu_millis.max(1)), u128::from(capacity.memory_mib.max(1)), u128::from(capacity.gpus.max(1)))
}

/// Numerator of `amount`'s score on a node of `capacity`, over [`denominator`].
///
/// Saturating: only absurd inputs (capacities near `u64::MAX`) reach the limit, and
/// there the order degrades rather than the solver panicking.
pub(crate) fn numerator(amount: &Resources, capacity: &Resources) -> u128 {
    let (cc, cm, cg) = dims(capacity);
    let cpu = u128::from(amount.cpu_millis).saturating_mul(cm).saturating_mul(cg);
    let mem = u128::from(amount.memory_mib).saturating_mul(cc).saturating_mul(cg);
    let gpu = u128::from(amount.gpus).saturating_mul(GPU_WEIGHT).saturating_mul(cc).saturating_mul(cm);
    cpu.saturating_add(mem).saturating_add(gpu)
}

pub(crate) fn denominator(capacity: &Resources) -> u128 {
    let (cc, cm, cg) = dims(capacity);
    cc.saturating_mul(cm).saturating_mul(cg)
}

/// A node's leftover score if a container were placed on it, as an exact fraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leftover {
    pub numerator: u128,
    pub denominator: u128,
}

impl Leftover {
    /// Compares two fractions without division: `a/b < c/d  <=>  a*d < c*b`.
    pub fn cmp_score(&self, other: &Leftover) -> Ordering {
        let lhs = self.numerator.saturating_mul(other.denominator);
        let rhs = other.numerator.saturating_mul(self.denominator);
        lhs.cmp(&rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::*;

    fn leftover(node: &NodeSnapshot, take: Resources) -> Leftover {
        let capacity = node.capacity;
        Leftover {
            numerator: numerator(&node.free, &capacity) - numerator(&take, &capacity),
            denominator: denominator(&capacity),
        }
    }

    #[test]
    fn fuller_node_scores_lower_across_shapes() {
        let big = cpu_node("big", 64000, 262144);
        let mut small = cpu_node("small", 8000, 32768);
        small.free = Resources::new(4000, 16384, 0);
        let take = Resources::new(2000, 8192, 0);
        // Afterwards big keeps ~97% free and small 25%: small is the better fit even
        // though big has more absolute room.
        assert_eq!(leftover(&small, take).cmp_score(&leftover(&big, take)), Ordering::Less);
    }

    #[test]
    fn stranded_gpus_weigh_more_than_cpu() {
        // Same CPU/memory picture; the node that keeps fewer GPUs idle wins.
        let mut seven_free = gpu_node("a", 64000, 262144, "A100-80GB", 8);
        seven_free.free.gpus = 7;
        seven_free.free_gpus.truncate(7);
        let mut one_free = gpu_node("b", 64000, 262144, "A100-80GB", 2);
        one_free.free.gpus = 1;
        one_free.free_gpus.truncate(1);
        let take = Resources::new(8000, 32768, 1);
        assert_eq!(leftover(&one_free, take).cmp_score(&leftover(&seven_free, take)), Ordering::Less);
    }

    #[test]
    fn tiers_keep_whole_gpu_nodes_and_gpu_nodes_for_cpu_work() {
        let whole = gpu_node("a", 64000, 262144, "H100", 4);
        let mut partial = whole.clone();
        partial.free.gpus = 3;
        partial.free_gpus.truncate(3);
        assert_eq!(gpu_work_tier(&whole), Tier::LastResort);
        assert_eq!(gpu_work_tier(&partial), Tier::Preferred);
        assert_eq!(cpu_work_tier(&partial), Tier::LastResort);
        assert_eq!(cpu_work_tier(&cpu_node("c", 8000, 32768)), Tier::Preferred);
    }
}
