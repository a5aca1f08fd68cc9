//! The raft benchmark's preconditions, checked on the running clusters and printed
//! before anything is measured; any failure stops the benchmark.
//!
//! ```text
//!   every data dir ──▶ durability::real_disk   (mount printed; tmpfs/ramfs refused)
//!   etcd members   ──▶ no --unsafe-no-fsync on the command line or in the environment
//!   all members    ──▶ strace: fsync/fdatasync calls during sequential acknowledged writes
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use gantry_chaos::ProcessCluster;

use crate::durability::{self, SyncWatch};
use crate::etcd::{self, EtcdCluster};
use crate::gantry;

/// Sequential acknowledged writes while the members are traced.
const VERIFY_WRITES: u64 = 20;
/// Each member must sync at least this share of them: a leader and each follower sync
/// (nearly) every sequential write; batching may merge a few, never half.
const MIN_SYNCS: u64 = VERIFY_WRITES / 2;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks both clusters (see the module doc) and prints what was verified.
pub async fn verify(gantry: &ProcessCluster, etcd: &EtcdCluster, scratch: &Path) -> anyhow::Result<()> {
    println!("verified before measuring:");
    for i in 0..gantry.len() {
        let dir = gantry.data_dir(i);
        println!("  gantry replica {} data {}: {}", gantry.replica_id(i), dir.display(), durability::real_disk(dir)?);
    }
    for i in 0..etcd.len() {
        let dir = etcd.data_dir(i);
        println!("  etcd member m{i} data {}: {}", dir.display(), durability::real_disk(&dir)?);
    }
    let pids =
        (0..etcd.len()).map(|i| etcd.pid(i).context("an etcd member is not running")).collect::<Result<Vec<_>, _>>()?;
    for &pid in &pids {
        durability::etcd_fsync_default(pid)?;
    }
    let has_flag = etcd::help()?.contains("unsafe-no-fsync");
    println!(
        "  etcd: no member runs with --unsafe-no-fsync (command line and ETCD_* environment checked{})",
        if has_flag { "" } else { "; this etcd has no such flag" }
    );
    println!(
        "  gantry: the raft log store has no fsync switch (raftlog commits each batch with PersistMode::SyncData)"
    );

    let gantry_pids = (0..gantry.len())
        .map(|i| {
            let config = gantry.base_dir().join(format!("replica-{}", gantry.replica_id(i))).join("scheduler.toml");
            durability::pid_with_arg(&config)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut client = gantry::own_client(gantry, 0, WRITE_TIMEOUT)?;
    let syncs = traced(&gantry_pids, scratch, async || {
        for seq in 0..VERIFY_WRITES {
            client.experiments.create_experiment(gantry::create("verify", seq as usize)).await?;
        }
        Ok(())
    })
    .await?;
    report("gantry", "replica", &syncs)?;

    let mut client = etcd.member_client(0, WRITE_TIMEOUT)?;
    let value = etcd::random_value(etcd::value_len_for(gantry::request_len("verify"))?);
    let syncs = traced(&pids, scratch, async || {
        for seq in 0..VERIFY_WRITES {
            client.put(format!("verify/{seq:010}"), value.clone()).await?;
        }
        Ok(())
    })
    .await?;
    report("etcd", "member", &syncs)
}

/// Runs `writes` with every process of `pids` traced; each one's syncs.
async fn traced(
    pids: &[u32],
    scratch: &Path,
    writes: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<(u32, u64)>> {
    let mut watches = Vec::with_capacity(pids.len());
    for &pid in pids {
        watches.push((pid, SyncWatch::attach(pid, scratch).await?));
    }
    writes().await.context("verification writes")?;
    let mut syncs = Vec::with_capacity(watches.len());
    for (pid, watch) in watches {
        syncs.push((pid, watch.finish().await?));
    }
    Ok(syncs)
}

fn report(system: &str, what: &str, syncs: &[(u32, u64)]) -> anyhow::Result<()> {
    let list: Vec<String> = syncs.iter().map(|(pid, n)| format!("{what} pid {pid}: {n}")).collect();
    println!(
        "  {system}: fsync/fdatasync calls (strace) during {VERIFY_WRITES} sequential acknowledged writes: {}",
        list.join(", ")
    );
    for (pid, n) in syncs {
        ensure!(
            *n >= MIN_SYNCS,
            "{system} {what} pid {pid} made {n} fsync/fdatasync calls during {VERIFY_WRITES} acknowledged writes \
             (at least {MIN_SYNCS} expected): its log is not synced to disk, so the figures would not be durable writes"
        );
    }
    Ok(())
}
