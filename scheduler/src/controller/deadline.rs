//! Maximum training time: a training still going `timeout_minutes` after it was
//! created is stopped (the guide: it "is ended"), with the reason on its record. The
//! clock starts at creation because the guide's limit is the wait until completion,
//! so a training stuck waiting for GPUs ends too.
//!
//! The start is the replicated `created_at_ms`, so a new leader goes on counting where
//! the old one was; "now" is the leader's [`AnchoredClock`] (wall clock read once at
//! start, then monotonic), so a wall-clock step expires nothing.

use std::time::Duration;

use gantry_domain::TrainingStatus;
use tokio_util::sync::CancellationToken;

use super::clock::{AnchoredClock, Clock, SystemClock};
use crate::raft::RaftHandle;
use crate::state::{Command, CommandV1, State};

const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Pure: stop commands for every training past its maximum time.
pub fn expired(state: &State, now_ms: u64) -> Vec<CommandV1> {
    let mut out = Vec::new();
    for (project, p) in &state.projects {
        for t in p.trainings.values() {
            if t.status.is_terminal() || t.status == TrainingStatus::StopInProgress {
                continue;
            }
            let limit_ms = u64::from(t.spec.timeout_minutes) * 60_000;
            if now_ms.saturating_sub(t.meta.created_at_ms) >= limit_ms {
                out.push(CommandV1::StopTraining {
                    project: project.clone(),
                    name: t.meta.name.clone(),
                    now_ms,
                    reason: format!("maximum training time of {} minute(s) reached", t.spec.timeout_minutes),
                });
            }
        }
    }
    out
}

/// The deadline check on one replica's clock.
pub struct Deadlines<C> {
    clock: AnchoredClock<C>,
}

impl<C: Clock> Deadlines<C> {
    /// Anchors `clock` now: steps of its wall clock from here on are ignored.
    pub fn new(clock: C) -> Self {
        Deadlines { clock: AnchoredClock::new(clock) }
    }

    /// Stop commands for every training past its maximum time as of now.
    pub fn due(&self, state: &State) -> Vec<CommandV1> {
        expired(state, self.clock.now_ms())
    }
}

pub async fn run(raft: RaftHandle, cancel: CancellationToken) {
    let deadlines = Deadlines::new(SystemClock::default());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if !raft.is_leader() {
            continue;
        }
        let commands = deadlines.due(&raft.state());
        for c in commands {
            if let Err(e) = raft.propose(&Command::V1(c)).await {
                tracing::debug!(error = %e, "deadline stop failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::clock::FakeClock;
    use crate::state::apply;
    use crate::state::tests::{cpu_catalog, spec};

    #[test]
    fn only_trainings_past_their_time_are_stopped() {
        let mut s = cpu_catalog();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            let mut sp = spec(name, "e", "it0", "cpu", 1);
            sp.timeout_minutes = if name == "a" { 1 } else { 10 };
            let c = CommandV1::CreateTraining {
                project: "p".into(),
                id: format!("w-{name}"),
                experiment_id: "e1".into(),
                request_id: String::new(),
                spec: sp,
                now_ms: 1_000,
            };
            apply(&mut s, 3 + i as u64, c.into()).unwrap();
        }
        assert!(expired(&s, 60_999).is_empty());
        let stops = expired(&s, 61_000);
        assert_eq!(stops.len(), 1);
        let c = stops.into_iter().next().unwrap();
        assert!(
            matches!(&c, CommandV1::StopTraining { name, reason, .. } if name == "a" && reason.contains("1 minute"))
        );
        // A training that was never placed ends at once: STOPPED, with the reason kept.
        apply(&mut s, 5, c.into()).unwrap();
        let a = s.training("p", "a").unwrap();
        assert_eq!(a.status, TrainingStatus::Stopped);
        assert!(a.history.iter().any(|h| h.reason.contains("maximum training time")));
        assert!(expired(&s, 61_000).is_empty());
    }

    #[test]
    fn regression_a_wall_clock_jump_expires_no_training() {
        let mut s = cpu_catalog();
        let mut sp = spec("a", "e", "it0", "cpu", 1);
        sp.timeout_minutes = 10;
        let create = CommandV1::CreateTraining {
            project: "p".into(),
            id: "w-a".into(),
            experiment_id: "e1".into(),
            request_id: String::new(),
            spec: sp,
            now_ms: 1_000,
        };
        apply(&mut s, 3, create.into()).unwrap();
        let clock = FakeClock::new(1_000);
        let deadlines = Deadlines::new(clock.clone());
        clock.advance(Duration::from_secs(60));
        // NTP steps the clock a day ahead: ten minutes have not passed.
        clock.set_wall(clock.wall_ms() + 24 * 3_600_000);
        assert!(deadlines.due(&s).is_empty(), "a clock step expired a training");
        // A step back changes nothing either, and a real overrun still ends it.
        clock.set_wall(0);
        clock.advance(Duration::from_secs(8 * 60));
        assert!(deadlines.due(&s).is_empty());
        clock.advance(Duration::from_secs(60));
        assert_eq!(deadlines.due(&s).len(), 1, "ten minutes did pass");
    }
}
