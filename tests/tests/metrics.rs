//! `/metrics`: the Prometheus text a replica serves, read over plain HTTP as a scraper
//! would, after real writes.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use gantry_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITES: u64 = 12;

/// One HTTP/1.0 GET (the server closes the connection after answering).
async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no end of headers")?;
    anyhow::ensure!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "status: {head}");
    Ok(body.to_string())
}

/// Samples without labels, by metric name; checks every sample has HELP and TYPE lines.
fn samples(text: &str) -> anyhow::Result<HashMap<String, u64>> {
    let mut values = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').with_context(|| format!("malformed sample {line:?}"))?;
        let family = name.split('{').next().unwrap_or(name);
        anyhow::ensure!(text.contains(&format!("# TYPE {family} ")), "{family} has no TYPE line");
        anyhow::ensure!(text.contains(&format!("# HELP {family} ")), "{family} has no HELP line");
        if !name.contains('{') {
            values.insert(name.to_string(), value.parse().with_context(|| format!("value of {line:?}"))?);
        }
    }
    Ok(values)
}

#[tokio::test]
async fn replication_counters_follow_the_writes() -> anyhow::Result<()> {
    let sandbox = Sandbox::start_with(SandboxOptions { metrics: true, ..SandboxOptions::default() }).await?;
    let addr = sandbox.metrics_addr().context("metrics were asked for")?;
    let before = samples(&scrape(addr).await?)?;
    let mut experiments = sandbox.team_a().experiments;
    for i in 0..WRITES {
        expect_ok(experiments.create_experiment(create_experiment(TEAM_A, &format!("m{i}"))).await, "create");
    }
    let after = samples(&scrape(addr).await?)?;
    let grew = |name: &str| -> anyhow::Result<u64> {
        let (a, b) = (after.get(name).with_context(|| format!("{name} missing"))?, before.get(name).unwrap_or(&0));
        Ok(a - b)
    };
    assert_eq!(after.get("gantry_raft_is_leader"), Some(&1));
    // Each create is one proposal and one entry, appended, synced and applied.
    assert!(grew("gantry_raft_proposals_total")? >= WRITES);
    assert!(grew("gantry_raft_entries_appended_total")? >= WRITES);
    assert!(grew("gantry_raft_entries_applied_total")? >= WRITES);
    let syncs = grew("gantry_raft_log_syncs_total")?;
    assert!(syncs >= 1, "no fsync for {WRITES} acknowledged writes");
    assert!(syncs <= grew("gantry_raft_entries_appended_total")?, "more syncs than entries");
    assert!(grew("gantry_raft_log_sync_microseconds_total")? > 0);
    // A single replica sends nothing to peers.
    assert_eq!(grew("gantry_raft_messages_sent_total")?, 0);
    sandbox.shutdown().await
}
