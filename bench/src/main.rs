//! `gantry-bench`: replicated-write benchmarks of Gantry and of the systems it
//! is compared with, and node benchmarks of one real agent on this machine's
//! Docker engine, all on this machine over 127.0.0.1.
//!
//! Every run ends with `bench: …` lines (see
//! [`gantry_bench::load::LoadReport::bench_line`])
//! that scripts grep; the table above them is for people. The benchmarks
//! themselves live in the library (`src/lib.rs`); this file only parses
//! arguments and prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gantry_bench::failover::timing;
use gantry_bench::load::LoadReport;
use gantry_bench::node::{footprint, logs, start_overhead};
use gantry_bench::{durability, etcd, failover, gantry, gateway, placement, raft_loaded, raft_setup};

#[derive(Parser)]
#[command(about = "Gantry benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Durable writes and leader failover of a local etcd cluster.
    Etcd(EtcdArgs),
    /// Placement throughput and per-decision latency on a synthetic 5,000-node fleet.
    Placement,
    /// Durable replicated writes: 3 Gantry replicas vs a 3-member etcd, same run, same
    /// connections and request sizes; data dirs under $TMPDIR, which must be a real disk.
    Raft(RaftArgs),
    /// Durable replicated writes on a state holding many workloads vs an empty state.
    #[command(name = "raft_loaded")]
    RaftLoaded(RaftLoadedArgs),
    /// SIGKILL of the leader to the next acknowledged write: Gantry and etcd with the same
    /// election settings and with each one's defaults, same run.
    Failover(FailoverArgs),
    /// CreateTraining to a running container, minus a bare Docker start of the same image.
    #[command(name = "start_overhead")]
    StartOverhead(StartOverheadArgs),
    /// Lines/s of a fast printer followed end to end with TrainingLogs; fails when a line
    /// is lost, duplicated or out of order.
    Logs(LogsArgs),
    /// RSS and CPU of the agent process with idle containers running.
    #[command(name = "agent_footprint")]
    AgentFootprint(FootprintArgs),
    /// Model calls at a fixed rate, open loop: directly to a model server, through nginx
    /// and through the Gantry gateway, same run.
    Gateway(GatewayArgs),
}

#[derive(Args)]
struct GatewayArgs {
    /// Requests per second offered to each target.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Requests per target (each target also stops after 60 s).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
}

#[derive(Args)]
struct StartOverheadArgs {
    /// Counted rounds (after one warm-up round); medians and p90 are reported.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

#[derive(Args)]
struct LogsArgs {
    /// Numbered lines the training prints.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
}

#[derive(Args)]
struct FootprintArgs {
    /// Idle containers (trainings of 50m CPU / 64 MiB) the agent runs.
    #[arg(long, default_value_t = 20)]
    containers: usize,
}

#[derive(Args)]
struct RaftArgs {
    /// Gantry replicas (etcd members match).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Ops of the single-client run (it also stops after 20 s).
    #[arg(long, default_value_t = 2_000)]
    single_ops: usize,
    /// Clients of the concurrent run.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Ops of the concurrent run (it also stops after 30 s).
    #[arg(long, default_value_t = 20_000)]
    concurrent_ops: usize,
    /// Run etcd over plain HTTP instead of TLS (Gantry always uses TLS).
    #[arg(long)]
    etcd_plain: bool,
    /// Skip etcd (for profiling Gantry alone); no `bench:` lines are printed.
    #[arg(long)]
    gantry_only: bool,
}

#[derive(Args)]
struct RaftLoadedArgs {
    /// Gantry replicas.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Trainings in the loaded state.
    #[arg(long, default_value_t = 10_000)]
    workloads: usize,
    /// Clients of both runs.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Ops of each run (each also stops after 30 s).
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// `[raft] snapshot_every` of both clusters (default: the scheduler's).
    #[arg(long)]
    snapshot_every: Option<u64>,
}

#[derive(Args)]
struct FailoverArgs {
    /// Leader kills per configuration (4 configurations).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Heartbeat of the "same" configurations, ms (default: Gantry's default heartbeat).
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Election timeout of the "same" configurations, ms, a multiple of the heartbeat
    /// (default: Gantry's default election timeout).
    #[arg(long)]
    election_ms: Option<u64>,
}

#[derive(Args)]
struct EtcdArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// Parent of the cluster's temporary directory; must not be tmpfs, where
    /// fsync costs nothing.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Ops of the single-client run (it also stops after 20 s).
    #[arg(long, default_value_t = 2_000)]
    single_ops: usize,
    /// Clients of the concurrent run.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Ops of the concurrent run (it also stops after 30 s).
    #[arg(long, default_value_t = 20_000)]
    concurrent_ops: usize,
}

/// Logs of the in-process parts (the node benchmarks' sandbox scheduler) go to stderr
/// when this is set to a filter (e.g. `info,h2=debug`); otherwise they are off.
const LOG_ENV: &str = "GANTRY_BENCH_LOG";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(filter) = std::env::var(LOG_ENV) {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    match Cli::parse().command {
        Command::Etcd(args) => run_etcd(args).await,
        Command::Placement => placement::run(),
        Command::Raft(args) => run_raft(args).await,
        Command::RaftLoaded(a) => {
            let opts = raft_loaded::Options {
                replicas: a.replicas,
                workloads: a.workloads,
                clients: a.clients,
                ops: a.ops,
                max: Duration::from_secs(30),
                snapshot_every: a.snapshot_every,
            };
            let report = raft_loaded::run(&opts).await?;
            report.print(&opts);
            for line in report.bench_lines() {
                println!("{line}");
            }
            Ok(())
        }
        Command::Failover(args) => run_failover(args).await,
        Command::StartOverhead(args) => {
            println!("{}", start_overhead::run(args.rounds).await?.bench_line());
            Ok(())
        }
        Command::Logs(args) => {
            let report = logs::run(args.lines).await?;
            println!("{}", report.bench_line());
            // After the figures: a run that lost or reordered a line fails, naming it.
            report.verify()
        }
        Command::Gateway(args) => {
            let opts = gateway::Options { rate: args.rate, requests: args.requests, max: Duration::from_secs(60) };
            let report = gateway::run(&opts).await?;
            report.print();
            println!("{}", report.bench_line());
            Ok(())
        }
        Command::AgentFootprint(args) => {
            println!("{}", footprint::run(args.containers).await?.bench_line());
            Ok(())
        }
    }
}

fn row(system: &str, clients: usize, r: &LoadReport) {
    println!(
        "{system:>7} {clients:>8} {:>8} {:>7} {:>9.2} {:>10.0} {:>8} {:>8}",
        r.ops,
        r.errors,
        r.elapsed.as_secs_f64(),
        r.per_s,
        r.p50_us,
        r.p99_us
    );
}

async fn run_raft(args: RaftArgs) -> anyhow::Result<()> {
    let gantry = gantry::start(args.replicas).await?;
    let dir = tempfile::Builder::new().prefix("gantry-bench-etcd-").tempdir()?;
    let etcd = etcd::EtcdCluster::start(dir.path(), args.replicas, !args.etcd_plain).await?;
    raft_setup::verify(&gantry, &etcd, dir.path()).await?;
    println!(
        "{n} Gantry replicas and {n} etcd members on 127.0.0.1, TLS on Gantry and {etcd_tls}; both idle while the other runs",
        n = args.replicas,
        etcd_tls = if args.etcd_plain { "off on etcd" } else { "on etcd" },
    );
    println!(
        "operation (both): one connection per client, client c to member c % {n} (followers forward), one warm-up \
         write per client, closed loop; acknowledged once a majority fsynced and applied",
        n = args.replicas
    );
    let runs =
        [(1, args.single_ops, Duration::from_secs(20)), (args.clients, args.concurrent_ops, Duration::from_secs(30))];
    for (clients, _, _) in runs {
        let bytes = gantry::request_len(&format!("c{clients}"));
        println!(
            "request size with {clients} client(s): gantry CreateExperiment {bytes} B, etcd Put {} B (protobuf)",
            etcd::put_len_for(bytes)?
        );
    }
    println!(
        "{:>7} {:>8} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8}",
        "system", "clients", "ops", "errors", "elapsed_s", "commits/s", "p50_us", "p99_us"
    );
    let mut lines = Vec::new();
    for (clients, ops, max) in runs {
        let run = format!("c{clients}");
        let bytes = gantry::request_len(&run);
        let g = gantry::bench_writes(&gantry, &run, clients, ops, max).await?;
        row("gantry", clients, &g);
        if args.gantry_only {
            continue;
        }
        let e = etcd::bench_writes(&etcd, clients, ops, max, bytes).await?;
        row("etcd", clients, &e);
        lines.push(format!(
            "bench: raft clients={clients} commits_per_s={:.0} p50_us={} p99_us={} etcd_commits_per_s={:.0} \
             etcd_p50_us={} etcd_p99_us={} throughput_ratio={:.2} p50_ratio={:.2} errors={} etcd_errors={} etcd_tls={}",
            g.per_s,
            g.p50_us,
            g.p99_us,
            e.per_s,
            e.p50_us,
            e.p99_us,
            g.per_s / e.per_s.max(1.0),
            g.p50_us as f64 / e.p50_us.max(1) as f64,
            g.errors,
            e.errors,
            !args.etcd_plain
        ));
    }
    drop(etcd);
    gantry.shutdown().await?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

async fn run_failover(args: FailoverArgs) -> anyhow::Result<()> {
    failover::run(args.rounds, timing::same(args.heartbeat_ms, args.election_ms)?).await?;
    Ok(())
}

async fn run_etcd(args: EtcdArgs) -> anyhow::Result<()> {
    let mut tmp = tempfile::Builder::new();
    tmp.prefix("gantry-bench-etcd-");
    let dir = match &args.dir {
        Some(parent) => tmp.tempdir_in(parent)?,
        None => tmp.tempdir()?,
    };
    let mount = durability::real_disk(dir.path())?;
    let mut cluster = etcd::EtcdCluster::start(dir.path(), args.members, true).await?;
    println!(
        "etcd: {} members, fsync on, {} (defaults), data in {} on {mount}",
        args.members,
        timing::RaftTiming::etcd_default(&etcd::help()?)?,
        dir.path().display()
    );
    let bytes = gantry::request_len("etcd");

    let runs =
        [(1, args.single_ops, Duration::from_secs(20)), (args.clients, args.concurrent_ops, Duration::from_secs(30))];
    let mut lines = Vec::new();
    println!(
        "{:>8} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8}",
        "clients", "ops", "errors", "elapsed_s", "commits/s", "p50_us", "p99_us"
    );
    for (clients, ops, max) in runs {
        let r = etcd::bench_writes(&cluster, clients, ops, max, bytes).await?;
        println!(
            "{clients:>8} {:>8} {:>7} {:>9.2} {:>10.0} {:>8} {:>8}",
            r.ops,
            r.errors,
            r.elapsed.as_secs_f64(),
            r.per_s,
            r.p50_us,
            r.p99_us
        );
        lines.push(r.bench_line("etcd", clients));
    }

    let failover = failover::etcd_round(&mut cluster).await?;
    println!("leader SIGKILL -> next acknowledged put: {} ms", failover.as_millis());
    lines.push(format!("bench: etcd_failover ms={}", failover.as_millis()));

    // Stop the members before the tempdir is removed under them.
    drop(cluster);
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
