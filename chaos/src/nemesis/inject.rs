//! Carrying out a drawn [`Fault`] on a running cluster and its agents, then undoing it.

use std::time::Duration;

use super::schedule::{Fault, FaultKind, Target};
use crate::{AgentProcess, ProcessCluster};

/// How long a fault may wait for a leader to name as its target.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Runs `fault`: inject, hold, undo. The returned text says what was done (for the
/// run's log); an error is a fault that could not be done or undone, e.g. a replica
/// that did not come back.
pub async fn carry_out(cluster: &ProcessCluster, agents: &[AgentProcess], fault: &Fault) -> anyhow::Result<String> {
    let replica = |target: &Target| -> Option<usize> {
        match target {
            Target::Replica(i) => Some(*i),
            _ => None,
        }
    };
    let pick = async |target: &Target| -> usize {
        match replica(target) {
            Some(i) => i,
            None => cluster.wait_for_leader(LEADER_WAIT).await.unwrap_or(0),
        }
    };
    let hold = || tokio::time::sleep(fault.hold);
    match fault.kind {
        FaultKind::Kill => {
            let i = pick(&fault.target).await;
            cluster.kill(i).await?;
            hold().await;
            cluster.restart(i).await?;
            Ok(format!("killed replica {i} for {:?}", fault.hold))
        }
        FaultKind::Pause => {
            let i = pick(&fault.target).await;
            cluster.pause(i)?;
            hold().await;
            cluster.resume(i)?;
            Ok(format!("paused replica {i} for {:?}", fault.hold))
        }
        FaultKind::Partition => {
            let Target::Split { minority } = &fault.target else { anyhow::bail!("partition without a split") };
            let majority: Vec<usize> = (0..cluster.len()).filter(|i| !minority.contains(i)).collect();
            cluster.partition(minority, &majority)?;
            hold().await;
            cluster.heal_network()?;
            Ok(format!("partitioned {minority:?} from {majority:?} for {:?}", fault.hold))
        }
        FaultKind::IsolateLeader => {
            let i = pick(&Target::Leader).await;
            cluster.isolate(i)?;
            hold().await;
            cluster.heal_network()?;
            Ok(format!("isolated leader {i} for {:?}", fault.hold))
        }
        FaultKind::OneWayDrop => {
            let Target::OneWay { to, from } = fault.target else { anyhow::bail!("one-way drop without ends") };
            cluster.drop_one_way(to, from)?;
            hold().await;
            cluster.heal_network()?;
            Ok(format!("replica {to} deaf to {from} for {:?}", fault.hold))
        }
        FaultKind::ClockJump => {
            let i = pick(&fault.target).await;
            let by = Duration::from_secs(fault.jump_s.unsigned_abs());
            cluster.jump_clock(i, fault.jump_s > 0, by)?;
            Ok(format!("stepped replica {i}'s clock by {:+} s", fault.jump_s))
        }
        FaultKind::FullDisk => {
            let i = pick(&fault.target).await;
            cluster.fill_disk(i)?;
            hold().await;
            cluster.drain_disk(i)?;
            let restarted = ensure_running(cluster, i).await?;
            Ok(format!(
                "filled replica {i}'s disk for {:?}{}",
                fault.hold,
                if restarted { "; it stopped and was restarted" } else { "" }
            ))
        }
        FaultKind::SlowDisk => {
            let i = pick(&fault.target).await;
            let delay = Duration::from_millis(fault.jump_s.unsigned_abs());
            cluster.slow_disk(i, delay)?;
            hold().await;
            cluster.heal_disk(i)?;
            Ok(format!("slowed replica {i}'s disk by {delay:?} per write for {:?}", fault.hold))
        }
        FaultKind::Wipe => {
            let i = pick(&fault.target).await;
            cluster.kill(i).await?;
            cluster.wipe(i)?;
            hold().await;
            cluster.restart(i).await?;
            Ok(format!("wiped replica {i}"))
        }
        FaultKind::AgentLoss => {
            let Target::Agent(a) = fault.target else { anyhow::bail!("agent loss without an agent") };
            let agent = agents.get(a).ok_or_else(|| anyhow::anyhow!("no agent {a}"))?;
            agent.kill()?;
            hold().await;
            agent.restart()?;
            Ok(format!("killed agent {a} for {:?}", fault.hold))
        }
    }
}

/// Restarts replica `i` if its process has exited (e.g. it stopped on a failed write);
/// returns whether it did.
async fn ensure_running(cluster: &ProcessCluster, i: usize) -> anyhow::Result<bool> {
    if cluster.is_running(i) {
        return Ok(false);
    }
    cluster.restart(i).await?;
    Ok(true)
}

/// Undoes whatever faults may still be in force: heals the network, resets clocks,
/// drains disks, resumes and restarts replicas, restarts agents.
pub async fn heal_everything(cluster: &ProcessCluster, agents: &[AgentProcess]) -> anyhow::Result<()> {
    if cluster.network().is_some() {
        cluster.heal_network()?;
    }
    cluster.reset_clocks()?;
    for i in 0..cluster.len() {
        let _ = cluster.drain_disk(i);
        cluster.heal_disk(i)?;
        if cluster.is_running(i) {
            cluster.resume(i)?;
        } else {
            cluster.restart(i).await?;
        }
    }
    for a in agents {
        if !a.is_running() {
            a.restart()?;
        }
    }
    Ok(())
}
