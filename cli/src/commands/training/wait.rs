//! Waiting for a training to end: `training wait`, and `training create --wait/--follow`.
//!
//! ```text
//!   GetTraining every 500 ms (linearizable) ──▶ a progress line per status change (stderr)
//!        │ --follow, once containers ran: TrainingLogs(rank 0, follow) ──▶ stdout, meanwhile
//!        ▼ terminal status
//!   the training as `get` shows it (stdout), exit code by how it ended (progress.rs)
//! ```
//!
//! The polls go through the usual failover. Once the training was seen, the cluster may
//! be unreachable for a while (a leader election, a rolling restart) without ending the
//! wait; the first poll of `training wait` fails at once, so a wrong name or server is
//! reported right away.

use std::io::{self, Write};
use std::pin::pin;
use std::time::Duration;

use clap::Args;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use gantry_proto::v1::{GetTrainingRequest, ReadOptions, Training, TrainingLogsRequest};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::log_sink::LogSink;
use super::logs::{self, Streamed};
use super::progress::{self, Progress};
use super::view;
use crate::commands::Context;
use crate::connect::{self, Connector};
use crate::output::{Format, emit, emit_json_line};
use crate::report;

/// Time between two polls of the training.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long the cluster may stay unreachable, after the training was seen, before the
/// wait fails.
const OUTAGE_GRACE: Duration = Duration::from_secs(60);
/// How long the log stream may take to end after the training did (the server ends it
/// then; this only bounds a server that does not).
const LOG_DRAIN: Duration = Duration::from_secs(10);

/// `create`'s flags for waiting on the training it created.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct CreateWaitArgs {
    /// Wait until the training ends, printing its status changes on stderr, then show it
    /// like `get` does; the exit code tells how it ended (see below)
    #[arg(long)]
    pub wait: bool,
    /// Like --wait, and print the output of rank 0 meanwhile (with `-o json`, one
    /// `{"line": ...}` object per line, then the training on one line)
    #[arg(long)]
    pub follow: bool,
}

impl CreateWaitArgs {
    pub fn waits(self) -> bool {
        self.wait || self.follow
    }
}

/// Waits for training `name` to end, with `seen` its record if already known, then
/// prints it and ends with its outcome. With `follow`, rank 0's output goes to stdout
/// meanwhile, and with `-o json` the final training is one more JSON line after the log
/// lines rather than an indented document.
pub async fn run(ctx: &Context, name: String, seen: Option<Training>, follow: bool) -> anyhow::Result<()> {
    let request = GetTrainingRequest {
        project: ctx.project.clone(),
        name: name.clone(),
        // Linearizable: a poll never sees an older status than the previous one did.
        read: Some(ReadOptions { stale: false }),
    };
    let mut poller = Poller::new(&ctx.conn, request, seen, POLL_INTERVAL);
    let mut stderr = io::stderr();
    let training = if follow {
        let mut sink = logs::stdout_sink(ctx);
        match with_logs(ctx, &name, &mut poller, &mut stderr, &mut sink).await? {
            Some(training) => training,
            None => return Ok(()),
        }
    } else {
        poller.until(progress::is_terminal, &mut stderr).await?
    };
    match ctx.format {
        Format::Json if follow => emit_json_line(&training)?,
        format => emit(format, &training, view::detail)?,
    }
    Ok(progress::outcome(&training)?)
}

/// Waits for the end while streaming rank 0's logs once there are any. `None` when
/// stdout was closed: nobody reads, so the command ends quietly.
async fn with_logs<W: Write>(
    ctx: &Context,
    name: &str,
    poller: &mut Poller<'_>,
    progress: &mut impl Write,
    sink: &mut LogSink<W>,
) -> anyhow::Result<Option<Training>> {
    let started = poller.until(|t| progress::has_logs(t) || progress::is_terminal(t), progress).await?;
    if !progress::has_logs(&started) {
        return Ok(Some(started));
    }
    let request = TrainingLogsRequest {
        project: ctx.project.clone(),
        name: name.to_string(),
        rank: 0,
        follow: true,
        tail_lines: 0,
    };
    let ended = {
        let mut logs = pin!(logs::stream(&ctx.conn, &request, sink));
        let mut logs_done = false;
        let training = if progress::is_terminal(&started) {
            started
        } else {
            let mut until_end = pin!(poller.until(progress::is_terminal, progress));
            loop {
                tokio::select! {
                    result = &mut logs, if !logs_done => {
                        logs_done = true;
                        if logs_ended(result) == Some(Streamed::ReaderGone) {
                            return Ok(None);
                        }
                    }
                    training = &mut until_end => break training?,
                }
            }
        };
        if !logs_done {
            match tokio::time::timeout(LOG_DRAIN, &mut logs).await {
                Ok(result) => {
                    if logs_ended(result) == Some(Streamed::ReaderGone) {
                        return Ok(None);
                    }
                }
                Err(_) => eprintln!("warning: the log stream did not end with the training; stopped reading it"),
            }
        }
        training
    };
    // Whatever the stream left buffered goes out before the training is shown.
    // Any other write error shows when the training is printed.
    if let Err(e) = sink.flush()
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        return Ok(None);
    }
    Ok(Some(ended))
}

/// How the log stream ended; an error is reported as a warning, since the wait goes on.
fn logs_ended(result: anyhow::Result<Streamed>) -> Option<Streamed> {
    match result {
        Ok(how) => Some(how),
        Err(e) => {
            eprintln!("warning: cannot show the training's output: {}", report::render(&e));
            None
        }
    }
}

/// Polls one training, reporting its status changes.
struct Poller<'a> {
    conn: &'a Connector,
    request: GetTrainingRequest,
    /// A record already known, returned by the first poll without a request.
    seen: Option<Training>,
    ticker: Interval,
    progress: Progress,
    /// Whether the training was seen: from then on, outages are waited out.
    answered: bool,
}

impl<'a> Poller<'a> {
    fn new(conn: &'a Connector, request: GetTrainingRequest, seen: Option<Training>, interval: Duration) -> Self {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        if seen.is_some() {
            // The known record stands for the first, immediate tick.
            ticker.reset();
        }
        Poller { conn, request, seen, ticker, progress: Progress::default(), answered: false }
    }

    /// Polls until a record satisfies `done` and returns it, writing the progress lines
    /// to `out` (errors writing them are ignored: they are only commentary).
    async fn until(&mut self, done: impl Fn(&Training) -> bool, out: &mut impl Write) -> anyhow::Result<Training> {
        loop {
            let training = self.next(out).await?;
            for line in self.progress.lines(&training) {
                let _ = writeln!(out, "{line}");
            }
            if done(&training) {
                return Ok(training);
            }
        }
    }

    async fn next(&mut self, out: &mut impl Write) -> anyhow::Result<Training> {
        if let Some(training) = self.seen.take() {
            self.answered = true;
            return Ok(training);
        }
        let mut outage: Option<Instant> = None;
        loop {
            self.ticker.tick().await;
            let request = &self.request;
            let result = self
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).get_training(request).await }
                })
                .await;
            match result {
                Ok(training) => {
                    if outage.is_some() {
                        let _ = writeln!(out, "reached the cluster again");
                    }
                    self.answered = true;
                    return Ok(training);
                }
                Err(e) if self.answered && connect::is_transient(&e) => {
                    let since = *outage.get_or_insert_with(|| {
                        let _ = writeln!(
                            out,
                            "warning: {}; retrying for up to {}",
                            report::render(&e),
                            humantime::format_duration(OUTAGE_GRACE)
                        );
                        Instant::now()
                    });
                    if since.elapsed() >= OUTAGE_GRACE {
                        return Err(e.context(format!(
                            "no news of training \"{}\" for {}",
                            self.request.name,
                            humantime::format_duration(OUTAGE_GRACE)
                        )));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gantry_proto::v1::{StatusChange, TrainingSpec};
    use tonic::Code;

    use super::super::fake::{self, FakeTrainings, Step};
    use super::*;

    const TICK: Duration = Duration::from_millis(5);

    /// A training whose history is `statuses`, one second apart; it is in the last one.
    fn training(statuses: &[&str]) -> Training {
        let history: Vec<StatusChange> = statuses
            .iter()
            .zip(0..)
            .map(|(s, i)| StatusChange {
                status: s.to_string(),
                at_ms: 1_700_000_000_000 + i * 1000,
                reason: String::new(),
            })
            .collect();
        Training {
            spec: Some(TrainingSpec { name: "mnist".into(), ..Default::default() }),
            status: statuses.last().unwrap().to_string(),
            history,
            ..Default::default()
        }
    }

    fn get_request() -> GetTrainingRequest {
        GetTrainingRequest { project: "default".into(), name: "mnist".into(), read: Some(ReadOptions { stale: false }) }
    }

    #[tokio::test]
    async fn polls_until_the_training_ends_reporting_each_change_once() {
        let server = FakeTrainings::with_trainings([
            Ok(training(&["CREATE REQUESTED", "CREATE IN PROGRESS", "RUNNING"])),
            Ok(training(&["CREATE REQUESTED", "CREATE IN PROGRESS", "RUNNING"])),
            Ok(training(&["CREATE REQUESTED", "CREATE IN PROGRESS", "RUNNING", "COMPLETE"])),
        ]);
        let conn = fake::connector(vec![fake::start(server).await]);
        let seen = training(&["CREATE REQUESTED"]);
        let mut poller = Poller::new(&conn, get_request(), Some(seen), TICK);
        let mut out = Vec::new();
        let ended = poller.until(progress::is_terminal, &mut out).await.unwrap();
        assert_eq!(ended.status, "COMPLETE");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
2023-11-14T22:13:20Z  CREATE REQUESTED
2023-11-14T22:13:21Z  CREATE IN PROGRESS
2023-11-14T22:13:22Z  RUNNING
2023-11-14T22:13:23Z  COMPLETE
"
        );
    }

    #[tokio::test]
    async fn a_failed_first_poll_ends_the_wait_at_once() {
        let server = FakeTrainings::with_trainings([Err(Code::NotFound)]);
        let conn = fake::connector(vec![fake::start(server).await]);
        let mut poller = Poller::new(&conn, get_request(), None, TICK);
        let err = poller.until(progress::is_terminal, &mut Vec::new()).await.unwrap_err();
        assert_eq!(report::render(&err), "fake failure (NotFound)");
    }

    #[tokio::test]
    async fn an_outage_after_the_training_was_seen_is_waited_out() {
        let server = FakeTrainings::with_trainings([
            Err(Code::Unavailable),
            Err(Code::Unavailable),
            Ok(training(&["RUNNING", "FAIL TRAIN"])),
        ]);
        let conn = fake::connector(vec![fake::start(server).await]);
        let mut poller = Poller::new(&conn, get_request(), Some(training(&["RUNNING"])), TICK);
        let mut out = Vec::new();
        let ended = poller.until(progress::is_terminal, &mut out).await.unwrap();
        assert_eq!(ended.status, "FAIL TRAIN");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("warning: could not reach").count(), 1, "{out}");
        assert!(out.contains("reached the cluster again\n"), "{out}");
    }

    /// A CLI context talking to `server` only.
    async fn context(server: &Arc<FakeTrainings>) -> Context {
        Context {
            conn: fake::connector(vec![fake::start(Arc::clone(server)).await]),
            project: "default".into(),
            format: Format::Table,
            token: None,
        }
    }

    #[tokio::test]
    async fn follow_streams_rank_0_once_the_training_runs() {
        let server = FakeTrainings::with_trainings([
            Ok(training(&["CREATE IN PROGRESS"])),
            Ok(training(&["CREATE IN PROGRESS", "RUNNING"])),
            Ok(training(&["CREATE IN PROGRESS", "RUNNING", "COMPLETE"])),
        ]);
        *server.logs.lock().unwrap() = [vec![Step::Chunk("epoch 1\n"), Step::Chunk("epoch 2\n")]].into();
        let ctx = context(&server).await;
        let mut poller = Poller::new(&ctx.conn, get_request(), None, TICK);
        let mut sink = LogSink::new(Vec::new(), Format::Table);
        let ended = with_logs(&ctx, "mnist", &mut poller, &mut Vec::new(), &mut sink).await.unwrap().unwrap();
        assert_eq!(ended.status, "COMPLETE");
        assert_eq!(String::from_utf8(sink.into_inner()).unwrap(), "epoch 1\nepoch 2\n");
        let requests = server.log_requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].follow && requests[0].rank == 0 && requests[0].tail_lines == 0);
    }

    #[tokio::test]
    async fn follow_skips_the_logs_of_a_training_that_never_ran() {
        let server = FakeTrainings::with_trainings([Ok(training(&["CREATE IN PROGRESS", "CREATE FAILED"]))]);
        let ctx = context(&server).await;
        let mut poller = Poller::new(&ctx.conn, get_request(), None, TICK);
        let mut sink = LogSink::new(Vec::new(), Format::Table);
        let ended = with_logs(&ctx, "mnist", &mut poller, &mut Vec::new(), &mut sink).await.unwrap().unwrap();
        assert_eq!(ended.status, "CREATE FAILED");
        assert!(server.log_requests.lock().unwrap().is_empty());
    }
}
