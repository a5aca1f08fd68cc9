//! `raft_loaded`: replicated write throughput of a Gantry cluster whose state already
//! holds many workloads, against a fresh cluster with an empty state.
//!
//! ```text
//!   cluster A (empty) ─────────────────────────────▶ bench_writes(clients, ops) ─▶ empty
//!   cluster B ─▶ load N trainings (pending) ─▶ settle ─▶ bench_writes(clients, ops) ─▶ loaded
//! ```
//!
//! Both runs use the same operation as the `raft` benchmark (one `CreateExperiment` per
//! commit, see [`crate::gantry`]), the same clients and replica count. A write that
//! scans every workload (in `apply`, in a controller that re-plans after each apply, in
//! the agent streams) shows up as a loaded/empty ratio well below 1.
//!
//! The loaded trainings are real `CreateTraining`s through the API. The cluster has no
//! nodes, so they stay pending (with a pending reason): exactly the workloads the
//! placement controller must consider on every change.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_proto::v1::{self as pb, CreateTrainingRequest, GetTrainingRequest, SetStorageGrantsRequest};

use crate::gantry;
use crate::load::{LoadReport, run_closed_loop};

const PROJECT: &str = "loaded";
/// What the loading clients may take before the load is called too slow.
const LOAD_WITHIN: Duration = Duration::from_secs(300);
/// How long one create is retried before the load fails.
const CREATE_RETRY_WITHIN: Duration = Duration::from_secs(30);
/// Until every pending workload has its reason (the controller caught up).
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Options {
    pub replicas: usize,
    pub workloads: usize,
    pub clients: usize,
    pub ops: usize,
    pub max: Duration,
    /// `[raft] snapshot_every` of both clusters (the scheduler's default when `None`).
    pub snapshot_every: Option<u64>,
}

/// One measured run: the state's workload count and the write load on it.
pub struct Run {
    pub workloads: usize,
    pub writes: LoadReport,
}

pub struct Report {
    pub empty: Run,
    pub loaded: Run,
    /// How long creating the loaded workloads took.
    pub load_time: Duration,
}

impl Report {
    pub fn ratio(&self) -> f64 {
        self.loaded.writes.per_s / self.empty.writes.per_s.max(1.0)
    }

    pub fn print(&self, opts: &Options) {
        println!(
            "{} Gantry replicas on 127.0.0.1 (TLS, fsync), {} clients, one CreateExperiment per commit; \
             {} trainings loaded in {:.1} s",
            opts.replicas,
            opts.clients,
            self.loaded.workloads,
            self.load_time.as_secs_f64()
        );
        println!(
            "{:>9} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8}",
            "workloads", "ops", "errors", "elapsed_s", "commits/s", "p50_us", "p99_us"
        );
        for run in [&self.empty, &self.loaded] {
            let r = &run.writes;
            println!(
                "{:>9} {:>8} {:>7} {:>9.2} {:>10.0} {:>8} {:>8}",
                run.workloads,
                r.ops,
                r.errors,
                r.elapsed.as_secs_f64(),
                r.per_s,
                r.p50_us,
                r.p99_us
            );
        }
    }

    pub fn bench_lines(&self) -> [String; 2] {
        let line = |run: &Run| {
            format!(
                "bench: raft_loaded workloads={} ops_per_s={:.0} p50_us={} p99_us={} errors={}",
                run.workloads, run.writes.per_s, run.writes.p50_us, run.writes.p99_us, run.writes.errors
            )
        };
        [line(&self.empty), format!("{} ratio={:.2}", line(&self.loaded), self.ratio())]
    }
}

pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let empty = {
        let cluster = start(opts).await?;
        let writes = gantry::bench_writes(&cluster, "empty", opts.clients, opts.ops, opts.max).await?;
        cluster.shutdown().await?;
        Run { workloads: 0, writes }
    };
    let cluster = start(opts).await?;
    let started = Instant::now();
    load(&cluster, opts.workloads, opts.clients).await?;
    let load_time = started.elapsed();
    if opts.workloads > 0 {
        settle(&cluster, opts.workloads).await?;
    }
    let writes = gantry::bench_writes(&cluster, "loaded", opts.clients, opts.ops, opts.max).await?;
    cluster.shutdown().await?;
    Ok(Report { empty, loaded: Run { workloads: opts.workloads, writes }, load_time })
}

/// A cluster as [`gantry::start`] makes it, with the snapshot interval of `opts`.
async fn start(opts: &Options) -> anyhow::Result<ProcessCluster> {
    let mut options = ClusterOptions { replicas: opts.replicas, log_filter: "warn".into(), ..Default::default() };
    if let Some(every) = opts.snapshot_every {
        options.snapshot_every = every;
    }
    let cluster = ProcessCluster::start(options).await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    Ok(cluster)
}

fn training(i: usize) -> CreateTrainingRequest {
    let spec = pb::TrainingSpec {
        name: format!("t{i}"),
        experiment: "load".into(),
        create_experiment: true,
        algorithm_path: "file:///srv/loaded/algo".into(),
        entry_point: "train.py".into(),
        image: "python311".into(),
        instance_type: "cpu-small".into(),
        instance_count: 1,
        nproc_per_node: 1,
        output_path: format!("file:///srv/loaded/out/t{i}"),
        timeout_minutes: 60,
        use_log: true,
        ..Default::default()
    };
    CreateTrainingRequest { project: PROJECT.into(), spec: Some(spec), request_id: format!("load-{i}") }
}

/// Creates `n` trainings with `clients` concurrent writers; every one must succeed.
async fn load(cluster: &ProcessCluster, n: usize, clients: usize) -> anyhow::Result<()> {
    let grants = pb::StorageGrants { read: vec![], write: vec!["file:///srv/loaded".into()] };
    let request = SetStorageGrantsRequest { project: PROJECT.into(), grants: Some(grants) };
    cluster.client(0).projects.set_storage_grants(request).await.context("granting storage")?;
    let pool: std::sync::Arc<Vec<_>> = std::sync::Arc::new((0..cluster.len()).map(|i| cluster.client(i)).collect());
    let report = run_closed_loop(clients, n, LOAD_WITHIN, move |client, seq| {
        let mut trainings = pool[client % pool.len()].trainings.clone();
        async move {
            // Retried through a leader change or a timeout on a loaded machine; a retry
            // of a create that did commit is recognised by its request id.
            let deadline = Instant::now() + CREATE_RETRY_WITHIN;
            loop {
                match trainings.create_training(training(seq)).await {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() >= deadline => return Err(e.into()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    })
    .await;
    ensure!(
        report.ops == n as u64,
        "loaded {} of {n} trainings ({} errors) within {LOAD_WITHIN:?}",
        report.ops,
        report.errors
    );
    Ok(())
}

/// Waits until the placement controller has given the newest training its pending
/// reason: it has then caught up with the load and the measured run starts quiet.
async fn settle(cluster: &ProcessCluster, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    let mut trainings = cluster.client(0).trainings;
    loop {
        let mut explained = true;
        for i in [0, n / 2, n.saturating_sub(1)] {
            let req = GetTrainingRequest { project: PROJECT.into(), name: format!("t{i}"), read: None };
            let t = trainings.get_training(req).await?.into_inner();
            explained &= t.status_reason != "waiting for placement";
        }
        if explained {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the placement controller did not explain the pending trainings");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
