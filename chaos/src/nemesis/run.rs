//! One nemesis run, start to verdict:
//!
//! ```text
//!   cluster (a namespace per replica) + agents (a namespace each, fake GPUs, real Docker)
//!   ├─ clients ×N ── experiments / instance types ──▶ Journal
//!   ├─ training client ── GPU trainings ───────────▶ Journal
//!   ├─ container watcher ── docker ps every 200 ms ─▶ Samples
//!   └─ fault timelines (replicas, clocks, agents) from the seed
//!   then: heal, converge, final linearizable reads, wait for the trainings, check
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gantry_proto::v1::{self as pb, ReadOptions};
use serde::Serialize;
use tokio::time::Instant;

use super::check::{self, FinalTrainings, Findings, TERMINAL};
use super::clients::{self, ClientPlan, PROJECT, REGISTER_PREFIX};
use super::containers::{self, Samples};
use super::inject;
use super::record::{self, Action, Journal, Outcome, Record};
use super::schedule::{self, Fault, FaultKind, ScheduleSpec};
use super::trainings::{self, TrainingStorage};
use crate::{AgentOptions, AgentProcess, ClusterOptions, JOIN_TOKEN, ProcessCluster};

/// What a run does.
#[derive(Debug, Clone)]
pub struct NemesisOptions {
    pub seed: u64,
    pub run_for: Duration,
    pub kinds: Vec<FaultKind>,
    pub replicas: usize,
    /// Agents with two fake GPUs each; 0 runs no trainings.
    pub agents: usize,
    pub plan: ClientPlan,
    /// Pace of the training client.
    pub training_every: Duration,
    pub hold: (Duration, Duration),
    pub gap: (Duration, Duration),
    /// How long the cluster may take, after the faults, to converge and finish every
    /// training.
    pub settle: Duration,
}

impl NemesisOptions {
    /// A run of `run_for` with every fault kind.
    pub fn new(seed: u64, run_for: Duration) -> NemesisOptions {
        NemesisOptions {
            seed,
            run_for,
            kinds: FaultKind::ALL.to_vec(),
            replicas: 3,
            agents: 2,
            plan: ClientPlan::default(),
            training_every: Duration::from_millis(1500),
            hold: (Duration::from_secs(2), Duration::from_secs(6)),
            gap: (Duration::from_secs(1), Duration::from_secs(4)),
            settle: Duration::from_secs(120),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub seed: u64,
    pub ops: usize,
    pub faults: Vec<String>,
    pub findings: Findings,
    /// Where the journal was written (kept when the run found anomalies).
    pub history: PathBuf,
    pub container_samples: usize,
}

impl RunReport {
    pub fn anomalies(&self) -> usize {
        self.findings.anomalies.len()
    }
}

/// Runs one seeded nemesis run and checks it. An error is a run that could not be
/// carried out (setup failed); anomalies are in the report.
pub async fn run(options: &NemesisOptions) -> anyhow::Result<RunReport> {
    let kinds: BTreeSet<FaultKind> = options.kinds.iter().copied().collect();
    let cluster = Arc::new(
        ProcessCluster::start(ClusterOptions {
            replicas: options.replicas,
            seed: Some(options.seed),
            namespaces: true,
            agent_hosts: options.agents,
            fake_clocks: kinds.contains(&FaultKind::ClockJump),
            small_disk_mib: kinds.contains(&FaultKind::FullDisk).then_some(64),
            ..ClusterOptions::default()
        })
        .await?,
    );
    let result = run_on(&cluster, options).await;
    if result.as_ref().map_or(true, |r| r.anomalies() > 0) {
        cluster.mark_failed();
    }
    result
}

async fn run_on(cluster: &Arc<ProcessCluster>, options: &NemesisOptions) -> anyhow::Result<RunReport> {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let net = cluster.network().context("nemesis clusters run in namespaces")?;
    let storage = TrainingStorage::prepare(&cluster.base_dir().join("storage"))?;
    retry(Duration::from_secs(30), || {
        let mut admin = cluster.client(leader);
        let storage = &storage;
        async move { trainings::prepare_catalog(&mut admin, storage).await }
    })
    .await
    .context("preparing the catalog")?;

    let label = format!("nem{:013x}", rand::random::<u64>() >> 12);
    let schedulers: Vec<String> = (0..cluster.len()).map(|i| cluster.api_url(i)).collect();
    // Declared before the agents so it drops after them: no agent is left to start a
    // container once the cleanup has run.
    let _cleanup = ContainerCleanup(label.clone());
    let mut agents = Vec::new();
    for k in 0..options.agents {
        let node = format!("node-{k}");
        agents.push(AgentProcess::start(&AgentOptions {
            node_name: node.clone(),
            cluster: label.clone(),
            schedulers: schedulers.clone(),
            join_token: JOIN_TOKEN.into(),
            ca_cert: cluster.tls_files().ca_cert.clone(),
            extra_toml: trainings::fake_gpu_toml(&node, 2),
            heartbeat_interval: Duration::from_millis(500),
            env: Vec::new(),
            netns: Some(net.namespace(cluster.len() + k)),
        })?);
    }
    wait_nodes_ready(cluster, options.agents).await.with_context(|| agent_logs(&agents))?;

    let journal = Journal::new();
    let replicas: Vec<_> = (0..cluster.len()).map(|i| cluster.client(i)).collect();
    let until = Instant::now() + options.run_for;
    let mut tasks = Vec::new();
    for c in 0..options.plan.clients {
        let (plan, replicas, journal) = (options.plan.clone(), replicas.clone(), journal.clone());
        tasks.push(tokio::spawn(clients::run_client(c, options.seed, plan, replicas, journal, until)));
    }
    if options.agents > 0 {
        let (replicas, journal, every) = (replicas.clone(), journal.clone(), options.training_every);
        let storage = TrainingStorage { root: storage.root.clone() };
        tasks.push(tokio::spawn(trainings::run_training_client(
            options.seed,
            storage,
            replicas,
            journal,
            every,
            until,
        )));
    }
    let (stop_watch, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = {
        let j = journal.clone();
        tokio::spawn(containers::watch(label.clone(), Duration::from_millis(200), stop_rx, move || j.now_ns()))
    };

    let faults = schedule::draw(
        options.seed,
        &ScheduleSpec {
            kinds: options.kinds.clone(),
            replicas: cluster.len(),
            agents: options.agents,
            run_for: options.run_for,
            quiet_start: Duration::from_secs(2),
            hold: options.hold,
            gap: options.gap,
        },
    );
    let agents = Arc::new(agents);
    let done = run_faults(cluster, &agents, faults).await;
    for t in tasks {
        let _ = t.await;
    }

    let mut findings = Findings::default();
    let mut fault_log = Vec::new();
    for d in done {
        match d {
            Ok(text) => fault_log.push(text),
            Err(e) => findings.anomalies.push(format!("fault: {e:#}")),
        }
    }
    inject::heal_everything(cluster, &agents).await.context("healing after the faults")?;
    let settle_until = Instant::now() + options.settle;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    cluster.wait_converged(Duration::from_secs(60)).await?;
    final_reads(cluster, leader, options, &journal).await?;
    let unfinished = wait_trainings_finished(cluster, leader, settle_until).await;
    if let Err(e) = &unfinished {
        findings.anomalies.push(format!("trainings: {e:#}"));
    }
    cluster.wait_converged(Duration::from_secs(60)).await?;
    let _ = stop_watch.send(true);
    let samples: Samples = watcher.await.unwrap_or_default();

    let records = journal.records();
    check::check_linearizable(&records, &mut findings);
    let mut finals = Vec::new();
    for i in 0..cluster.len() {
        finals.push(final_trainings(cluster, i).await?);
    }
    check::check_trainings(&records, &finals, &mut findings);
    let known: BTreeSet<String> =
        finals.iter().flat_map(|f| f.by_name.values().flatten().map(|(id, _)| id.clone())).collect();
    let bookings = containers::double_bookings(&samples);
    findings.double_booked = bookings.len();
    for b in bookings.iter().take(20) {
        findings.anomalies.push(format!("GPU {} double-booked at {} ns by {:?}", b.gpu, b.at_ns, b.containers));
    }
    findings.anomalies.extend(containers::ownership_violations(&samples, &known));
    if let Err(e) = cluster.check_no_panics() {
        findings.anomalies.push(format!("{e:#}"));
    }

    let history = write_history(options.seed, &records, &fault_log)?;
    Ok(RunReport {
        seed: options.seed,
        ops: records.len(),
        faults: fault_log,
        findings,
        history,
        container_samples: samples.samples.len(),
    })
}

/// The three timelines side by side; each runs its faults in order at their offsets.
async fn run_faults(
    cluster: &Arc<ProcessCluster>,
    agents: &Arc<Vec<AgentProcess>>,
    faults: Vec<Fault>,
) -> Vec<anyhow::Result<String>> {
    let start = Instant::now();
    let mut lines: Vec<Vec<Fault>> = vec![Vec::new(); 3];
    for f in faults {
        let line = match f.kind {
            FaultKind::ClockJump => 1,
            FaultKind::AgentLoss => 2,
            _ => 0,
        };
        lines[line].push(f);
    }
    let mut handles = Vec::new();
    for line in lines {
        let (cluster, agents) = (cluster.clone(), agents.clone());
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for f in line {
                tokio::time::sleep_until(start + f.at).await;
                let r = inject::carry_out(&cluster, &agents, &f).await;
                out.push(r.with_context(|| format!("{} at {:?}", f.kind.name(), f.at)));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        match h.await {
            Ok(out) => all.extend(out),
            Err(e) => all.push(Err(anyhow::anyhow!("a fault timeline panicked: {e}"))),
        }
    }
    all
}

/// One linearizable read of every key from the leader, journaled like any other read:
/// an acknowledged write that the cluster lost shows up here at the latest.
async fn final_reads(
    cluster: &ProcessCluster,
    leader: usize,
    options: &NemesisOptions,
    journal: &Journal,
) -> anyhow::Result<()> {
    let read = Some(ReadOptions { stale: false });
    for k in 0..options.plan.experiment_keys {
        let key = format!("exp-{k}");
        let call_ns = journal.now_ns();
        let found = retry(Duration::from_secs(30), || {
            let mut api = cluster.client(leader);
            let req = pb::GetExperimentRequest { project: PROJECT.into(), name: key.clone(), read };
            async move {
                match api.experiments.get_experiment(req).await {
                    Ok(_) => Ok(true),
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
                    Err(s) => Err(s.into()),
                }
            }
        })
        .await?;
        let outcome = if found { Outcome::Ok } else { Outcome::Failed { code: "NotFound".into() } };
        let ret_ns = Some(journal.now_ns());
        journal.push(Record {
            id: 0,
            client: usize::MAX - 1,
            replica: leader,
            key,
            action: Action::GetExperiment,
            stale: false,
            call_ns,
            ret_ns,
            outcome,
        });
    }
    for k in 0..options.plan.register_keys {
        let key = format!("{REGISTER_PREFIX}{k}");
        let call_ns = journal.now_ns();
        let list = retry(Duration::from_secs(30), || {
            let mut api = cluster.client(leader);
            async move { Ok(api.catalog.list_instance_types(pb::ListInstanceTypesRequest { read }).await?.into_inner()) }
        })
        .await?;
        let value = list.instance_types.iter().find(|t| t.name == key).map(|t| t.memory_mib);
        let ret_ns = Some(journal.now_ns());
        journal.push(Record {
            id: 0,
            client: usize::MAX - 1,
            replica: leader,
            key,
            action: Action::ReadRegister,
            stale: false,
            call_ns,
            ret_ns,
            outcome: Outcome::Read { value },
        });
    }
    Ok(())
}

async fn list_trainings(cluster: &ProcessCluster, i: usize, stale: bool) -> anyhow::Result<Vec<pb::Training>> {
    let mut api = cluster.client(i);
    let req = pb::ListTrainingsRequest {
        project: PROJECT.into(),
        experiment: String::new(),
        read: Some(ReadOptions { stale }),
    };
    Ok(api.trainings.list_trainings(req).await?.into_inner().trainings)
}

/// Waits until every training is in a terminal status; the error names the others.
async fn wait_trainings_finished(cluster: &ProcessCluster, leader: usize, until: Instant) -> anyhow::Result<()> {
    loop {
        let pending = match list_trainings(cluster, leader, false).await {
            Ok(list) => list
                .into_iter()
                .filter(|t| !TERMINAL.contains(&t.status.as_str()))
                .map(|t| format!("{} ({})", t.spec.map(|s| s.name).unwrap_or_default(), t.status))
                .collect(),
            Err(e) => vec![format!("cannot list: {e:#}")],
        };
        if pending.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < until, "not finished in time: {}", pending.join(", "));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Replica `i`'s own view (a stale read: what it holds, after convergence).
async fn final_trainings(cluster: &ProcessCluster, i: usize) -> anyhow::Result<FinalTrainings> {
    let mut f = FinalTrainings { replica: i, ..FinalTrainings::default() };
    for t in list_trainings(cluster, i, true).await? {
        let name = t.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        f.by_name.entry(name).or_default().push((t.id, t.status));
    }
    Ok(f)
}

async fn wait_nodes_ready(cluster: &ProcessCluster, n: usize) -> anyhow::Result<()> {
    retry(Duration::from_secs(90), || {
        let mut api = cluster.client(0);
        async move {
            let nodes = api.nodes.list_nodes(pb::ListNodesRequest { read: None }).await?.into_inner().nodes;
            let ready = nodes.iter().filter(|n| n.status == "READY").count();
            anyhow::ensure!(ready >= n, "{ready} of {n} nodes READY");
            Ok(())
        }
    })
    .await
}

fn agent_logs(agents: &[AgentProcess]) -> String {
    agents.iter().map(|a| a.log()).collect::<Vec<_>>().join("\n----\n")
}

/// Retries `f` until it succeeds or `within` has passed (then its last error).
async fn retry<T, F, Fut>(within: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The journal and the faults, under `$TMPDIR/gantry-nemesis/`: replayable evidence.
fn write_history(seed: u64, records: &[Record], faults: &[String]) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("gantry-nemesis");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("seed-{seed}-{}.jsonl", std::process::id()));
    record::write_jsonl(&path, records)?;
    std::fs::write(path.with_extension("faults.txt"), faults.join("\n"))?;
    Ok(path)
}

/// Removes the run's containers and networks however the run ends.
struct ContainerCleanup(String);

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        let filter = format!("label=org.gantry.cluster={}", self.0);
        let ids = std::process::Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
        if let Ok(out) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker").args(["rm", "-f"]).args(&ids).output();
            }
        }
        let _ = std::process::Command::new("docker").args(["network", "prune", "-f", "--filter", &filter]).output();
    }
}
