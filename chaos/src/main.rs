//! `gantry-chaos`: long nemesis runs and offline checks.
//!
//! ```text
//! gantry-chaos soak --seeds 50 --minutes 10      # 50 seeded runs, all fault kinds
//! gantry-chaos soak --seed 1234 --minutes 10     # replay one seed
//! gantry-chaos check /tmp/gantry-nemesis/seed-1234-99.jsonl   # re-check a history
//! ```
//!
//! Each run prints one line; the soak ends with
//! `bench: chaos runs=… anomalies=… lost=… duplicated=… double_booked=…` and exits
//! non-zero when any run found an anomaly or could not be carried out.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use gantry_chaos::nemesis::{self, FaultKind, NemesisOptions, check, record};

#[derive(Parser)]
#[command(name = "gantry-chaos", about = "Nemesis runs against real Gantry processes")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Seeded nemesis runs, one after another.
    Soak {
        /// How many runs (seeds first, first+1, …).
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// The first seed (default: random).
        #[arg(long)]
        seed: Option<u64>,
        /// Length of each run's fault phase.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Fault kinds (default: all): kill, pause, partition, isolate-leader,
        /// one-way-drop, clock-jump, full-disk, slow-disk, agent-loss, wipe.
        #[arg(long, value_delimiter = ',')]
        faults: Vec<String>,
        /// Agents (each with two fake GPUs).
        #[arg(long, default_value_t = 2)]
        agents: usize,
    },
    /// Re-runs the linearizability check on a history a run wrote.
    Check { history: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("GANTRY_LOG").unwrap_or_else(|_| "warn".into())).init();
    match Cli::parse().command {
        Cmd::Soak { seeds, seed, minutes, faults, agents } => {
            // Interrupted, the run's future is dropped: its destructors remove the
            // namespaces, bridge, firewall rules, mounts, processes and containers.
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = soak(seeds, seed, minutes, faults, agents) => r,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
                _ = term.recv() => anyhow::bail!("terminated"),
            }
        }
        Cmd::Check { history } => {
            let records = record::read_jsonl(&history)?;
            let mut findings = check::Findings::default();
            check::check_linearizable(&records, &mut findings);
            println!(
                "{} operations, {} keys checked, {} inconclusive",
                records.len(),
                findings.keys_checked,
                findings.inconclusive
            );
            for a in &findings.anomalies {
                println!("ANOMALY {a}");
            }
            anyhow::ensure!(findings.anomalies.is_empty(), "{} anomalies", findings.anomalies.len());
            Ok(())
        }
    }
}

async fn soak(seeds: u64, seed: Option<u64>, minutes: f64, faults: Vec<String>, agents: usize) -> anyhow::Result<()> {
    let kinds = if faults.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        faults
            .iter()
            .map(|f| FaultKind::parse(f).ok_or_else(|| anyhow::anyhow!("unknown fault kind {f:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    anyhow::ensure!(minutes > 0.0, "--minutes must be positive");
    let first = seed.unwrap_or_else(rand::random::<u64>);
    let (mut anomalies, mut lost, mut duplicated, mut double_booked, mut failed_runs, mut ops) = (0, 0, 0, 0, 0, 0);
    println!(
        "{:>22} {:>8} {:>7} {:>9} {:>5} {:>5} {:>6}  history",
        "seed", "minutes", "ops", "anomalies", "lost", "dup", "booked"
    );
    for k in 0..seeds {
        let seed = first.wrapping_add(k);
        let mut options = NemesisOptions::new(seed, Duration::from_secs_f64(minutes * 60.0));
        options.kinds = kinds.clone();
        options.agents = agents;
        let started = Instant::now();
        match nemesis::run(&options).await {
            Ok(report) => {
                let f = &report.findings;
                println!(
                    "{seed:>22} {:>8.1} {:>7} {:>9} {:>5} {:>5} {:>6}  {}",
                    started.elapsed().as_secs_f64() / 60.0,
                    report.ops,
                    report.anomalies(),
                    f.lost,
                    f.duplicated,
                    f.double_booked,
                    report.history.display()
                );
                for a in &f.anomalies {
                    println!("    ANOMALY {a}");
                }
                anomalies += report.anomalies();
                lost += f.lost;
                duplicated += f.duplicated;
                double_booked += f.double_booked;
                ops += report.ops;
            }
            Err(e) => {
                failed_runs += 1;
                println!("{seed:>22}  RUN FAILED: {e:#}");
            }
        }
    }
    println!(
        "bench: chaos runs={seeds} minutes_each={minutes} ops={ops} anomalies={anomalies} lost={lost} \
         duplicated={duplicated} double_booked={double_booked} failed_runs={failed_runs} first_seed={first}"
    );
    anyhow::ensure!(anomalies == 0 && failed_runs == 0, "{anomalies} anomalies, {failed_runs} failed runs");
    Ok(())
}
