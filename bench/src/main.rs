//! `gantry-bench`: replicated-write benchmarks of Gantry and of the systems it
//! is compared with, all on this machine over 127.0.0.1.
//!
//! Every run ends with `bench: …` lines (see
//! [`gantry_bench::load::LoadReport::bench_line`])
//! that scripts grep; the table above them is for people. The benchmarks
//! themselves live in the library (`src/lib.rs`); this file only parses
//! arguments and prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gantry_bench::{etcd, placement};

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Etcd(args) => run_etcd(args).await,
        Command::Placement => placement::run(),
    }
}

async fn run_etcd(args: EtcdArgs) -> anyhow::Result<()> {
    let mut tmp = tempfile::Builder::new();
    tmp.prefix("gantry-bench-etcd-");
    let dir = match &args.dir {
        Some(parent) => tmp.tempdir_in(parent)?,
        None => tmp.tempdir()?,
    };
    let mut cluster = etcd::EtcdCluster::start(dir.path(), args.members).await?;
    println!(
        "etcd: {} members, fsync on, heartbeat 100 ms / election 1000 ms (defaults), data in {}",
        args.members,
        dir.path().display()
    );

    let runs =
        [(1, args.single_ops, Duration::from_secs(20)), (args.clients, args.concurrent_ops, Duration::from_secs(30))];
    let mut lines = Vec::new();
    println!(
        "{:>8} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8}",
        "clients", "ops", "errors", "elapsed_s", "commits/s", "p50_us", "p99_us"
    );
    for (clients, ops, max) in runs {
        let r = etcd::bench_writes(&cluster, clients, ops, max).await?;
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

    let failover = etcd::bench_failover(&mut cluster).await?;
    println!("leader SIGKILL -> next acknowledged put: {} ms", failover.as_millis());
    lines.push(format!("bench: etcd_failover ms={}", failover.as_millis()));

    // Stop the members before the tempdir is removed under them.
    drop(cluster);
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
