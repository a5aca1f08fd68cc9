//! Ports of a gang whose ranks run on several nodes. Such a gang uses the hosts' network
//! (its ranks must reach each other across machines), so its listening ports are the
//! node's: two gangs sharing a node need different ones. The scheduler hands each gang
//! a block of ports no other live gang holds on any of its nodes.

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

/// A gang's ports, reserved on every node it runs on: rank 0's rendezvous
/// (`MASTER_PORT`) is `first`, rank `r`'s worker port (`TF_CONFIG`) is `first + 1 + r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GangPorts {
    pub first: u16,
    /// Ports in the block: the gang's size plus one.
    pub count: u16,
}

impl GangPorts {
    /// The block a gang of `ranks` needs, starting at `first`; `None` when it would run
    /// past port 65535.
    pub fn for_gang(first: u16, ranks: u32) -> Option<GangPorts> {
        let count = u16::try_from(ranks.checked_add(1)?).ok()?;
        let block = GangPorts { first, count };
        (count > 0 && u32::from(first) + u32::from(count) - 1 <= u32::from(u16::MAX)).then_some(block)
    }

    /// Rank 0's rendezvous port.
    pub fn master(&self) -> u16 {
        self.first
    }

    /// Rank `rank`'s worker port, by rank.
    pub fn workers(&self) -> Vec<u16> {
        (1..self.count).map(|i| self.first + i).collect()
    }

    /// The last port of the block (inclusive).
    pub fn last(&self) -> u32 {
        u32::from(self.first) + u32::from(self.count) - 1
    }

    pub fn overlaps(&self, other: &GangPorts) -> bool {
        u32::from(self.first) <= other.last() && u32::from(other.first) <= self.last()
    }
}

/// The ports the scheduler may hand to gangs, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl Default for PortRange {
    /// Starts at PyTorch's default rendezvous port.
    fn default() -> Self {
        PortRange { first: 29500, last: 29999 }
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl PortRange {
    /// Unprivileged ports (a training runs as an unprivileged user), first ≤ last.
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if self.first < 1024 {
            return Err(ValidationError::new(format!("{field}.first"), "must be at least 1024 (unprivileged)"));
        }
        if self.first > self.last {
            return Err(ValidationError::new(format!("{field}.last"), "must not be below first"));
        }
        Ok(())
    }

    pub fn contains(&self, block: &GangPorts) -> bool {
        block.first >= self.first && block.last() <= u32::from(self.last)
    }

    /// The lowest block for a gang of `ranks` inside the range that overlaps none of
    /// `used`; `None` when none is left.
    pub fn first_free(&self, ranks: u32, used: &[GangPorts]) -> Option<GangPorts> {
        let mut used = used.to_vec();
        used.sort_by_key(|b| b.first);
        let mut candidate = self.first;
        for u in &used {
            let block = GangPorts::for_gang(candidate, ranks)?;
            if block.last() < u32::from(u.first) {
                break;
            }
            if u.last() >= u32::from(candidate) {
                candidate = u16::try_from(u.last() + 1).ok()?;
            }
        }
        let block = GangPorts::for_gang(candidate, ranks)?;
        self.contains(&block).then_some(block)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_block_holds_the_master_and_one_worker_port_per_rank() {
        let b = GangPorts::for_gang(29500, 3).unwrap();
        assert_eq!((b.master(), b.workers(), b.last()), (29500, vec![29501, 29502, 29503], 29503));
        assert!(GangPorts::for_gang(65534, 2).is_none(), "past the last port");
    }

    #[test]
    fn first_free_skips_used_blocks_and_respects_the_range() {
        let range = PortRange { first: 100, last: 110 };
        let used = [GangPorts { first: 103, count: 3 }, GangPorts { first: 100, count: 2 }];
        assert_eq!(range.first_free(1, &used), Some(GangPorts { first: 106, count: 2 }));
        assert_eq!(range.first_free(0, &used), Some(GangPorts { first: 102, count: 1 }));
        assert_eq!(range.first_free(4, &used), Some(GangPorts { first: 106, count: 5 }));
        assert_eq!(range.first_free(5, &used), None);
        assert!(PortRange { first: 80, last: 90 }.validate("gangs").is_err());
        assert!(PortRange { first: 2000, last: 1999 }.validate("gangs").is_err());
        assert!(PortRange::default().validate("gangs").is_ok());
    }

    proptest! {
        #[test]
        fn first_free_never_overlaps_and_finds_a_gap_when_one_exists(
            starts in proptest::collection::vec((0u16..60, 1u16..6), 0..8),
            ranks in 0u32..6,
        ) {
            let range = PortRange { first: 2000, last: 2060 };
            let used: Vec<GangPorts> =
                starts.iter().map(|&(s, c)| GangPorts { first: 2000 + s, count: c }).collect();
            let found = range.first_free(ranks, &used);
            // Brute force: the lowest start whose block fits and overlaps nothing.
            let expected = (range.first..=range.last)
                .filter_map(|f| GangPorts::for_gang(f, ranks))
                .find(|b| range.contains(b) && !used.iter().any(|u| u.overlaps(b)));
            prop_assert_eq!(found, expected);
        }
    }
}
