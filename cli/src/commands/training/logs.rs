//! `gantryctl training logs`: one container's output, streamed from any replica.
//!
//! ```text
//!   TrainingLogs ──▶ server i ── chunks ──▶ LogSink ──▶ stdout (buffered, flushed when idle)
//!        ▲                └── breaks (transient) ──┐
//!        └── reopen from server i+1 with tail 0, ──┘
//!            skipping the lines already written
//! ```
//!
//! Any replica relays the logs from the node's agent, so a stream that breaks because
//! its replica went away is reopened on the next server and resumes where it stopped:
//! the new stream starts again from the first line kept and the sink skips as many
//! lines as it already wrote. That needs the first line to be known, so a `--tail`
//! stream is not resumed (its first line was the N-th from the end at the time).

use std::future::Future;
use std::io::{self, BufWriter, Write};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use gantry_proto::v1::{TrainingLogsChunk, TrainingLogsRequest};
use tonic::Status;
use tonic::codec::Streaming;

use super::log_sink::LogSink;
use crate::commands::Context;
use crate::connect::{self, Connector};
use crate::report;

/// Stdout buffer: large enough that a fast stream is written in few system calls.
const OUT_BUFFER_BYTES: usize = 64 * 1024;
/// Reopenings in a row that may bring no new line before the stream is given up.
const MAX_REOPENS: u32 = 5;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Training name
    pub name: String,
    /// Keep printing new output until the training ends
    #[arg(short, long)]
    pub follow: bool,
    /// Which container of the training, by rank
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rank: u32,
    /// Only the last N lines (0: all the node kept)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub tail: u64,
}

/// How a log stream ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// The server ended it: every line was written (with follow: the training ended).
    Ended,
    /// Stdout was closed (`| head`): nobody reads any more, which is not a failure.
    ReaderGone,
}

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    let request = TrainingLogsRequest {
        project: ctx.project.clone(),
        name: args.name,
        rank: args.rank,
        follow: args.follow,
        tail_lines: args.tail,
    };
    let mut sink = stdout_sink(ctx);
    stream(&ctx.conn, &request, &mut sink).await?;
    Ok(())
}

/// A sink writing to a locked, buffered stdout in the command's output format.
pub fn stdout_sink(ctx: &Context) -> LogSink<impl Write> {
    LogSink::new(BufWriter::with_capacity(OUT_BUFFER_BYTES, io::stdout().lock()), ctx.format)
}

/// Streams the logs `request` asks for into `sink` until the server ends the stream,
/// reopening it on another server when it breaks (see the module docs).
pub async fn stream<W: Write>(
    conn: &Connector,
    request: &TrainingLogsRequest,
    sink: &mut LogSink<W>,
) -> anyhow::Result<Streamed> {
    let mut first_server = 0;
    let mut reopens = 0;
    let mut opened_before = false;
    loop {
        // A reopened stream starts from the first line kept, so the sink can skip exactly.
        let attempt =
            if opened_before { TrainingLogsRequest { tail_lines: 0, ..request.clone() } } else { request.clone() };
        let opened = conn
            .call_from(first_server, |ch| {
                let attempt = attempt.clone();
                async move { TrainingServiceClient::new(ch).training_logs(attempt).await }
            })
            .await;
        let (mut chunks, answered) = match opened {
            Ok(opened) => opened,
            Err(e) if opened_before && reopens < MAX_REOPENS && connect::is_transient(&e) => {
                reopens += 1;
                eprintln!("warning: reopening the log stream failed: {}; retrying", report::render(&e));
                tokio::time::sleep(backoff(reopens)).await;
                continue;
            }
            Err(e) if opened_before => return Err(e.context("reopening the log stream")),
            Err(e) => return Err(e),
        };
        let first_open = !opened_before;
        opened_before = true;
        let printed_before = sink.printed();
        let status = match pump(&mut chunks, sink).await {
            Pumped::Ended => return written(sink.finish().map(|()| Streamed::Ended)),
            Pumped::WriteFailed(e) => return written(Err(e)),
            Pumped::Broke(status) => status,
        };
        if let Err(e) = sink.flush() {
            return written(Err(e));
        }
        let server = conn.server(answered);
        if sink.printed() > printed_before {
            reopens = 0;
        }
        if !connect::is_transient_status(&status) {
            // Refused before any line (e.g. no such training): the answer itself.
            if first_open && sink.printed() == 0 {
                return Err(status.into());
            }
            return Err(anyhow!(status).context(format!("the log stream from {server} broke")));
        }
        if request.tail_lines != 0 {
            bail!(
                "the log stream from {server} broke: {}; a --tail stream cannot resume where it stopped",
                report::status(&status)
            );
        }
        if reopens >= MAX_REOPENS {
            return Err(anyhow!(status).context(format!("the log stream broke {MAX_REOPENS} times in a row")));
        }
        reopens += 1;
        eprintln!(
            "warning: the log stream from {server} broke: {}; resuming on another server",
            report::status(&status)
        );
        sink.resume();
        // Past the server that broke, so a replica that keeps breaking streams is not
        // chosen first again.
        first_server = answered + 1;
        tokio::time::sleep(backoff(reopens)).await;
    }
}

/// How one stream ended.
enum Pumped {
    Ended,
    Broke(Status),
    WriteFailed(io::Error),
}

/// Moves chunks from `chunks` to `sink` until the stream ends, breaks, or stdout fails.
/// The sink is flushed whenever no chunk is ready: `-f` stays live, and a fast stream is
/// not slowed by a flush per chunk.
async fn pump<W: Write>(chunks: &mut Streaming<TrainingLogsChunk>, sink: &mut LogSink<W>) -> Pumped {
    loop {
        let mut message = pin!(chunks.message());
        let next = match std::future::poll_fn(|cx| Poll::Ready(message.as_mut().poll(cx))).await {
            Poll::Ready(next) => next,
            Poll::Pending => {
                if let Err(e) = sink.flush() {
                    return Pumped::WriteFailed(e);
                }
                message.await
            }
        };
        match next {
            Ok(Some(chunk)) => {
                if let Err(e) = sink.write(&chunk.data) {
                    return Pumped::WriteFailed(e);
                }
            }
            Ok(None) => return Pumped::Ended,
            Err(status) => return Pumped::Broke(status),
        }
    }
}

/// A closed stdout ends the stream quietly; any other write error is reported.
fn written(result: io::Result<Streamed>) -> anyhow::Result<Streamed> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Streamed::ReaderGone),
        result => result.context("writing the logs to stdout"),
    }
}

/// The wait before the `n`-th reopening in a row: 250 ms, doubling, at most 4 s.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.saturating_sub(1).min(4))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tonic::Code;

    use super::super::fake::{self, FakeTrainings, Step};
    use super::*;
    use crate::output::Format;

    fn request(follow: bool, tail_lines: u64) -> TrainingLogsRequest {
        TrainingLogsRequest { project: "default".into(), name: "mnist".into(), rank: 0, follow, tail_lines }
    }

    async fn run_stream(
        servers: &[&Arc<FakeTrainings>],
        request: &TrainingLogsRequest,
        format: Format,
    ) -> (anyhow::Result<Streamed>, String) {
        let mut urls = Vec::new();
        for server in servers {
            urls.push(fake::start(Arc::clone(server)).await);
        }
        let conn = fake::connector(urls);
        let mut sink = LogSink::new(Vec::new(), format);
        let result = stream(&conn, request, &mut sink).await;
        (result, String::from_utf8(sink.into_inner()).unwrap())
    }

    #[tokio::test]
    async fn writes_every_chunk_in_order() {
        let a = FakeTrainings::with_logs([vec![Step::Chunk("1\n2\n"), Step::Chunk("3\n")]]);
        let (result, out) = run_stream(&[&a], &request(false, 0), Format::Table).await;
        assert_eq!(result.unwrap(), Streamed::Ended);
        assert_eq!(out, "1\n2\n3\n");
        assert_eq!(a.log_requests.lock().unwrap()[0], request(false, 0));
    }

    #[tokio::test]
    async fn a_broken_stream_resumes_on_the_next_server_without_repeating_lines() {
        let a =
            FakeTrainings::with_logs([vec![Step::Chunk("1\n2\n"), Step::Chunk("3\n"), Step::Fail(Code::Unavailable)]]);
        let b = FakeTrainings::with_logs([vec![Step::Chunk("1\n2\n3\n4\n"), Step::Chunk("5\n")]]);
        let (result, out) = run_stream(&[&a, &b], &request(true, 0), Format::Json).await;
        assert_eq!(result.unwrap(), Streamed::Ended);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines, ["1", "2", "3", "4", "5"].map(|n| format!("{{\"line\":\"{n}\"}}")));
        assert_eq!(a.log_requests.lock().unwrap().len(), 1, "the broken server is not asked first again");
        assert_eq!(*b.log_requests.lock().unwrap(), [request(true, 0)]);
    }

    #[tokio::test]
    async fn an_answer_ending_the_stream_is_an_error() {
        let a = FakeTrainings::with_logs([vec![Step::Chunk("1\n"), Step::Fail(Code::FailedPrecondition)]]);
        let (result, out) = run_stream(&[&a], &request(true, 0), Format::Table).await;
        let err = report::render(&result.unwrap_err());
        assert!(err.starts_with("the log stream from http://127.0.0.1:"), "{err}");
        assert!(err.ends_with("broke: fake failure (FailedPrecondition)"), "{err}");
        assert_eq!(out, "1\n");
    }

    #[tokio::test]
    async fn a_tail_stream_is_not_resumed() {
        let a = FakeTrainings::with_logs([vec![Step::Chunk("9\n"), Step::Fail(Code::Unavailable)]]);
        let (result, out) = run_stream(&[&a], &request(true, 1), Format::Table).await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("a --tail stream cannot resume where it stopped"), "{err}");
        assert_eq!(out, "9\n");
    }

    #[tokio::test]
    async fn a_refused_request_is_the_plain_error() {
        let a = FakeTrainings::with_logs([vec![Step::Fail(Code::NotFound)]]);
        let (result, out) = run_stream(&[&a], &request(true, 0), Format::Table).await;
        assert_eq!(report::render(&result.unwrap_err()), "fake failure (NotFound)");
        assert_eq!(out, "");
    }

    /// Stdout closed by the reader, like `gantryctl training logs x | head -1`.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[tokio::test]
    async fn a_closed_stdout_ends_the_stream_quietly() {
        let a = FakeTrainings::with_logs([vec![Step::Chunk("1\n"), Step::Chunk("2\n")]]);
        let conn = fake::connector(vec![fake::start(a).await]);
        let mut sink = LogSink::new(ClosedPipe, Format::Table);
        assert_eq!(stream(&conn, &request(true, 0), &mut sink).await.unwrap(), Streamed::ReaderGone);
    }

    #[test]
    fn backoff_doubles_up_to_four_seconds() {
        let waits: Vec<u64> = (1..=6).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000]);
    }
}
