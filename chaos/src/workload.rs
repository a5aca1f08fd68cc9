//! A create workload: concurrent clients sending `CreateExperiment` to random replicas,
//! each with its own idempotency key, retrying unknown outcomes on another replica with
//! the same key, recording every attempt.
//!
//! ```text
//!   next op index (shared counter) ─▶ task k: wait for the op's slot (start + index × pace)
//!        ─▶ send to a random target ─▶ Ok / Failed: record, done
//!                                   └▶ Unknown: back off, another replica, same request id
//!                                      (until the op's deadline or the workload's)
//! ```
//!
//! Everything is bounded: the number of ops, each op's retry budget, and the workload's
//! own deadline after which no op starts and no op retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gantry_proto::v1::CreateExperimentRequest;
use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cluster::ProcessCluster;
use crate::history::{OpKind, OpResult, Recorder};

/// Attempts per operation, whatever the deadline says.
const MAX_ATTEMPTS: usize = 64;

/// What to send. Names are `{name_prefix}{index:05}` for `index` in `first..first + count`.
#[derive(Debug, Clone)]
pub struct CreateWorkload {
    pub project: String,
    pub name_prefix: String,
    pub first: usize,
    pub count: usize,
    /// Client tasks sending concurrently.
    pub concurrency: usize,
    /// The `k`-th op of this workload is not sent before `start + k × pace` (zero: as
    /// fast as the clients go). Spreads the ops over time so that faults land mid-stream.
    pub pace: Duration,
    /// How long one operation keeps retrying unknown outcomes.
    pub op_deadline: Duration,
    /// Nothing starts or retries after this (from the start of the workload).
    pub deadline: Duration,
    /// Replicas first attempts go to (at random); empty means all. Retries go to any
    /// replica other than the previous attempt's.
    pub targets: Vec<usize>,
    /// The run's seed; each client task draws from its own stream of it.
    pub seed: u64,
}

impl CreateWorkload {
    /// `count` creates in `project`, 16 clients, no pacing, 20 s per op, 60 s overall.
    pub fn new(project: &str, count: usize, seed: u64) -> CreateWorkload {
        CreateWorkload {
            project: project.into(),
            name_prefix: "exp-".into(),
            first: 0,
            count,
            concurrency: 16,
            pace: Duration::ZERO,
            op_deadline: Duration::from_secs(20),
            deadline: Duration::from_secs(60),
            targets: Vec::new(),
            seed,
        }
    }

    /// The experiment name of op `index`.
    pub fn name(&self, index: usize) -> String {
        format!("{}{index:05}", self.name_prefix)
    }

    /// Starts the client tasks; operations are recorded into `recorder`.
    pub fn spawn(self, cluster: Arc<ProcessCluster>, recorder: Recorder) -> RunningWorkload {
        let (acked_tx, acked_rx) = watch::channel(0usize);
        let acked_tx = Arc::new(acked_tx);
        let next = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(self);
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for task in 0..shared.concurrency.max(1) {
            let (shared, cluster, recorder, next, acked_tx) =
                (shared.clone(), cluster.clone(), recorder.clone(), next.clone(), acked_tx.clone());
            tasks.spawn(async move { client_task(task, &shared, &cluster, &recorder, &next, &acked_tx, start).await });
        }
        RunningWorkload { tasks, progress: Progress { acked: acked_rx } }
    }
}

/// Acknowledged-op count of a running workload, for fault schedules to wait on.
#[derive(Clone)]
pub struct Progress {
    acked: watch::Receiver<usize>,
}

impl Progress {
    pub fn acked(&self) -> usize {
        *self.acked.borrow()
    }

    /// Waits until at least `n` ops were acknowledged; fails after `within` or when the
    /// workload ended first.
    pub async fn wait_acked(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let mut rx = self.acked.clone();
        match tokio::time::timeout(within, rx.wait_for(|&a| a >= n)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => {
                anyhow::bail!("the workload ended with {} acknowledged ops, before reaching {n}", self.acked())
            }
            Err(_) => anyhow::bail!("only {} ops acknowledged after {within:?}, waiting for {n}", self.acked()),
        }
    }
}

pub struct RunningWorkload {
    tasks: JoinSet<()>,
    progress: Progress,
}

impl RunningWorkload {
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Waits for every client task (each is bounded by the workload's deadline).
    pub async fn join(mut self) -> anyhow::Result<()> {
        while let Some(r) = self.tasks.join_next().await {
            r.map_err(|e| anyhow::anyhow!("a workload client task failed: {e}"))?;
        }
        Ok(())
    }
}

async fn client_task(
    task: usize,
    w: &CreateWorkload,
    cluster: &ProcessCluster,
    recorder: &Recorder,
    next: &AtomicUsize,
    acked: &watch::Sender<usize>,
    start: Instant,
) {
    let mut rng = crate::seed::rng(w.seed, task as u64 + 1);
    let targets: Vec<usize> = if w.targets.is_empty() { (0..cluster.len()).collect() } else { w.targets.clone() };
    let workload_deadline = start + w.deadline;
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= w.count {
            return;
        }
        let slot = start + w.pace * u32::try_from(k).unwrap_or(u32::MAX);
        if slot >= workload_deadline {
            return;
        }
        tokio::time::sleep_until(slot).await;

        let index = w.first + k;
        let name = w.name(index);
        let request_id = format!("chaos-{:016x}-{}-{index}", w.seed, w.project);
        let mut op = recorder.invoke(OpKind::CreateExperiment, name.clone(), request_id.clone());
        let op_deadline = (Instant::now() + w.op_deadline).min(workload_deadline);
        let mut replica = targets[rng.random_range(0..targets.len())];
        for attempt in 0..MAX_ATTEMPTS {
            let sent = std::time::Instant::now();
            let request = CreateExperimentRequest {
                project: w.project.clone(),
                name: name.clone(),
                request_id: request_id.clone(),
                ..Default::default()
            };
            let result = match cluster.client(replica).experiments.create_experiment(request).await {
                Ok(_) => OpResult::Ok,
                Err(status) => OpResult::from_status(&status),
            };
            op.attempt(replica, sent, result.clone());
            if !result.is_unknown() {
                break;
            }
            let backoff = Duration::from_millis(20 << attempt.min(4));
            if Instant::now() + backoff >= op_deadline {
                break;
            }
            tokio::time::sleep(backoff).await;
            if cluster.len() > 1 {
                let others: Vec<usize> = (0..cluster.len()).filter(|&r| r != replica).collect();
                replica = others[rng.random_range(0..others.len())];
            }
        }
        if op.last_result().is_some_and(OpResult::is_ok) {
            acked.send_modify(|n| *n += 1);
        }
        recorder.complete(op);
    }
}
