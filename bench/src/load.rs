//! Closed-loop load driver shared by every write benchmark (etcd, Gantry).
//!
//! ```text
//!   client 0 ──op(0, seq)──▶ await ──op(0, seq')──▶ …   ┐
//!   client 1 ──op(1, seq)──▶ await ──…                  ├─▶ merged histogram ─▶ LoadReport
//!   client N ──…                                        ┘
//! ```
//!
//! Each client has at most one op in flight ("closed loop"), so throughput is
//! what the system sustains at that concurrency, not an offered rate. Clients
//! draw sequence numbers from one shared counter: `seq` is unique across the
//! run (usable as a key) and the run stops after exactly `total_ops` issued ops
//! or at `max_duration`, whichever comes first.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Highest latency the histogram distinguishes; slower ops are clamped to it.
const MAX_TRACKED_US: u64 = 60_000_000;

/// Outcome of one closed-loop run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Ops that returned `Ok`.
    pub ops: u64,
    /// Ops that returned `Err`; not in the latency figures.
    pub errors: u64,
    /// Wall time from the first op issued to the last client finishing.
    pub elapsed: Duration,
    /// Successful ops per second of `elapsed`.
    pub per_s: f64,
    /// Median latency of successful ops, microseconds (0 when there were none).
    pub p50_us: u64,
    /// 99th percentile latency of successful ops, microseconds.
    pub p99_us: u64,
}

impl LoadReport {
    /// Machine-readable summary line, e.g. `bench: etcd clients=64 commits_per_s=…`.
    /// CI and comparison scripts grep for this exact shape.
    pub fn bench_line(&self, system: &str, clients: usize) -> String {
        format!(
            "bench: {system} clients={clients} commits_per_s={:.0} p50_us={} p99_us={}",
            self.per_s, self.p50_us, self.p99_us
        )
    }
}

/// Runs `clients` concurrent sequential issuers of `op(client_idx, seq)` until
/// `total_ops` ops were issued or `max_duration` elapsed.
///
/// An op still in flight at the deadline is abandoned and counted neither as an
/// op nor as an error, so a hung system cannot stretch the run.
pub async fn run_closed_loop<F, Fut>(clients: usize, total_ops: usize, max_duration: Duration, op: F) -> LoadReport
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next_seq = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + max_duration;

    // One task per client so clients spread over the runtime's worker threads.
    let tasks: Vec<_> = (0..clients)
        .map(|client_idx| {
            let op = op.clone();
            let next_seq = next_seq.clone();
            tokio::spawn(async move {
                let mut stats = ClientStats::new();
                while Instant::now() < deadline {
                    let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                    if seq >= total_ops {
                        break;
                    }
                    let issued = Instant::now();
                    match tokio::time::timeout_at(deadline, op(client_idx, seq)).await {
                        Ok(Ok(())) => stats.record_ok(issued.elapsed()),
                        Ok(Err(_)) => stats.errors += 1,
                        Err(_) => break,
                    }
                }
                stats
            })
        })
        .collect();

    let mut total = ClientStats::new();
    for task in tasks {
        match task.await {
            Ok(stats) => total.merge(&stats),
            // A panicking op is a bug in the benchmark; count its client's work as lost.
            Err(_) => total.errors += 1,
        }
    }
    total.into_report(start.elapsed())
}

/// Per-client tallies; merged once at the end so the hot loop takes no lock.
struct ClientStats {
    latency_us: Histogram<u64>,
    errors: u64,
}

impl ClientStats {
    fn new() -> Self {
        // Bounds are constants within hdrhistogram's limits: this cannot fail.
        let latency_us = Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("constant histogram bounds are valid");
        ClientStats { latency_us, errors: 0 }
    }

    fn record_ok(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.clamp(1, MAX_TRACKED_US));
    }

    fn merge(&mut self, other: &ClientStats) {
        // Same bounds on both sides, so `add` cannot fail; saturate rather than lose counts.
        let _ = self.latency_us.add(&other.latency_us);
        self.errors += other.errors;
    }

    fn into_report(self, elapsed: Duration) -> LoadReport {
        let ops = self.latency_us.len();
        let secs = elapsed.as_secs_f64();
        LoadReport {
            ops,
            errors: self.errors,
            elapsed,
            per_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            p50_us: self.latency_us.value_at_quantile(0.50),
            p99_us: self.latency_us.value_at_quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn issues_exactly_total_ops_with_unique_seqs() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let report = run_closed_loop(4, 100, Duration::from_secs(10), move |_, seq| {
            let sink = sink.clone();
            async move {
                sink.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(seq);
                Ok(())
            }
        })
        .await;
        assert_eq!(report.ops, 100);
        assert_eq!(report.errors, 0);
        let mut seqs = seen.lock().expect("not poisoned").clone();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn counts_errors_apart_from_ops() {
        let report = run_closed_loop(2, 10, Duration::from_secs(10), |_, seq| async move {
            anyhow::ensure!(seq % 2 == 0, "odd");
            Ok(())
        })
        .await;
        assert_eq!((report.ops, report.errors), (5, 5));
    }

    #[tokio::test]
    async fn deadline_bounds_a_hung_op() {
        let report = run_closed_loop(3, 1_000, Duration::from_millis(200), |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await;
        assert_eq!((report.ops, report.errors), (0, 0));
        assert!(report.elapsed < Duration::from_secs(5));
    }
}
