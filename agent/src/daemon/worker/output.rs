//! Where a container's output goes: the durable log store when its training has log
//! management on, or only to live followers when it is off (`use_log = false`: the
//! node keeps nothing, so there is nothing to read back or search later).

use gantry_proto::v1::WorkAssignment;

use super::super::live_log::LiveLog;
use super::super::logs::LogSource;
use crate::logstore::{LogError, LogStore};

/// Lines of output kept in memory for a failure's reason when nothing is stored.
const LIVE_TAIL: usize = super::REASON_LINES;

pub enum Output {
    Stored(LogStore),
    Live(LiveLog),
}

/// Whether the node keeps this container's output (an assignment without a spec, from
/// an ended workload, keeps the default).
pub fn keeps_logs(a: &WorkAssignment) -> bool {
    a.spec.as_ref().is_none_or(|s| s.use_log)
}

impl Output {
    pub fn open(env: &super::WorkerEnv, a: &WorkAssignment) -> Result<Output, LogError> {
        if keeps_logs(a) {
            LogStore::open(&env.log_dir(&a.workload_id, a.rank), env.log_limits).map(Output::Stored)
        } else {
            Ok(Output::Live(LiveLog::new(LIVE_TAIL)))
        }
    }

    /// What the log server reads while the container runs.
    pub fn source(&self) -> LogSource {
        match self {
            Output::Stored(s) => LogSource::Stored(s.reader()),
            Output::Live(l) => LogSource::Live(l.clone()),
        }
    }

    /// Lines already kept from an earlier run of this agent (skipped when a container
    /// is adopted). Nothing is kept live.
    pub fn lines_kept(&self) -> u64 {
        match self {
            Output::Stored(s) => s.total_lines(),
            Output::Live(_) => 0,
        }
    }

    /// Appends a batch, made visible to followers at once.
    pub fn append(&mut self, lines: Vec<String>) -> Result<(), LogError> {
        match self {
            Output::Stored(s) => s.append_many(lines.iter().map(String::as_str)).and_then(|()| s.flush()),
            Output::Live(l) => {
                l.publish(lines);
                Ok(())
            }
        }
    }

    /// The last `n` lines, for a failure's reason.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        match self {
            Output::Stored(s) => s.reader().last_lines(n).unwrap_or_default(),
            Output::Live(l) => l.last_lines(n),
        }
    }

    /// The output has ended: followers see the end.
    pub fn finish(self) {
        match self {
            Output::Stored(mut s) => {
                if let Err(e) = s.flush().and_then(|()| s.finish()) {
                    tracing::warn!(error = %e, "finishing the log failed");
                }
            }
            Output::Live(l) => l.finish(),
        }
    }
}
