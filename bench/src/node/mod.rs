//! Node benchmarks: one real `gantry-agent` process on this machine's Docker engine,
//! driven through the public API of an in-process sandbox scheduler (the node tests'
//! [`NodeKit`]).
//!
//! ```text
//!   bench ──gRPC/TLS──▶ sandbox scheduler (in-process) ◀──session── gantry-agent (process)
//!     │                                                                  │
//!     └──bollard (bare starts, inspect, list)──▶ Docker engine ◀─────────┘
//! ```
//!
//! - [`start_overhead`]: `CreateTraining` → container running, minus a bare
//!   `create + start` of the same image.
//! - [`logs`]: lines per second of a fast printer followed end to end through
//!   `TrainingLogs`, with every line checked.
//! - [`footprint`]: RSS and CPU of the agent process with 20 idle containers.
//!
//! Every benchmark runs inside [`with_node`], which removes the kit's containers and
//! stops the scheduler whatever the benchmark's outcome.

pub mod footprint;
pub mod logs;
pub mod start_overhead;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use gantry_domain::TrainingStatus;
use gantry_proto::v1::{self as pb, GetTrainingRequest};
use gantry_tests::nodes::NodeKit;
use gantry_tests::{SandboxOptions, TEAM_A};

/// Name of the one agent every node benchmark starts.
pub const NODE: &str = "bench-node";
/// Lines of the agent's log shown when a benchmark fails.
const AGENT_LOG_TAIL: usize = 40;

/// Starts a kit with one agent (configured with `extra_toml`), runs `body`, then always
/// kills the agent, removes the kit's containers and stops the scheduler.
pub async fn with_node<T>(
    extra_toml: &str,
    body: impl AsyncFnOnce(&NodeKit) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let result = match kit.add_agent(NODE, extra_toml).await {
        Ok(agent) => body(&kit).await.map_err(|e| {
            let log = kit.agent(agent).log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(AGENT_LOG_TAIL)..].join("\n");
            e.context(format!("the agent's last {AGENT_LOG_TAIL} log lines:\n{tail}"))
        }),
        // The kit's error carries the agent's log already.
        Err(e) => Err(e),
    };
    let finished = kit.finish().await.context("cleaning up the kit");
    let value = result?;
    finished?;
    Ok(value)
}

/// Wall-clock Unix milliseconds (the clock of the scheduler's history and of Docker's
/// timestamps: all on this machine).
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When the training entered `status`, from its history (Unix ms).
pub fn entered(t: &pb::Training, status: &str) -> Option<u64> {
    t.history.iter().find(|h| h.status == status).map(|h| h.at_ms)
}

/// Docker's RFC 3339 timestamps (`…T03:04:05.123456789Z`) as Unix ms.
pub fn docker_time_ms(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(s).ok()?;
    t.duration_since(UNIX_EPOCH).ok().and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// Polls `GetTraining` every `every` until the training is RUNNING (or already past it:
/// COMPLETE IN PROGRESS, COMPLETE); returns when that was first seen and the training.
/// Fails at once on a failure or stop, and after `within`.
pub async fn poll_until_running(
    kit: &NodeKit,
    name: &str,
    every: Duration,
    within: Duration,
) -> anyhow::Result<(Instant, pb::Training)> {
    let mut trainings = kit.admin().trainings;
    let deadline = Instant::now() + within;
    loop {
        let req = GetTrainingRequest { project: TEAM_A.into(), name: name.into(), read: None };
        let t = trainings.get_training(req).await?.into_inner();
        let seen = Instant::now();
        match TrainingStatus::parse(&t.status) {
            Some(TrainingStatus::Running | TrainingStatus::CompleteInProgress | TrainingStatus::Complete) => {
                return Ok((seen, t));
            }
            Some(TrainingStatus::CreateRequested | TrainingStatus::CreateInProgress) => {}
            _ => anyhow::bail!("training {name} is {} ({})", t.status, t.status_reason),
        }
        anyhow::ensure!(seen < deadline, "training {name} not RUNNING within {within:?}: {}", t.status);
        tokio::time::sleep(every).await;
    }
}

/// Nearest-rank percentile `p` (0..=100) of `values`; 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The middle value (the mean of the two middle ones of an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Milliseconds of a duration, fractional.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median(&v), 5.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn docker_timestamps_keep_their_milliseconds() {
        assert_eq!(docker_time_ms("1970-01-01T00:00:01.234567891Z"), Some(1234));
    }
}
