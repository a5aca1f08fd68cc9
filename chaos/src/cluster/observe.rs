//! Observing a [`ProcessCluster`]: replication status, waiting for a leader or for
//! convergence, and the replicas' logs (tails for failure messages, panics).

use std::time::Duration;

use gantry_proto::v1::{ClusterStatus, GetClusterStatusRequest};
use tokio::time::Instant;

use super::{PANIC_LOG_LINES, POLL_EVERY, ProcessCluster};

impl ProcessCluster {
    /// `ClusterService/GetStatus` of replica `i`.
    pub async fn status(&self, i: usize) -> anyhow::Result<ClusterStatus> {
        let mut c = self.client(i);
        Ok(c.cluster.get_status(GetClusterStatusRequest {}).await?.into_inner())
    }

    /// Statuses of every running replica that answers within a second, by index.
    pub async fn statuses(&self) -> Vec<(usize, anyhow::Result<ClusterStatus>)> {
        let mut out = Vec::new();
        for i in self.running() {
            let s = match tokio::time::timeout(Duration::from_secs(1), self.status(i)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("no answer within 1s")),
            };
            out.push((i, s));
        }
        out
    }

    /// Waits until a majority of all replicas name the same leader, that leader is
    /// running and calls itself leader; returns its index. Fails after `within`.
    pub async fn wait_for_leader(&self, within: Duration) -> anyhow::Result<usize> {
        let result = self.wait_for_leader_inner(within).await;
        self.failing(result)
    }

    async fn wait_for_leader_inner(&self, within: Duration) -> anyhow::Result<usize> {
        let majority = self.len() / 2 + 1;
        let deadline = Instant::now() + within;
        loop {
            let statuses = self.statuses().await;
            let seen: Vec<&ClusterStatus> = statuses.iter().filter_map(|(_, s)| s.as_ref().ok()).collect();
            for candidate in seen.iter().filter(|s| s.role == "LEADER" && s.leader_id == s.replica_id) {
                let votes =
                    seen.iter().filter(|s| s.leader_id == candidate.leader_id && s.term == candidate.term).count();
                if votes >= majority
                    && let Some(i) = self.index_of(candidate.leader_id)
                {
                    return Ok(i);
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "no leader agreed on by {majority} of {} replicas within {within:?}; {}\nlast statuses:\n{}",
                    self.len(),
                    self.describe(),
                    format_statuses(&statuses)
                );
            }
            tokio::time::sleep(POLL_EVERY * 2).await;
        }
    }

    /// Waits until every replica runs and all report the same term, leader and applied
    /// index, with nothing in their logs beyond it (no write in flight, no uncommitted
    /// tail left to truncate). Returns that index.
    pub async fn wait_converged(&self, within: Duration) -> anyhow::Result<u64> {
        let result = self.wait_converged_inner(within).await;
        self.failing(result)
    }

    async fn wait_converged_inner(&self, within: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            let statuses = self.statuses().await;
            let seen: Vec<&ClusterStatus> = statuses.iter().filter_map(|(_, s)| s.as_ref().ok()).collect();
            if seen.len() == self.len() {
                let first = seen[0];
                let agree = seen.iter().all(|s| {
                    s.leader_id != 0
                        && s.leader_id == first.leader_id
                        && s.term == first.term
                        && s.applied_index == first.applied_index
                        && s.commit_index == s.applied_index
                        && s.last_log_index == s.applied_index
                });
                if agree {
                    return Ok(first.applied_index);
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "replicas did not converge within {within:?}; {}\nlast statuses:\n{}",
                    self.describe(),
                    format_statuses(&statuses)
                );
            }
            tokio::time::sleep(POLL_EVERY * 4).await;
        }
    }

    /// The last `n` lines of replica `i`'s log (every incarnation).
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let path = &self.replicas[i].log;
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n")
            }
            Err(e) => format!("(cannot read {}: {e})", path.display()),
        }
    }

    /// Lines of replica `i`'s log (every incarnation) that report a Rust panic, with the
    /// line after each (raft-rs puts its reason there when the message spans lines).
    /// A panic inside a task does not always end the process, so liveness alone does
    /// not reveal it.
    pub fn panics(&self, i: usize) -> Vec<String> {
        let Ok(bytes) = std::fs::read(&self.replicas[i].log) else { return Vec::new() };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            if line.contains("panicked at") {
                let reason = lines.get(n + 1).copied().unwrap_or_default();
                found.push(format!("{line} {reason}"));
            }
        }
        found
    }

    /// Fails, naming every panic with the replica's log tail, if any replica panicked
    /// during the run. Call at the end of every suite: a replica that panicked and was
    /// then never asked anything would otherwise go unnoticed.
    pub fn check_no_panics(&self) -> anyhow::Result<()> {
        let mut report = Vec::new();
        for i in 0..self.len() {
            let panics = self.panics(i);
            if !panics.is_empty() {
                report.push(format!(
                    "replica {i} (id {}) panicked:\n  {}\nlog tail:\n{}",
                    self.replicas[i].id,
                    panics.join("\n  "),
                    self.log_tail(i, PANIC_LOG_LINES)
                ));
            }
        }
        if report.is_empty() {
            return Ok(());
        }
        self.mark_failed();
        anyhow::bail!("{}\n{}", report.join("\n"), self.describe())
    }

    /// [`ProcessCluster::log_tail`] of every replica, with headers.
    pub fn log_tails(&self, n: usize) -> String {
        (0..self.len())
            .map(|i| {
                format!(
                    "----- replica {i} (id {}) {} -----\n{}",
                    self.replicas[i].id,
                    self.replicas[i].log.display(),
                    self.log_tail(i, n)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn format_statuses(statuses: &[(usize, anyhow::Result<ClusterStatus>)]) -> String {
    if statuses.is_empty() {
        return "  (no replica running)".into();
    }
    statuses
        .iter()
        .map(|(i, s)| match s {
            Ok(s) => format!(
                "  replica {i}: id {} role {} leader {} term {} commit {} applied {} log {}..={} snapshot {}",
                s.replica_id,
                s.role,
                s.leader_id,
                s.term,
                s.commit_index,
                s.applied_index,
                s.first_log_index,
                s.last_log_index,
                s.snapshot_index
            ),
            Err(e) => format!("  replica {i}: {e:#}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
