//! Disk faults through the scheduler's raft log fault hook (`[raft] fault_file`, see
//! docs/faults.md): each replica's config names `replica-{id}/disk-fault`, outside its
//! data dir (so `wipe` keeps it), and the replica re-checks it before every write+fsync,
//! so these take effect on a running replica without a restart.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context as _;

use super::ProcessCluster;

impl ProcessCluster {
    /// The fault file replica `i` obeys.
    pub fn disk_fault_file(&self, i: usize) -> PathBuf {
        crate::replica_config::fault_file(&self.replicas[i].data_dir)
    }

    /// Every raft log write+fsync of replica `i` waits `delay` first.
    pub fn slow_disk(&self, i: usize, delay: Duration) -> anyhow::Result<()> {
        self.write_disk_fault(i, &format!("delay_ms={}\n", delay.as_millis()))
    }

    /// Every raft log write+fsync of replica `i` fails: it must stop (exit non-zero).
    pub fn fail_disk(&self, i: usize) -> anyhow::Result<()> {
        self.write_disk_fault(i, "fail=fsync\n")
    }

    /// Only replica `i`'s snapshot saves fail.
    pub fn fail_snapshots(&self, i: usize) -> anyhow::Result<()> {
        self.write_disk_fault(i, "fail=snapshot\n")
    }

    /// Removes any disk fault of replica `i`.
    pub fn heal_disk(&self, i: usize) -> anyhow::Result<()> {
        let path = self.disk_fault_file(i);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// Waits until replica `i`'s process exits on its own and reaps it; `None` if it is
    /// still running after `within` (left running).
    pub async fn wait_exited(&self, i: usize, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let Some(mut child) = self.take_child(i) else {
            anyhow::bail!("replica {i} is not running");
        };
        let status = Self::wait_exit(&mut child, within).await?;
        if status.is_none() {
            self.process(i).child = Some(child);
        }
        Ok(status)
    }

    fn write_disk_fault(&self, i: usize, contents: &str) -> anyhow::Result<()> {
        let path = self.disk_fault_file(i);
        // Write then rename: the replica never reads a half-written file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename to {}", path.display()))?;
        tracing::info!(replica = self.replicas[i].id, fault = contents.trim(), "disk fault set");
        Ok(())
    }
}
