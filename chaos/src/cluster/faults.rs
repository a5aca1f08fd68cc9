//! Faults a test inflicts on a replica process: SIGKILL (a crash), SIGTERM (a clean
//! stop), SIGSTOP/SIGCONT (a frozen process whose sockets stay open), and a lost disk.

use std::process::{Child, ExitStatus};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

use super::{KILL_TIMEOUT, PANIC_LOG_LINES, POLL_EVERY, ProcessCluster, TERM_TIMEOUT};

impl ProcessCluster {
    pub(super) fn take_child(&self, i: usize) -> Option<Child> {
        self.process(i).child.take()
    }

    /// Polls `child` until it exits or `within` passes.
    pub(super) async fn wait_exit(child: &mut Child, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    pub(super) fn signal(child: &Child, sig: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        match signal::kill(Pid::from_raw(pid), sig) {
            // Already exited (not yet reaped would be Ok): nothing to signal.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("cannot send {sig} to pid {pid}: {e}")),
        }
    }

    /// SIGSTOPs replica `i`: it stays alive with its sockets open but answers nothing (a
    /// hung process, a long GC pause, a VM frozen by its host). Undo with
    /// [`ProcessCluster::resume`]; a paused replica is resumed before it is killed.
    pub fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal_running(i, Signal::SIGSTOP)
    }

    /// SIGCONTs replica `i` after [`ProcessCluster::pause`].
    pub fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal_running(i, Signal::SIGCONT)
    }

    fn signal_running(&self, i: usize, sig: Signal) -> anyhow::Result<()> {
        let process = self.process(i);
        let child = process.child.as_ref().ok_or_else(|| anyhow::anyhow!("replica {i} is not running"))?;
        Self::signal(child, sig)
    }

    /// SIGKILLs replica `i` (a crash: no drain, no flush beyond what was fsynced) and
    /// reaps it. A replica that is not running is left alone.
    pub async fn kill(&self, i: usize) -> anyhow::Result<()> {
        let result = self.kill_inner(i).await;
        self.failing(result)
    }

    async fn kill_inner(&self, i: usize) -> anyhow::Result<()> {
        let Some(mut child) = self.take_child(i) else { return Ok(()) };
        Self::signal(&child, Signal::SIGKILL)?;
        match Self::wait_exit(&mut child, KILL_TIMEOUT).await? {
            Some(_) => {
                tracing::info!(replica = self.replicas[i].id, "replica killed");
                Ok(())
            }
            None => anyhow::bail!("replica {i} did not die within {KILL_TIMEOUT:?} of SIGKILL"),
        }
    }

    /// SIGTERMs replica `i` and waits for a graceful exit. Fails (after a SIGKILL) when the
    /// process is still alive after 10 s, and when it exits unsuccessfully: either is a
    /// scheduler bug worth a look at the log.
    pub async fn terminate(&self, i: usize) -> anyhow::Result<()> {
        let result = self.terminate_inner(i).await;
        self.failing(result)
    }

    async fn terminate_inner(&self, i: usize) -> anyhow::Result<()> {
        let Some(mut child) = self.take_child(i) else { return Ok(()) };
        Self::signal(&child, Signal::SIGTERM)?;
        // A paused replica handles the SIGTERM once it runs again.
        Self::signal(&child, Signal::SIGCONT)?;
        match Self::wait_exit(&mut child, TERM_TIMEOUT).await? {
            Some(status) if status.success() => {
                tracing::info!(replica = self.replicas[i].id, "replica terminated");
                Ok(())
            }
            Some(status) => anyhow::bail!(
                "replica {i} (id {}) exited with {status} after SIGTERM; log tail:\n{}",
                self.replicas[i].id,
                self.log_tail(i, PANIC_LOG_LINES)
            ),
            None => {
                Self::signal(&child, Signal::SIGKILL)?;
                let _ = Self::wait_exit(&mut child, KILL_TIMEOUT).await;
                anyhow::bail!(
                    "replica {i} (id {}) did not exit within {TERM_TIMEOUT:?} of SIGTERM (killed it); log tail:\n{}",
                    self.replicas[i].id,
                    self.log_tail(i, PANIC_LOG_LINES)
                )
            }
        }
    }

    /// Deletes replica `i`'s data dir (raft log, snapshots): the disk was lost. Only
    /// while it is stopped.
    pub fn wipe(&self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_running(i), "wipe: replica {i} is running; stop it first");
        let dir = &self.replicas[i].data_dir;
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot delete {}", dir.display())),
        }
        tracing::info!(replica = self.replicas[i].id, "replica data wiped");
        Ok(())
    }
}
