//! Amounts of compute a node offers or a container needs.

use serde::{Deserialize, Serialize};

/// CPU in millicores, memory in MiB, GPUs as a count. GPU *model* is matched
/// separately (see [`crate::workload::WorkloadDemand`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpus: u32,
}

impl Resources {
    pub const ZERO: Resources = Resources { cpu_millis: 0, memory_mib: 0, gpus: 0 };

    pub fn new(cpu_millis: u64, memory_mib: u64, gpus: u32) -> Self {
        Self { cpu_millis, memory_mib, gpus }
    }

    /// True when `self` fits inside `available` in every dimension.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpu_millis <= available.cpu_millis
            && self.memory_mib <= available.memory_mib
            && self.gpus <= available.gpus
    }

    /// `self - other`, or `None` if any dimension would go negative.
    pub fn checked_sub(&self, other: &Resources) -> Option<Resources> {
        Some(Resources {
            cpu_millis: self.cpu_millis.checked_sub(other.cpu_millis)?,
            memory_mib: self.memory_mib.checked_sub(other.memory_mib)?,
            gpus: self.gpus.checked_sub(other.gpus)?,
        })
    }

    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }

    pub fn add(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_add(other.memory_mib),
            gpus: self.gpus.saturating_add(other.gpus),
        }
    }

    /// `self * n`, for a gang of `n` identical containers.
    pub fn times(&self, n: u32) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_mul(n as u64),
            memory_mib: self.memory_mib.saturating_mul(n as u64),
            gpus: self.gpus.saturating_mul(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_subtract_agree() {
        let node = Resources::new(8000, 32768, 4);
        let want = Resources::new(8000, 16384, 5);
        assert!(!want.fits_in(&node));
        assert_eq!(node.checked_sub(&want), None);
        let want = Resources::new(2000, 16384, 4);
        assert!(want.fits_in(&node));
        assert_eq!(node.checked_sub(&want), Some(Resources::new(6000, 16384, 0)));
    }
}
