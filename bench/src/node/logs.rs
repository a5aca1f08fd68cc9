//! Log throughput end to end: a training prints numbered lines as fast as Python can
//! (block-buffered stdout), and `TrainingLogs(follow)` carries them to the client.
//!
//! ```text
//!   python ─pipe─► engine (json-file) ─follow─► agent LogStore ─session─► scheduler
//!          ─TrainingLogs stream─► bench: every number checked once, in order
//! ```
//!
//! The stream is opened as soon as `GetTraining` (polled every 2 ms) says RUNNING,
//! with `tail_lines = 0` (everything kept), and read until it ends with the training.
//! lines/s counts the numbered lines received over the time from the first byte
//! received to the end of the stream.
//!
//! Every line the training prints is its number, so the received stream must be
//! exactly `0, 1, …, lines − 1`, live and when read again after the training ended; the
//! benchmark fails (after printing its figures) naming the first line lost, duplicated
//! or out of order.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use gantry_proto::v1::{TrainingLogsChunk, TrainingLogsRequest};
use gantry_tests::TEAM_A;
use gantry_tests::nodes::NodeKit;

use super::{entered, ms, poll_until_running, with_node};

const NAME: &str = "logs";
const API_POLL: Duration = Duration::from_millis(2);
const START_WITHIN: Duration = Duration::from_secs(60);
/// Limit of the whole stream (1,000,000 lines at the target rate take 10 s).
const STREAM_WITHIN: Duration = Duration::from_secs(300);
/// Lines that are not numbers shown in the table (the rest only counted).
const SHOW_OTHER: usize = 5;

fn script(lines: u64) -> String {
    format!("import sys\nw = sys.stdout.write\nfor i in range({lines}):\n    w(f\"{{i}}\\n\")\n")
}

/// Where the stream first departed from `0, 1, 2, …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Break {
    /// Numbered lines received before it.
    at: u64,
    /// The number that was due.
    expected: u64,
    /// The number that came instead.
    got: u64,
}

/// What arrived, checked against the sequence `0..expected`.
#[derive(Debug, Clone)]
pub struct Check {
    pub expected: u64,
    seen: Vec<bool>,
    max: Option<u64>,
    /// Length of the in-order prefix received: the number due next.
    next: u64,
    first_break: Option<Break>,
    /// Numbered lines received (duplicates included).
    pub received: u64,
    /// Numbers that arrived after a higher one.
    pub reordered: u64,
    pub duplicates: u64,
    /// Lines that are not a number below `expected`.
    pub other: u64,
    pub other_sample: Vec<String>,
    partial: Vec<u8>,
}

impl Check {
    pub fn new(expected: u64) -> Check {
        Check {
            expected,
            seen: vec![false; usize::try_from(expected).unwrap_or(usize::MAX)],
            max: None,
            next: 0,
            first_break: None,
            received: 0,
            reordered: 0,
            duplicates: 0,
            other: 0,
            other_sample: Vec::new(),
            partial: Vec::new(),
        }
    }

    /// Feeds a chunk of the stream; a line may be split across chunks.
    pub fn feed(&mut self, data: &[u8]) {
        let Some(last_newline) = data.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(data);
            return;
        };
        let (whole, rest) = data.split_at(last_newline + 1);
        let mut lines = whole[..whole.len() - 1].split(|&b| b == b'\n');
        if !self.partial.is_empty() {
            let mut first = std::mem::take(&mut self.partial);
            first.extend_from_slice(lines.next().unwrap_or_default());
            self.line(&first);
        }
        for line in lines {
            self.line(line);
        }
        self.partial.extend_from_slice(rest);
    }

    /// Accounts for a last line without a newline.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let number = std::str::from_utf8(line).ok().and_then(|s| s.parse::<u64>().ok()).filter(|&n| n < self.expected);
        let Some(n) = number else {
            self.other += 1;
            if self.other_sample.len() < SHOW_OTHER {
                self.other_sample.push(String::from_utf8_lossy(line).chars().take(200).collect());
            }
            return;
        };
        if self.first_break.is_none() {
            if n == self.next {
                self.next += 1;
            } else {
                self.first_break = Some(Break { at: self.received, expected: self.next, got: n });
            }
        }
        self.received += 1;
        let slot = &mut self.seen[n as usize];
        if *slot {
            self.duplicates += 1;
        }
        *slot = true;
        if self.max.is_some_and(|m| n < m) {
            self.reordered += 1;
        }
        self.max = Some(self.max.map_or(n, |m| m.max(n)));
    }

    /// Numbers of `0..expected` that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected - self.seen.iter().filter(|&&s| s).count() as u64
    }

    /// The first departure from `0, 1, …, expected − 1`, in words; `None` if the stream
    /// was exactly that. Call after [`Check::finish`].
    pub fn first_problem(&self) -> Option<String> {
        let after = |n: u64| if n == 0 { "at the start".to_string() } else { format!("after line {}", n - 1) };
        match self.first_break {
            Some(Break { at, expected, got }) if got > expected => {
                let what = if self.seen[expected as usize] { "out of order" } else { "lost" };
                Some(format!(
                    "line {expected} {what}: line {got} came {} (numbered line #{} of the stream)",
                    after(expected),
                    at + 1
                ))
            }
            Some(Break { at, expected, got }) => Some(format!(
                "line {got} duplicated: it came again {} (numbered line #{} of the stream)",
                after(expected),
                at + 1
            )),
            None if self.next < self.expected => {
                Some(format!("lines {}..={} lost: the stream ended {}", self.next, self.expected - 1, after(self.next)))
            }
            None => None,
        }
    }

    /// Fails naming the first line lost, duplicated or out of order in `stream`.
    pub fn verify(&self, stream: &str) -> anyhow::Result<()> {
        match self.first_problem() {
            None => Ok(()),
            Some(problem) => anyhow::bail!(
                "logs: {problem} ({stream}: {} lines printed, {} numbered lines received, {} lost, {} out of order, \
                 {} duplicated)",
                self.expected,
                self.received,
                self.lost(),
                self.reordered,
                self.duplicates
            ),
        }
    }
}

pub struct Report {
    pub check: Check,
    pub bytes: u64,
    pub chunks: u64,
    /// First byte received → end of the stream.
    pub streaming: Duration,
    /// RUNNING seen → stream opened (the call answered).
    pub open: Duration,
    /// RUNNING seen → first byte.
    pub to_first_byte: Duration,
    /// RUNNING → COMPLETE IN PROGRESS in the history: the container ran and the agent
    /// stored all of its output (it reports UPLOADING after its log pump ended).
    pub container_ms: Option<f64>,
    /// The engine's logging driver and options for the container.
    pub engine_log: String,
    /// The stored log read again once the training completed (`follow = false`): the
    /// agent → scheduler → client path alone, without the engine.
    pub replay: Check,
    /// Lines of the replay over the time from its call to its end.
    pub replay_lines_per_s: f64,
}

impl Report {
    pub fn lines_per_s(&self) -> f64 {
        self.check.received as f64 / self.streaming.as_secs_f64().max(1e-9)
    }

    pub fn bench_line(&self) -> String {
        format!(
            "bench: logs lines_per_s={:.0} lost={} reordered={} duplicated={} replay_lost={} replay_reordered={}",
            self.lines_per_s(),
            self.check.lost(),
            self.check.reordered,
            self.check.duplicates,
            self.replay.lost(),
            self.replay.reordered
        )
    }

    /// Fails naming the first line lost, duplicated or out of order, live or in the replay.
    pub fn verify(&self) -> anyhow::Result<()> {
        self.check.verify("live stream (follow)")?;
        self.replay.verify("replay after COMPLETE")
    }

    fn print(&self) {
        let c = &self.check;
        let rows = [
            ("lines printed", c.expected.to_string()),
            ("numbered lines received", c.received.to_string()),
            ("lost", c.lost().to_string()),
            ("reordered", c.reordered.to_string()),
            ("duplicates", c.duplicates.to_string()),
            ("other lines", c.other.to_string()),
            ("bytes / chunks", format!("{} / {}", self.bytes, self.chunks)),
            ("RUNNING seen → stream open", format!("{:.1} ms", ms(self.open))),
            ("RUNNING seen → first byte", format!("{:.1} ms", ms(self.to_first_byte))),
            ("first byte → end of stream", format!("{:.1} ms", ms(self.streaming))),
            (
                "RUNNING → COMPLETE IN PROGRESS (ran + stored)",
                self.container_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
            ),
            (
                "lines printed / that time",
                self.container_ms.map_or("-".into(), |v| format!("{:.0}", c.expected as f64 / (v / 1000.0).max(1e-3))),
            ),
            ("lines/s (target ≥ 100,000)", format!("{:.0}", self.lines_per_s())),
            ("replay after COMPLETE (follow=false): lines", self.replay.received.to_string()),
            ("replay lines/s (call → end)", format!("{:.0}", self.replay_lines_per_s)),
        ];
        for (what, value) in rows {
            println!("{what:<46} {value:>14}");
        }
        println!("engine log driver of the container: {}", self.engine_log);
        if c.lost() > 0 && self.engine_log.contains("max-size") {
            println!(
                "note: the engine rotates the container's log file (max-size); `docker logs --follow` loses lines \
                 across rotations, so lines lost there never reach the agent"
            );
        }
        for line in &c.other_sample {
            println!("  other: {line:?}");
        }
        for (stream, check) in [("live stream", c), ("replay", &self.replay)] {
            let verdict = check.first_problem().unwrap_or_else(|| "every line once, in order".into());
            println!("{stream}: {verdict}");
        }
    }
}

pub async fn run(lines: u64) -> anyhow::Result<Report> {
    anyhow::ensure!(lines > 0, "--lines must be at least 1");
    with_node("", async |kit| {
        println!("one agent, one training printing {lines} numbered lines, followed with TrainingLogs(follow, tail 0)");
        let report = follow(kit, lines).await?;
        report.print();
        Ok(report)
    })
    .await
}

/// One `TrainingLogs` stream read to its end.
struct Received {
    check: Check,
    first: Instant,
    end: Instant,
    bytes: u64,
    chunks: u64,
}

async fn read_to_end(mut stream: tonic::Streaming<TrainingLogsChunk>, expected: u64) -> anyhow::Result<Received> {
    let deadline = tokio::time::Instant::now() + STREAM_WITHIN;
    let mut check = Check::new(expected);
    let (mut first, mut bytes, mut chunks) = (None, 0u64, 0u64);
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(chunk))) => {
                first.get_or_insert_with(Instant::now);
                bytes += chunk.data.len() as u64;
                chunks += 1;
                check.feed(&chunk.data);
            }
            Ok(Ok(None)) => break,
            Ok(Err(status)) => anyhow::bail!(
                "log stream failed after {} lines: {status} (\"agent went away\": the agent's session with the \
                 scheduler closed; rerun with GANTRY_BENCH_LOG=info,h2=debug to see why)",
                check.received
            ),
            Err(_) => anyhow::bail!("log stream still open after {STREAM_WITHIN:?} ({} lines)", check.received),
        }
    }
    let end = Instant::now();
    check.finish();
    let first = first.ok_or_else(|| anyhow::anyhow!("the log stream ended without any data"))?;
    Ok(Received { check, first, end, bytes, chunks })
}

fn logs_request(follow: bool) -> TrainingLogsRequest {
    TrainingLogsRequest { project: TEAM_A.into(), name: NAME.into(), rank: 0, follow, tail_lines: 0 }
}

async fn follow(kit: &NodeKit, lines: u64) -> anyhow::Result<Report> {
    let algo = kit.algorithm("printer", &[("train.py", &script(lines))])?;
    kit.create(kit.training(NAME, &algo, "train.py")).await?;
    let (running, _) = poll_until_running(kit, NAME, API_POLL, START_WITHIN).await?;
    let stream = kit.admin().trainings.training_logs(logs_request(true)).await?.into_inner();
    let open = running.elapsed();
    // Inspected while the stream runs: the agent removes the container once it ended.
    let (live, engine_log) = tokio::join!(read_to_end(stream, lines), engine_log_config(kit));
    let live = live?;
    let t = kit.wait_status(NAME, "COMPLETE", START_WITHIN).await?;
    let container_ms = match (entered(&t, "RUNNING"), entered(&t, "COMPLETE IN PROGRESS")) {
        (Some(a), Some(b)) => Some(b as f64 - a as f64),
        _ => None,
    };
    let issued = Instant::now();
    let stream = kit.admin().trainings.training_logs(logs_request(false)).await?.into_inner();
    let replay = read_to_end(stream, lines).await?;
    let replay_lines_per_s = replay.check.received as f64 / (replay.end - issued).as_secs_f64().max(1e-9);
    Ok(Report {
        streaming: live.end - live.first,
        to_first_byte: live.first - running,
        bytes: live.bytes,
        chunks: live.chunks,
        check: live.check,
        open,
        container_ms,
        engine_log,
        replay: replay.check,
        replay_lines_per_s,
    })
}

/// The training container's logging driver and options as the engine applied them
/// (rotation there is upstream of everything Gantry does with the output).
async fn engine_log_config(kit: &NodeKit) -> String {
    let prefix = format!("gantry-{}-", kit.cluster);
    let probe = async {
        let containers = kit.containers().await?;
        let c = containers.iter().find(|c| c.name.starts_with(&prefix)).context("no training container")?;
        let inspect = kit.docker.client().inspect_container(&c.name, None).await?;
        let log = inspect.host_config.and_then(|h| h.log_config).context("no log config")?;
        let mut options: Vec<String> =
            log.config.unwrap_or_default().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        options.sort();
        anyhow::Ok(format!("{} {}", log.typ.unwrap_or_default(), options.join(" ")))
    };
    probe.await.unwrap_or_else(|e| format!("unknown ({e:#})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_count_once() {
        let mut c = Check::new(4);
        c.feed(b"0\n1");
        c.feed(b"\n2\n");
        c.feed(b"3");
        c.finish();
        assert_eq!((c.received, c.lost(), c.reordered, c.duplicates, c.other), (4, 0, 0, 0, 0));
    }

    #[test]
    fn gaps_reorders_duplicates_and_strangers_are_told_apart() {
        let mut c = Check::new(5);
        c.feed(b"0\n2\n1\n2\nhello\n9\n");
        assert_eq!(c.lost(), 2, "3 and 4");
        assert_eq!(c.reordered, 1, "1 after 2 (the second 2 is a duplicate, not below the highest)");
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.other, 2);
    }

    fn checked(expected: u64, stream: &[u8]) -> Check {
        let mut c = Check::new(expected);
        c.feed(stream);
        c.finish();
        c
    }

    #[test]
    fn an_exact_sequence_passes() {
        let c = checked(3, b"0\n1\n2\n");
        assert_eq!(c.first_problem(), None);
        assert!(c.verify("live").is_ok());
    }

    #[test]
    fn a_lost_line_fails_naming_it() {
        let c = checked(5, b"0\n1\n3\n4\n");
        let err = c.verify("live").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2 lost: line 3 came after line 1"), "{err}");
        assert!(err.contains("1 lost"), "{err}");
    }

    #[test]
    fn a_reordered_line_fails_naming_it() {
        let c = checked(4, b"0\n2\n1\n3\n");
        assert_eq!(c.lost(), 0, "nothing lost, only reordered");
        let problem = c.first_problem().unwrap_or_default();
        assert!(problem.contains("line 1 out of order: line 2 came after line 0"), "{problem}");
        assert!(c.verify("live").is_err());
    }

    #[test]
    fn a_duplicate_or_a_truncated_stream_fails() {
        let dup = checked(3, b"0\n1\n1\n2\n").first_problem().unwrap_or_default();
        assert!(dup.contains("line 1 duplicated: it came again after line 1"), "{dup}");
        let cut = checked(5, b"0\n1\n2\n").first_problem().unwrap_or_default();
        assert!(cut.contains("lines 3..=4 lost: the stream ended after line 2"), "{cut}");
        let nothing = checked(2, b"").first_problem().unwrap_or_default();
        assert!(nothing.contains("lines 0..=1 lost: the stream ended at the start"), "{nothing}");
    }
}
