//! Leader failover of Gantry and etcd in four configurations: each system with the
//! same election timeout and heartbeat ("same"), and each with its own defaults.
//!
//! ```text
//!   gantry/default  gantry/same  etcd/same  etcd/default     (3 members each, all started)
//!        │               │           │           │
//!   round r: one kill per configuration, in turn ─▶ round::measure ─▶ ms
//!   after all rounds: p50 / p99 / max per configuration, one table, one `bench:` line each
//! ```
//!
//! Rounds of the four configurations alternate, so a burst of load on this shared
//! machine hits all of them alike. After each kill the victim restarts on its data dir
//! and the cluster settles (all members back, a leader agreed) before the next round.

pub mod round;
pub mod timing;

use std::time::Duration;

use anyhow::ensure;
use gantry_chaos::ProcessCluster;
use rand::Rng;
use tempfile::TempDir;

use self::round::WriteFn;
use self::timing::RaftTiming;
use crate::etcd::{self, EtcdCluster};
use crate::gantry;

const MEMBERS: usize = 3;
/// How long a cluster may take to elect a leader or settle after a restart.
const READY: Duration = Duration::from_secs(30);

/// One of the four configurations.
#[derive(Debug, Clone)]
pub struct Setup {
    pub system: &'static str,
    /// `same` or `default`.
    pub settings: &'static str,
    pub timing: RaftTiming,
    /// How the timing is configured, as the system's own settings.
    pub configured: String,
}

/// The figures of one configuration.
#[derive(Debug, Clone)]
pub struct Summary {
    pub setup: Setup,
    /// Each round's failover, ms, in round order.
    pub rounds_ms: Vec<u64>,
}

impl Summary {
    pub fn p50_ms(&self) -> u64 {
        percentile(&self.rounds_ms, 0.50)
    }

    pub fn p99_ms(&self) -> u64 {
        percentile(&self.rounds_ms, 0.99)
    }

    pub fn max_ms(&self) -> u64 {
        self.rounds_ms.iter().copied().max().unwrap_or(0)
    }

    pub fn bench_line(&self) -> String {
        format!(
            "bench: failover system={} settings={} p50_ms={} p99_ms={} max_ms={} rounds={}",
            self.setup.system,
            self.setup.settings,
            self.p50_ms(),
            self.p99_ms(),
            self.max_ms(),
            self.rounds_ms.len()
        )
    }
}

/// Nearest-rank percentile (`q` in (0, 1]) of `values`; 0 for none.
pub fn percentile(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0)
}

/// The four configurations; `same` is the timing both systems share.
pub fn setups(same: RaftTiming, etcd_help: &str) -> anyhow::Result<Vec<Setup>> {
    let gantry_default = RaftTiming::gantry_default();
    let etcd_default = RaftTiming::etcd_default(etcd_help)?;
    Ok(vec![
        Setup {
            system: "gantry",
            settings: "default",
            timing: gantry_default,
            configured: gantry_default.gantry_settings(),
        },
        Setup { system: "gantry", settings: "same", timing: same, configured: same.gantry_settings() },
        Setup { system: "etcd", settings: "same", timing: same, configured: same.etcd_flags().join(" ") },
        Setup {
            system: "etcd",
            settings: "default",
            timing: etcd_default,
            configured: "no flags (defaults of `etcd --help`)".into(),
        },
    ])
}

/// Runs `rounds` kills of every configuration and prints the table and `bench:` lines.
pub async fn run(rounds: usize, same: RaftTiming) -> anyhow::Result<Vec<Summary>> {
    ensure!(rounds > 0, "--rounds must be at least 1");
    let setups = setups(same, &etcd::help()?)?;
    println!(
        "failover: SIGKILL of the leader -> first acknowledged write issued after it; {MEMBERS} members each on \
         127.0.0.1, TLS, fsync; writer: one connection per member, {} ms per write, next member on failure",
        round::OP_TIMEOUT.as_millis()
    );
    println!("{:<7} {:<8} {:<82} configured as", "system", "settings", "effective timing");
    for s in &setups {
        println!("{:<7} {:<8} {:<82} {}", s.system, s.settings, s.timing.to_string(), s.configured);
    }
    let mut clusters = Vec::with_capacity(setups.len());
    for s in &setups {
        clusters.push(Cluster::start(s).await?);
    }
    let mut rounds_ms = vec![Vec::with_capacity(rounds); setups.len()];
    let names: Vec<String> = setups.iter().map(|s| format!("{}/{}", s.system, s.settings)).collect();
    println!("{:>5} {}", "round", names.iter().map(|n| format!("{n:>15}")).collect::<String>());
    for r in 1..=rounds {
        let mut row = format!("{r:>5}");
        for (i, cluster) in clusters.iter_mut().enumerate() {
            let ms = u64::try_from(cluster.round().await?.as_millis())?;
            rounds_ms[i].push(ms);
            row.push_str(&format!("{ms:>12} ms"));
        }
        println!("{row}");
    }
    for cluster in clusters {
        cluster.stop().await?;
    }
    let summaries: Vec<Summary> =
        setups.into_iter().zip(rounds_ms).map(|(setup, rounds_ms)| Summary { setup, rounds_ms }).collect();
    println!("{:<7} {:<8} {:>6} {:>7} {:>7} {:>7}", "system", "settings", "rounds", "p50_ms", "p99_ms", "max_ms");
    for s in &summaries {
        println!(
            "{:<7} {:<8} {:>6} {:>7} {:>7} {:>7}",
            s.setup.system,
            s.setup.settings,
            s.rounds_ms.len(),
            s.p50_ms(),
            s.p99_ms(),
            s.max_ms()
        );
    }
    for s in &summaries {
        println!("{}", s.bench_line());
    }
    Ok(summaries)
}

/// A running cluster of one configuration. Dropping it kills every member.
enum Cluster {
    Gantry(ProcessCluster),
    // Field order: the members stop before their directory is removed.
    Etcd { cluster: Box<EtcdCluster>, _dir: TempDir },
}

impl Cluster {
    async fn start(setup: &Setup) -> anyhow::Result<Cluster> {
        if setup.system == "gantry" {
            return Ok(Cluster::Gantry(gantry::start_with(MEMBERS, setup.timing).await?));
        }
        let dir = tempfile::Builder::new().prefix("gantry-bench-etcd-").tempdir()?;
        // etcd's defaults are run as shipped: no flags at all.
        let flags = if setup.settings == "default" { Vec::new() } else { setup.timing.etcd_flags() };
        let cluster = EtcdCluster::start_with_flags(dir.path(), MEMBERS, true, &flags).await?;
        Ok(Cluster::Etcd { cluster: Box::new(cluster), _dir: dir })
    }

    async fn round(&mut self) -> anyhow::Result<Duration> {
        match self {
            Cluster::Gantry(c) => gantry_round(c).await,
            Cluster::Etcd { cluster, .. } => etcd_round(cluster).await,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Cluster::Gantry(c) => c.shutdown().await,
            Cluster::Etcd { .. } => Ok(()),
        }
    }
}

/// One kill of Gantry's leader, timed; then the victim restarts and the cluster settles.
pub async fn gantry_round(c: &ProcessCluster) -> anyhow::Result<Duration> {
    let run = format!("f{:08x}", rand::rng().random::<u32>());
    let leader = c.wait_for_leader(READY).await?;
    let took = round::measure(c.len(), gantry_write(c, &run)?, || c.kill(leader)).await?;
    let new_leader = c.wait_for_leader(READY).await?;
    ensure!(new_leader != leader, "after killing replica {leader} it still leads");
    c.restart(leader).await?;
    c.wait_converged(READY).await?;
    Ok(took)
}

/// One kill of etcd's leader, timed; then the victim restarts and the cluster settles.
pub async fn etcd_round(cluster: &mut EtcdCluster) -> anyhow::Result<Duration> {
    let run = format!("f{:08x}", rand::rng().random::<u32>());
    let leader = cluster.wait_ready(READY).await?;
    let write = etcd_write(cluster, &run)?;
    let members = cluster.len();
    let took = round::measure(members, write, || std::future::ready(cluster.kill(leader))).await?;
    let new_leader = cluster.wait_ready(READY).await?;
    ensure!(new_leader != leader, "after killing member {leader} it still leads");
    cluster.restart(leader)?;
    cluster.wait_ready(READY).await?;
    Ok(took)
}

/// `CreateExperiment` on a connection of its own to each replica.
fn gantry_write(cluster: &ProcessCluster, run: &str) -> anyhow::Result<WriteFn> {
    let pool = (0..cluster.len())
        .map(|i| gantry::own_client(cluster, i, round::OP_TIMEOUT))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = run.to_string();
    Ok(std::sync::Arc::new(move |member, seq| {
        let mut experiments = pool[member].experiments.clone();
        let request = gantry::create(&run, seq as usize);
        Box::pin(async move {
            experiments.create_experiment(request).await?;
            Ok(())
        })
    }))
}

/// A put of the same size as [`gantry_write`]'s requests, on a connection of its own to
/// each member.
fn etcd_write(cluster: &EtcdCluster, run: &str) -> anyhow::Result<WriteFn> {
    let pool =
        (0..cluster.len()).map(|i| cluster.member_client(i, round::OP_TIMEOUT)).collect::<anyhow::Result<Vec<_>>>()?;
    let value = etcd::random_value(etcd::value_len_for(gantry::request_len(run))?);
    let run = run.to_string();
    Ok(std::sync::Arc::new(move |member, seq| {
        let mut client = pool[member].clone();
        let key = format!("failover/{run}/{seq:010}");
        let value = value.clone();
        Box::pin(async move {
            client.put(key, value).await?;
            Ok(())
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<u64> = (1..=10).map(|v| v * 100).collect();
        assert_eq!((percentile(&ten, 0.5), percentile(&ten, 0.99)), (500, 1000));
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        let s = Summary {
            setup: Setup {
                system: "etcd",
                settings: "same",
                timing: RaftTiming::gantry_default(),
                configured: "".into(),
            },
            rounds_ms: vec![900, 300, 500],
        };
        assert_eq!(
            s.bench_line(),
            "bench: failover system=etcd settings=same p50_ms=500 p99_ms=900 max_ms=900 rounds=3"
        );
    }

    #[test]
    fn same_means_same_on_both_sides() -> anyhow::Result<()> {
        let help = "  --heartbeat-interval '100'\n  --election-timeout '1000'\n  --pre-vote 'false'\n";
        let s = setups(timing::same(None, None)?, help)?;
        let same: Vec<_> = s.iter().filter(|s| s.settings == "same").collect();
        assert_eq!(same.len(), 2);
        assert_eq!(same[0].timing, same[1].timing);
        assert_eq!(s.iter().filter(|s| s.settings == "default").count(), 2);
        Ok(())
    }
}
