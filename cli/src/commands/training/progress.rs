//! How a waited-for training is reported: a line per status change while waiting, and an
//! exit code for how it ended. Pure: the wait loop feeds it what it polled.

use gantry_domain::TrainingStatus;
use gantry_proto::v1::Training;

use super::view;
use crate::output::format::timestamp;
use crate::report::Exit;

/// Exit code of a training that ended FAIL TRAIN or CREATE FAILED (like any other error).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a training that ended STOPPED (the same as a usage error's).
pub const EXIT_STOPPED: u8 = 2;

/// `--help` text on the exit codes of the commands that wait.
pub const EXIT_CODES_HELP: &str = "\
Exit codes when waiting: 0 the training ended COMPLETE; 1 it ended FAIL TRAIN or CREATE FAILED, \
or the command failed; 2 it ended STOPPED (or the command line was wrong).";

fn status(t: &Training) -> Option<TrainingStatus> {
    TrainingStatus::parse(&t.status)
}

/// Whether the training has ended for good. A status this client does not know is not
/// terminal: a newer scheduler's intermediate state must not end the wait.
pub fn is_terminal(t: &Training) -> bool {
    status(t).is_some_and(|s| s.is_terminal())
}

/// Whether the training's containers may have written output: it ran, or it failed (a
/// container that crashes at start fails the training before it is RUNNING).
pub fn has_logs(t: &Training) -> bool {
    use TrainingStatus::*;
    t.started_at_ms != 0
        || matches!(status(t), Some(Running | CompleteInProgress | Complete | FailTrainInProgress | FailTrain))
}

/// How waiting for `t`, which has ended, ends the command: `Ok` for COMPLETE, else an
/// [`Exit`] with the code [`EXIT_CODES_HELP`] documents.
pub fn outcome(t: &Training) -> Result<(), Exit> {
    let code = match status(t) {
        Some(TrainingStatus::Complete) => return Ok(()),
        Some(TrainingStatus::Stopped) => EXIT_STOPPED,
        _ => EXIT_FAILED,
    };
    let reason = if t.status_reason.is_empty() { String::new() } else { format!(": {}", t.status_reason) };
    Err(Exit { code, message: format!("training \"{}\" ended {}{reason}", view::name(t), t.status) })
}

/// Which status changes were already reported.
#[derive(Debug, Default)]
pub struct Progress {
    /// History entries already reported.
    shown: usize,
    /// Status and reason last reported, for a record without history.
    last: Option<(String, String)>,
}

impl Progress {
    /// Lines for what changed since the last record seen: one per new history entry (so
    /// a status held only between two polls is still reported), or for a record without
    /// history, one when its status or reason changed. The history only grows.
    pub fn lines(&mut self, t: &Training) -> Vec<String> {
        if t.history.len() > self.shown {
            let lines = t.history[self.shown..].iter().map(|h| line(h.at_ms, &h.status, &h.reason)).collect();
            self.shown = t.history.len();
            return lines;
        }
        let current = (t.status.clone(), t.status_reason.clone());
        if t.history.is_empty() && self.last.as_ref() != Some(&current) {
            self.last = Some(current);
            return vec![line(t.updated_at_ms, &t.status, &t.status_reason)];
        }
        Vec::new()
    }
}

/// `2023-11-14T22:13:32Z  RUNNING`, with `: reason` when there is one.
fn line(at_ms: u64, status: &str, reason: &str) -> String {
    let mut line = match timestamp(at_ms) {
        at if at.is_empty() => status.to_string(),
        at => format!("{at}  {status}"),
    };
    if !reason.is_empty() {
        line.push_str(": ");
        line.push_str(reason);
    }
    line
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{StatusChange, TrainingSpec};

    use super::*;

    fn training(status: &str, reason: &str) -> Training {
        Training {
            spec: Some(TrainingSpec { name: "mnist".into(), ..Default::default() }),
            status: status.into(),
            status_reason: reason.into(),
            ..Default::default()
        }
    }

    fn change(status: &str, at_ms: u64, reason: &str) -> StatusChange {
        StatusChange { status: status.into(), at_ms, reason: reason.into() }
    }

    #[test]
    fn terminal_statuses_end_the_wait() {
        for (status, terminal) in [
            ("CREATE REQUESTED", false),
            ("CREATE IN PROGRESS", false),
            ("RUNNING", false),
            ("STOP IN PROGRESS", false),
            ("FAIL TRAIN IN PROGRESS", false),
            ("COMPLETE IN PROGRESS", false),
            ("STOPPED", true),
            ("COMPLETE", true),
            ("FAIL TRAIN", true),
            ("CREATE FAILED", true),
            ("SOMETHING NEW", false),
        ] {
            assert_eq!(is_terminal(&training(status, "")), terminal, "{status}");
        }
    }

    #[test]
    fn logs_exist_once_containers_ran() {
        assert!(!has_logs(&training("CREATE IN PROGRESS", "")));
        assert!(!has_logs(&training("CREATE FAILED", "")));
        assert!(!has_logs(&training("STOPPED", "")));
        assert!(has_logs(&training("RUNNING", "")));
        assert!(has_logs(&training("FAIL TRAIN", "")));
        assert!(has_logs(&Training { started_at_ms: 1, ..training("STOPPED", "") }));
    }

    #[test]
    fn exit_codes_tell_how_the_training_ended() {
        assert_eq!(outcome(&training("COMPLETE", "")), Ok(()));
        assert_eq!(
            outcome(&training("FAIL TRAIN", "rank 0 exited with code 1")),
            Err(Exit { code: 1, message: "training \"mnist\" ended FAIL TRAIN: rank 0 exited with code 1".into() })
        );
        assert_eq!(outcome(&training("CREATE FAILED", "")).unwrap_err().code, EXIT_FAILED);
        assert_eq!(
            outcome(&training("STOPPED", "")),
            Err(Exit { code: 2, message: "training \"mnist\" ended STOPPED".into() })
        );
    }

    #[test]
    fn progress_reports_each_history_entry_once() {
        let mut progress = Progress::default();
        let mut t = training("CREATE IN PROGRESS", "");
        t.history = vec![
            change("CREATE REQUESTED", 1_700_000_000_000, ""),
            change("CREATE IN PROGRESS", 1_700_000_001_000, ""),
        ];
        assert_eq!(
            progress.lines(&t),
            ["2023-11-14T22:13:20Z  CREATE REQUESTED", "2023-11-14T22:13:21Z  CREATE IN PROGRESS"]
        );
        assert!(progress.lines(&t).is_empty());
        // RUNNING and COMPLETE IN PROGRESS both happened between two polls.
        t.history.push(change("RUNNING", 1_700_000_002_000, ""));
        t.history.push(change("COMPLETE IN PROGRESS", 1_700_000_062_000, ""));
        t.history.push(change("COMPLETE", 1_700_000_063_000, "all ranks exited 0"));
        assert_eq!(
            progress.lines(&t),
            [
                "2023-11-14T22:13:22Z  RUNNING",
                "2023-11-14T22:14:22Z  COMPLETE IN PROGRESS",
                "2023-11-14T22:14:23Z  COMPLETE: all ranks exited 0",
            ]
        );
    }

    #[test]
    fn progress_without_history_reports_status_changes() {
        let mut progress = Progress::default();
        assert_eq!(progress.lines(&training("RUNNING", "")), ["RUNNING"]);
        assert!(progress.lines(&training("RUNNING", "")).is_empty());
        assert_eq!(progress.lines(&training("FAIL TRAIN", "out of memory")), ["FAIL TRAIN: out of memory"]);
    }
}
