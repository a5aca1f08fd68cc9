//! Faults of a replica's surroundings rather than its process: the network between
//! hosts, its wall clock and its disk. Each needs the cluster built for it
//! ([`super::ClusterOptions`]: `namespaces`, `fake_clocks`, `small_disk_mib`).

use std::time::Duration;

use super::ProcessCluster;
use crate::hosts::HostNetwork;

impl ProcessCluster {
    fn hosts(&self) -> anyhow::Result<&HostNetwork> {
        self.net.as_ref().ok_or_else(|| anyhow::anyhow!("the cluster was started without namespaces"))
    }

    /// No traffic between any replica of `a` and any of `b` (both ways).
    pub fn partition(&self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        tracing::info!(?a, ?b, "chaos: partition");
        self.hosts()?.partition(a, b)
    }

    /// Replica `to` stops receiving from replica `from`; `from` still hears `to`.
    pub fn drop_one_way(&self, to: usize, from: usize) -> anyhow::Result<()> {
        tracing::info!(to, from, "chaos: one-way drop");
        self.hosts()?.drop_from(to, from)
    }

    /// Cuts replica `i` off from the other replicas (clients still reach it).
    pub fn isolate(&self, i: usize) -> anyhow::Result<()> {
        tracing::info!(replica = i, "chaos: isolate");
        self.hosts()?.isolate(i)
    }

    /// Removes every partition.
    pub fn heal_network(&self) -> anyhow::Result<()> {
        tracing::info!("chaos: heal network");
        self.hosts()?.heal()
    }

    /// Steps replica `i`'s wall clock by `by` (forwards or backwards); its monotonic
    /// clock does not move. Takes effect within a second.
    pub fn jump_clock(&self, i: usize, forward: bool, by: Duration) -> anyhow::Result<()> {
        tracing::info!(replica = i, forward, ?by, "chaos: clock jump");
        let mut clock = self.clock(i);
        let clock = clock.as_mut().ok_or_else(|| anyhow::anyhow!("the cluster was started without fake clocks"))?;
        clock.jump(forward, by)
    }

    /// Every replica's wall clock back to the real time.
    pub fn reset_clocks(&self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            if let Some(clock) = self.clock(i).as_mut() {
                clock.reset()?;
            }
        }
        Ok(())
    }

    /// Fills replica `i`'s disk: its next log write fails with ENOSPC.
    pub fn fill_disk(&self, i: usize) -> anyhow::Result<()> {
        tracing::info!(replica = i, "chaos: fill disk");
        self.with_disk(i, |d| d.fill())
    }

    /// Frees what [`ProcessCluster::fill_disk`] took.
    pub fn drain_disk(&self, i: usize) -> anyhow::Result<()> {
        tracing::info!(replica = i, "chaos: drain disk");
        self.with_disk(i, |d| d.drain())
    }

    fn with_disk(
        &self,
        i: usize,
        f: impl FnOnce(&crate::hosts::SmallDisk) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let disks = match self.disks.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        let disk = disks.get(i).ok_or_else(|| anyhow::anyhow!("replica {i} has no small disk (small_disk_mib)"))?;
        f(disk)
    }
}
