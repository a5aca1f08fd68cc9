//! What Gantry adds to starting a container: `CreateTraining` until the training's
//! container runs, minus a bare `create + start` of the same image through bollard,
//! both measured in each round of the same run.
//!
//! ```text
//!   round: bare create_and_start (timed to its return) ─► removed
//!          CreateTraining ─┬─ GetTraining every 2 ms until RUNNING ──────► gantry_ms
//!                          └─ docker list every 5 ms until it runs ──────► docker_seen_ms
//!          phases from the history (scheduler clock) and the container's
//!          Created / StartedAt (engine clock, same machine)
//! ```
//!
//! The training sleeps 2 s and completes; the next round starts once its container is
//! gone, so rounds never overlap. A first warm-up round (first experiment, cold page
//! cache) is shown but not counted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_agent::runtime::{ContainerRuntime, ContainerSpec, ContainerState, labels};
use gantry_tests::nodes::{NodeKit, PYTHON_IMAGE, wait_for};

use super::{docker_time_ms, entered, median, ms, percentile, poll_until_running, unix_ms, with_node};

/// How often the API is asked for the training's status.
const API_POLL: Duration = Duration::from_millis(2);
/// How often the engine is asked for the container (coarser: every list costs the
/// engine CPU that the start being measured needs).
const DOCKER_POLL: Duration = Duration::from_millis(5);
/// Limit of any one wait.
const WAIT: Duration = Duration::from_secs(60);
const SCRIPT: &str = "import time\ntime.sleep(2)\n";
/// The sandbox's `cpu-small` instance type, given to the bare container too.
const CPU_MILLIS: u64 = 1000;
const MEMORY_MIB: u64 = 2048;

/// One round: a bare start and a Gantry start. Times in ms; phases are `None` when a
/// timestamp was missing.
#[derive(Debug, Clone)]
pub struct Round {
    /// `create_and_start` until it returned.
    pub bare_ms: f64,
    /// The bare container's StartedAt − Created (engine clock).
    pub bare_engine_ms: Option<f64>,
    /// `CreateTraining` issued until `GetTraining` said RUNNING.
    pub gantry_ms: f64,
    /// `CreateTraining` issued until the engine listed the container as running.
    pub docker_seen_ms: f64,
    pub phases: Phases,
}

/// Where a Gantry start spends its time, from the history and the engine's timestamps.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    /// `CreateTraining` issued until it returned (committed).
    pub create_rpc: f64,
    /// CREATE REQUESTED → CREATE IN PROGRESS: placement.
    pub place: Option<f64>,
    /// CREATE IN PROGRESS → the engine's Created: assignment pushed to the agent,
    /// reconcile, prepare (directories), the agent's create request.
    pub to_created: Option<f64>,
    /// Created → StartedAt: the engine creating and starting the container.
    pub engine: Option<f64>,
    /// StartedAt → RUNNING: start returned to the agent, report, raft commit.
    pub report: Option<f64>,
    /// RUNNING (history) → first `GetTraining` answer saying so.
    pub seen: Option<f64>,
}

pub struct Report {
    pub rounds: Vec<Round>,
}

impl Report {
    fn column(&self, f: impl Fn(&Round) -> Option<f64>) -> Vec<f64> {
        self.rounds.iter().filter_map(f).collect()
    }

    pub fn gantry_ms(&self) -> f64 {
        median(&self.column(|r| Some(r.gantry_ms)))
    }

    pub fn docker_run_ms(&self) -> f64 {
        median(&self.column(|r| Some(r.bare_ms)))
    }

    /// Median Gantry start minus median bare start.
    pub fn overhead_ms(&self) -> f64 {
        self.gantry_ms() - self.docker_run_ms()
    }

    pub fn bench_line(&self) -> String {
        format!(
            "bench: start_overhead gantry_ms={:.1} docker_run_ms={:.1} overhead_ms={:.1}",
            self.gantry_ms(),
            self.docker_run_ms(),
            self.overhead_ms()
        )
    }

    fn print_summary(&self) {
        println!();
        println!("{:<34} {:>9} {:>9}", "over counted rounds", "median", "p90");
        let rows: [(&str, Vec<f64>); 11] = [
            ("bare create_and_start", self.column(|r| Some(r.bare_ms))),
            ("bare engine Created→StartedAt", self.column(|r| r.bare_engine_ms)),
            ("gantry: create → RUNNING (API)", self.column(|r| Some(r.gantry_ms))),
            ("gantry: create → running (docker)", self.column(|r| Some(r.docker_seen_ms))),
            ("  CreateTraining RPC", self.column(|r| Some(r.phases.create_rpc))),
            ("  placement", self.column(|r| r.phases.place)),
            ("  placed → engine Created", self.column(|r| r.phases.to_created)),
            ("  engine Created → StartedAt", self.column(|r| r.phases.engine)),
            ("  StartedAt → RUNNING committed", self.column(|r| r.phases.report)),
            ("  RUNNING → seen by GetTraining", self.column(|r| r.phases.seen)),
            ("overhead (gantry − bare, per round)", self.column(|r| Some(r.gantry_ms - r.bare_ms))),
        ];
        for (what, values) in rows {
            println!("{what:<34} {:>9.1} {:>9.1}", median(&values), percentile(&values, 90.0));
        }
        println!("overhead = median gantry − median bare = {:.1} ms (target < 150 ms)", self.overhead_ms());
    }
}

/// `rounds` counted rounds after one warm-up round.
pub async fn run(rounds: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
    with_node("", async |kit| {
        let algo = kit.algorithm("sleep", &[("train.py", SCRIPT)])?;
        println!(
            "one agent (500 ms heartbeat), {PYTHON_IMAGE}, {rounds} rounds + 1 warm-up; API polled every {} ms, \
             docker every {} ms; times in ms",
            API_POLL.as_millis(),
            DOCKER_POLL.as_millis()
        );
        println!(
            "{:>6} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>8} {:>7} {:>7} {:>6}",
            "round", "bare", "bare_en", "gantry", "docker", "rpc", "place", "→created", "engine", "report", "seen"
        );
        let mut counted = Vec::with_capacity(rounds);
        for i in 0..=rounds {
            let bare = bare_start(kit, i).await?;
            let round = gantry_start(kit, &algo, i, bare).await?;
            print_round(if i == 0 { "warm" } else { "" }, i, &round);
            if i > 0 {
                counted.push(round);
            }
        }
        let report = Report { rounds: counted };
        report.print_summary();
        Ok(report)
    })
    .await
}

fn print_round(tag: &str, i: usize, r: &Round) {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    let label = if tag.is_empty() { i.to_string() } else { tag.to_string() };
    println!(
        "{label:>6} {:>7.1} {:>7} {:>8.1} {:>8.1} {:>6.1} {:>6} {:>8} {:>7} {:>7} {:>6}",
        r.bare_ms,
        opt(r.bare_engine_ms),
        r.gantry_ms,
        r.docker_seen_ms,
        r.phases.create_rpc,
        opt(r.phases.place),
        opt(r.phases.to_created),
        opt(r.phases.engine),
        opt(r.phases.report),
        opt(r.phases.seen),
    );
}

/// The engine's (Created, StartedAt) of a container, Unix ms.
async fn engine_times(kit: &NodeKit, name: &str) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let inspect = kit.docker.client().inspect_container(name, None).await?;
    let created = inspect.created.as_deref().and_then(docker_time_ms);
    let started = inspect.state.and_then(|s| s.started_at).as_deref().and_then(docker_time_ms);
    Ok((created, started))
}

fn diff(from: Option<u64>, to: Option<u64>) -> Option<f64> {
    Some(to? as f64 - from? as f64)
}

/// A bare `create + start` of the image with a short command, timed to the return of
/// `create_and_start` (the engine answers once the process runs), then removed.
async fn bare_start(kit: &NodeKit, round: usize) -> anyhow::Result<(f64, Option<f64>)> {
    let name = format!("bench-bare-{}-{round}", kit.cluster);
    let cmd = ["python3", "-c", "print(1)"].map(String::from).to_vec();
    let mut spec = ContainerSpec::new(&name, PYTHON_IMAGE, cmd).with_resources(CPU_MILLIS, MEMORY_MIB);
    // The cluster label: the kit's cleanup removes it if this round fails.
    spec.labels.insert(labels::CLUSTER.into(), kit.cluster.clone());
    let started = Instant::now();
    let id = kit.docker.create_and_start(&spec).await.context("bare container start")?;
    let elapsed = ms(started.elapsed());
    let (created, started_at) = engine_times(kit, id.as_str()).await?;
    kit.docker.remove(&id).await?;
    Ok((elapsed, diff(created, started_at)))
}

async fn gantry_start(kit: &NodeKit, algo: &str, round: usize, bare: (f64, Option<f64>)) -> anyhow::Result<Round> {
    let name = format!("so-{round}");
    let spec = kit.training(&name, algo, "train.py");
    let prefix = format!("gantry-{}-", kit.cluster);
    let t0_wall = unix_ms();
    let t0 = Instant::now();
    let api = async {
        kit.create(spec).await?;
        let rpc = t0.elapsed();
        let (seen, t) = poll_until_running(kit, &name, API_POLL, WAIT).await?;
        anyhow::Ok((rpc, seen - t0, t))
    };
    let docker = async {
        loop {
            let running = kit
                .containers()
                .await?
                .into_iter()
                .find(|c| c.name.starts_with(&prefix) && c.state == ContainerState::Running);
            if let Some(c) = running {
                return anyhow::Ok((t0.elapsed(), c.name));
            }
            anyhow::ensure!(t0.elapsed() < WAIT, "no running container of {name} within {WAIT:?}");
            tokio::time::sleep(DOCKER_POLL).await;
        }
    };
    let ((rpc, api_elapsed, t), (docker_elapsed, container)) = tokio::try_join!(api, docker)?;
    let (created, started_at) = engine_times(kit, &container).await?;
    let running_at = entered(&t, "RUNNING");
    let seen_wall = t0_wall + api_elapsed.as_millis() as u64;
    let phases = Phases {
        create_rpc: ms(rpc),
        place: diff(entered(&t, "CREATE REQUESTED"), entered(&t, "CREATE IN PROGRESS")),
        to_created: diff(entered(&t, "CREATE IN PROGRESS"), created),
        engine: diff(created, started_at),
        report: diff(started_at, running_at),
        seen: diff(running_at, Some(seen_wall)),
    };
    kit.wait_status(&name, "COMPLETE", WAIT).await?;
    wait_for(WAIT, "the training's container removed", || async {
        let left = kit.containers().await?;
        anyhow::ensure!(left.is_empty(), "{} container(s) left", left.len());
        Ok(())
    })
    .await?;
    Ok(Round {
        bare_ms: bare.0,
        bare_engine_ms: bare.1,
        gantry_ms: ms(api_elapsed),
        docker_seen_ms: ms(docker_elapsed),
        phases,
    })
}
