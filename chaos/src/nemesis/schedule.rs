//! The fault schedule: drawn from the run's seed before the run starts, so a seed
//! replays the same faults at the same offsets. Pure: unit-tested without a cluster.
//!
//! Three timelines run side by side, which is how faults combine: the replicas'
//! (process, network and disk faults, one at a time so that a majority can make
//! progress between them), the clocks' (jumps on any replica) and the agents'.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// A kind of fault. `Leader` variants pick their target when they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL a replica (the leader half of the time), restart it after the hold.
    Kill,
    /// SIGSTOP a replica, SIGCONT after the hold.
    Pause,
    /// Split the replicas into a minority and a majority.
    Partition,
    /// Cut the leader off from the other replicas (its clients still reach it).
    IsolateLeader,
    /// One replica stops hearing another.
    OneWayDrop,
    /// Step one replica's wall clock forwards or backwards.
    ClockJump,
    /// Fill a replica's disk; drain it after the hold (and restart it if it stopped).
    FullDisk,
    /// Delay every raft log write+fsync of a replica (the leader half of the time).
    SlowDisk,
    /// SIGKILL an agent, restart it after the hold.
    AgentLoss,
    /// Kill a replica, delete its data dir, start it again empty.
    Wipe,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::IsolateLeader,
        FaultKind::OneWayDrop,
        FaultKind::ClockJump,
        FaultKind::FullDisk,
        FaultKind::SlowDisk,
        FaultKind::AgentLoss,
        FaultKind::Wipe,
    ];

    pub fn parse(s: &str) -> Option<FaultKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::OneWayDrop => "one-way-drop",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::FullDisk => "full-disk",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::AgentLoss => "agent-loss",
            FaultKind::Wipe => "wipe",
        }
    }

    fn timeline(self) -> Timeline {
        match self {
            FaultKind::ClockJump => Timeline::Clocks,
            FaultKind::AgentLoss => Timeline::Agents,
            _ => Timeline::Replicas,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeline {
    Replicas,
    Clocks,
    Agents,
}

/// Who a fault hits, decided when it is drawn except for the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Replica(usize),
    /// Whoever leads when the fault happens.
    Leader,
    /// `minority` cut off from everyone else.
    Split {
        minority: Vec<usize>,
    },
    /// `to` stops hearing `from`.
    OneWay {
        to: usize,
        from: usize,
    },
    Agent(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub at: Duration,
    pub kind: FaultKind,
    pub target: Target,
    /// How long the fault lasts before it is undone.
    pub hold: Duration,
    /// Clock jumps: seconds, negative for backwards; slow disks: the delay in ms.
    pub jump_s: i64,
}

/// What the schedule is drawn from.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub kinds: Vec<FaultKind>,
    pub replicas: usize,
    pub agents: usize,
    /// Faults start after `quiet_start` and end before `run_for`.
    pub run_for: Duration,
    pub quiet_start: Duration,
    /// Range of a fault's hold and of the gap after it on its timeline.
    pub hold: (Duration, Duration),
    pub gap: (Duration, Duration),
}

/// The faults of one run, sorted by start.
pub fn draw(seed: u64, spec: &ScheduleSpec) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let mut faults = Vec::new();
    for timeline in [Timeline::Replicas, Timeline::Clocks, Timeline::Agents] {
        let kinds: Vec<FaultKind> = spec.kinds.iter().copied().filter(|k| k.timeline() == timeline).collect();
        if kinds.is_empty() || (timeline == Timeline::Agents && spec.agents == 0) {
            continue;
        }
        let mut t = spec.quiet_start + between(&mut rng, spec.gap);
        loop {
            let kind = kinds[rng.random_range(0..kinds.len())];
            let hold = if kind == FaultKind::ClockJump { Duration::ZERO } else { between(&mut rng, spec.hold) };
            if t + hold >= spec.run_for {
                break;
            }
            let (target, jump_s) = target(&mut rng, kind, spec);
            faults.push(Fault { at: t, kind, target, hold, jump_s });
            t += hold + between(&mut rng, spec.gap);
        }
    }
    faults.sort_by_key(|f| f.at);
    faults
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo { lo } else { rng.random_range(lo..hi) }
}

fn target(rng: &mut StdRng, kind: FaultKind, spec: &ScheduleSpec) -> (Target, i64) {
    let n = spec.replicas;
    let any = |rng: &mut StdRng| rng.random_range(0..n);
    match kind {
        FaultKind::SlowDisk => {
            let target = if rng.random_bool(0.5) { Target::Leader } else { Target::Replica(any(rng)) };
            (target, rng.random_range(20..400))
        }
        FaultKind::Kill | FaultKind::Pause if rng.random_bool(0.5) => (Target::Leader, 0),
        FaultKind::Kill | FaultKind::Pause | FaultKind::FullDisk | FaultKind::Wipe => (Target::Replica(any(rng)), 0),
        FaultKind::IsolateLeader => (Target::Leader, 0),
        FaultKind::Partition => {
            // A minority: at most (n - 1) / 2 replicas, at least one.
            let size = rng.random_range(1..=((n - 1) / 2).max(1));
            let mut all: Vec<usize> = (0..n).collect();
            for i in (1..all.len()).rev() {
                all.swap(i, rng.random_range(0..=i));
            }
            let mut minority = all[..size].to_vec();
            minority.sort_unstable();
            (Target::Split { minority }, 0)
        }
        FaultKind::OneWayDrop => {
            let to = any(rng);
            let from = (to + rng.random_range(1..n.max(2))) % n;
            (Target::OneWay { to, from }, 0)
        }
        FaultKind::ClockJump => {
            let s = rng.random_range(30..900);
            (Target::Replica(any(rng)), if rng.random_bool(0.5) { s } else { -s })
        }
        FaultKind::AgentLoss => (Target::Agent(rng.random_range(0..spec.agents.max(1))), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kinds: &[FaultKind]) -> ScheduleSpec {
        ScheduleSpec {
            kinds: kinds.to_vec(),
            replicas: 3,
            agents: 2,
            run_for: Duration::from_secs(120),
            quiet_start: Duration::from_secs(3),
            hold: (Duration::from_secs(2), Duration::from_secs(6)),
            gap: (Duration::from_secs(1), Duration::from_secs(4)),
        }
    }

    #[test]
    fn a_seed_replays_the_same_schedule() {
        let s = spec(&FaultKind::ALL);
        assert_eq!(draw(7, &s), draw(7, &s));
        assert_ne!(draw(7, &s), draw(8, &s));
    }

    #[test]
    fn replica_faults_never_overlap_and_all_end_in_time() {
        let s = spec(&FaultKind::ALL);
        for seed in 0..50 {
            let faults = draw(seed, &s);
            let replica: Vec<&Fault> = faults.iter().filter(|f| f.kind.timeline() == Timeline::Replicas).collect();
            for w in replica.windows(2) {
                assert!(w[0].at + w[0].hold < w[1].at, "seed {seed}: {w:?}");
            }
            for f in &faults {
                assert!(f.at >= s.quiet_start && f.at + f.hold < s.run_for, "seed {seed}: {f:?}");
            }
        }
    }

    #[test]
    fn faults_from_the_three_timelines_combine() {
        let faults = draw(1, &spec(&[FaultKind::Kill, FaultKind::ClockJump, FaultKind::AgentLoss]));
        for kind in [FaultKind::Kill, FaultKind::ClockJump, FaultKind::AgentLoss] {
            assert!(faults.iter().any(|f| f.kind == kind), "{kind:?} missing");
        }
        // Some agent loss overlaps some replica kill.
        let overlaps = faults.iter().filter(|a| a.kind == FaultKind::AgentLoss).any(|a| {
            faults.iter().filter(|k| k.kind == FaultKind::Kill).any(|k| a.at < k.at + k.hold && k.at < a.at + a.hold)
        });
        assert!(overlaps);
    }

    #[test]
    fn partitions_leave_a_majority_and_one_way_drops_name_two_replicas() {
        for seed in 0..50 {
            for f in draw(seed, &spec(&[FaultKind::Partition, FaultKind::OneWayDrop])) {
                match f.target {
                    Target::Split { minority } => assert!(!minority.is_empty() && minority.len() <= 1),
                    Target::OneWay { to, from } => assert!(to != from && to < 3 && from < 3),
                    other => panic!("unexpected target {other:?}"),
                }
            }
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.name()), Some(k));
        }
        assert_eq!(FaultKind::parse("meteor"), None);
    }
}
