//! Election timing of both systems in one model, so "the same settings" is checkable.
//!
//! Both run the same Raft design (raft-rs is a port of etcd's raft): a logical clock
//! ticks every `tick`; the leader sends a heartbeat every `heartbeat_ticks`; a follower
//! that heard nothing for its randomised election timeout, drawn from
//! `[election_ticks, 2 × election_ticks − 1]` ticks, campaigns. Units differ only in
//! the configuration:
//!
//! ```text
//!   Gantry  [raft] tick = "50ms", heartbeat_ticks = 2, election_ticks = 10   (ticks)
//!   etcd    --heartbeat-interval=100 --election-timeout=1000                 (ms)
//!           etcd ticks once per heartbeat interval: tick = heartbeat-interval,
//!           heartbeat 1 tick, election = election-timeout / heartbeat-interval ticks
//! ```
//!
//! Both check quorum (a leader that loses a majority steps down). Pre-vote is on in
//! Gantry (`raft/mod.rs`) and off by default in etcd 3.4 (`--pre-vote`).

use std::fmt;
use std::time::Duration;

use anyhow::ensure;
use gantry_scheduler::config::RaftConfig;

/// One system's effective election timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    pub tick: Duration,
    pub heartbeat_ticks: u64,
    pub election_ticks: u64,
    pub pre_vote: bool,
}

impl RaftTiming {
    /// Gantry as shipped: `RaftConfig::default()` (pre-vote is always on).
    pub fn gantry_default() -> RaftTiming {
        let c = RaftConfig::default();
        RaftTiming {
            tick: c.tick,
            heartbeat_ticks: c.heartbeat_ticks as u64,
            election_ticks: c.election_ticks as u64,
            pre_vote: true,
        }
    }

    /// etcd as shipped: the defaults the installed binary's `etcd --help` states
    /// (`help`), so the table shows what really runs.
    pub fn etcd_default(help: &str) -> anyhow::Result<RaftTiming> {
        let flag = |name: &str| {
            help_default(help, name).ok_or_else(|| anyhow::anyhow!("`etcd --help` states no default for {name}"))
        };
        let heartbeat = flag("--heartbeat-interval")?.parse()?;
        let election = flag("--election-timeout")?.parse()?;
        let pre_vote = flag("--pre-vote")?.parse()?;
        Self::etcd(heartbeat, election, pre_vote)
    }

    /// What etcd runs with `--heartbeat-interval=heartbeat_ms --election-timeout=election_ms`.
    /// etcd requires the election timeout to be at least 5 × the heartbeat interval
    /// (it refuses to start otherwise); a remainder of the division would be dropped by
    /// etcd, so it is refused here to keep the two systems exactly equal.
    pub fn etcd(heartbeat_ms: u64, election_ms: u64, pre_vote: bool) -> anyhow::Result<RaftTiming> {
        ensure!(heartbeat_ms > 0, "heartbeat must be at least 1 ms");
        ensure!(
            election_ms >= 5 * heartbeat_ms,
            "etcd needs an election timeout of at least 5 heartbeats (got {election_ms} ms / {heartbeat_ms} ms)"
        );
        ensure!(
            election_ms.is_multiple_of(heartbeat_ms),
            "election timeout {election_ms} ms is not a whole number of {heartbeat_ms} ms heartbeats"
        );
        Ok(RaftTiming {
            tick: Duration::from_millis(heartbeat_ms),
            heartbeat_ticks: 1,
            election_ticks: election_ms / heartbeat_ms,
            pre_vote,
        })
    }

    pub fn heartbeat(&self) -> Duration {
        self.tick * self.heartbeat_ticks as u32
    }

    /// Shortest randomised election timeout.
    pub fn election_min(&self) -> Duration {
        self.tick * self.election_ticks as u32
    }

    /// Longest randomised election timeout (both draw `[e, 2e)` ticks, whole ticks).
    pub fn election_max(&self) -> Duration {
        self.tick * (2 * self.election_ticks - 1) as u32
    }

    /// etcd's command line for this timing. Precondition: one heartbeat per tick (the
    /// only shape etcd has); [`RaftTiming::etcd`] builds only such timings.
    pub fn etcd_flags(&self) -> Vec<String> {
        vec![
            format!("--heartbeat-interval={}", self.tick.as_millis()),
            format!("--election-timeout={}", self.election_min().as_millis()),
            format!("--pre-vote={}", self.pre_vote),
        ]
    }

    /// Gantry's `[raft]` settings for this timing.
    pub fn gantry_settings(&self) -> String {
        format!(
            "[raft] tick={}ms heartbeat_ticks={} election_ticks={}",
            self.tick.as_millis(),
            self.heartbeat_ticks,
            self.election_ticks
        )
    }
}

impl fmt::Display for RaftTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tick {} ms, heartbeat {} ms, election {}-{} ms, pre-vote {}, check-quorum on",
            self.tick.as_millis(),
            self.heartbeat().as_millis(),
            self.election_min().as_millis(),
            self.election_max().as_millis(),
            if self.pre_vote { "on" } else { "off" }
        )
    }
}

/// The default `etcd --help` prints for `flag`: the line reads `  --flag 'value'`.
fn help_default<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    help.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(flag)?.strip_prefix(' ')?;
        Some(rest.trim().trim_matches('\''))
    })
}

/// The shared setting of the "same" configurations: Gantry's default heartbeat and
/// election timeout, expressed the only way etcd can run them (one heartbeat per tick),
/// unless overridden.
pub fn same(heartbeat_ms: Option<u64>, election_ms: Option<u64>) -> anyhow::Result<RaftTiming> {
    let g = RaftTiming::gantry_default();
    let heartbeat_ms = heartbeat_ms.unwrap_or(g.heartbeat().as_millis() as u64);
    let election_ms = election_ms.unwrap_or(g.election_min().as_millis() as u64);
    RaftTiming::etcd(heartbeat_ms, election_ms, g.pre_vote)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt of etcd 3.4.23's `--help`.
    const HELP: &str = "  --heartbeat-interval '100'\n    Time (in milliseconds) of a heartbeat interval.\n  \
        --election-timeout '1000'\n    Time (in milliseconds) for an election to timeout.\n  \
        --pre-vote-extra 'x'\n  --pre-vote 'false'\n    Enable to run an additional Raft election phase.\n";

    #[test]
    fn etcd_defaults_come_from_its_help() -> anyhow::Result<()> {
        let e = RaftTiming::etcd_default(HELP)?;
        assert_eq!((e.heartbeat(), e.election_min()), (Duration::from_millis(100), Duration::from_millis(1000)));
        assert_eq!(e.election_max(), Duration::from_millis(1900));
        assert!(!e.pre_vote);
        assert!(RaftTiming::etcd_default("  --pre-vote 'false'\n").is_err(), "no heartbeat default");
        Ok(())
    }

    #[test]
    fn same_is_gantrys_default_in_etcds_shape() -> anyhow::Result<()> {
        let g = RaftTiming::gantry_default();
        let s = same(None, None)?;
        assert_eq!((s.heartbeat(), s.election_min(), s.pre_vote), (g.heartbeat(), g.election_min(), g.pre_vote));
        assert_eq!(s.heartbeat_ticks, 1);
        assert_eq!(
            s.etcd_flags(),
            [
                format!("--heartbeat-interval={}", g.heartbeat().as_millis()),
                format!("--election-timeout={}", g.election_min().as_millis()),
                "--pre-vote=true".to_string()
            ]
        );
        Ok(())
    }

    #[test]
    fn gantry_settings_are_tick_based() -> anyhow::Result<()> {
        let s = same(Some(100), Some(1000))?;
        assert_eq!(s.gantry_settings(), "[raft] tick=100ms heartbeat_ticks=1 election_ticks=10");
        assert_eq!(s.election_max(), Duration::from_millis(1900));
        Ok(())
    }

    #[test]
    fn settings_etcd_would_change_are_refused() {
        assert!(RaftTiming::etcd(100, 400, false).is_err(), "below 5 heartbeats");
        assert!(RaftTiming::etcd(100, 550, false).is_err(), "not whole heartbeats");
        assert!(RaftTiming::etcd(0, 500, false).is_err());
    }
}
