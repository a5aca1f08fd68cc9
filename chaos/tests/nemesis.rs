//! The nemesis suite in CI: short seeded runs on a cluster of separate hosts (network
//! namespaces), every fault kind, every checker. Needs root, iproute2, iptables,
//! libfaketime, mkfs.ext4 and Docker with `gantry/python:3.11` (`.ci/run` installs them).
//! Replay a run with `GANTRY_CHAOS_SEED=N`; longer runs: `gantry-chaos soak`.

use std::time::Duration;

use gantry_chaos::nemesis::record::{Action, Journal, Outcome, Record};
use gantry_chaos::nemesis::{FaultKind, NemesisOptions, check, run};
use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_proto::v1::{self as pb, ReadOptions};

fn seed(default: u64) -> u64 {
    std::env::var(gantry_chaos::seed::SEED_ENV).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_kind_mixed_leaves_a_linearizable_history_and_no_double_booked_gpu() -> anyhow::Result<()> {
    let seed = seed(20261207);
    eprintln!("chaos seed: {seed}");
    let mut options = NemesisOptions::new(seed, Duration::from_secs(75));
    options.kinds = FaultKind::ALL.to_vec();
    let report = run(&options).await?;
    eprintln!("faults:\n  {}", report.faults.join("\n  "));
    eprintln!(
        "ops {} keys {} inconclusive {} samples {} history {}",
        report.ops,
        report.findings.keys_checked,
        report.findings.inconclusive,
        report.container_samples,
        report.history.display()
    );
    assert!(report.findings.anomalies.is_empty(), "seed {seed}: anomalies:\n{}", report.findings.anomalies.join("\n"));
    assert_eq!(report.findings.inconclusive, 0, "seed {seed}: a key's search gave up");
    assert!(report.faults.len() >= 3, "seed {seed}: too few faults ran: {:?}", report.faults);
    assert!(report.container_samples > 0 && report.ops > 100, "seed {seed}: the run did too little");
    Ok(())
}

/// The checker against a real stale read: a follower cut off from the others answers a
/// `stale` read from its old state. Journaled honestly (as stale) the history passes;
/// journaled as if it were a linearizable read, the checker must catch it. And a
/// linearizable read on the cut-off follower must not answer with the old value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_follower_read_passed_off_as_linearizable_is_caught() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(ClusterOptions { namespaces: true, ..ClusterOptions::default() }).await?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let follower = (leader + 1) % cluster.len();
    let journal = Journal::new();
    let key = "reg-0";
    let put = |value: u64| {
        let mut api = cluster.client(leader);
        let it = gantry_chaos::nemesis::clients::register_type(key, value);
        async move { api.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it) }).await }
    };
    let record = |id, action, call_ns, ret_ns, outcome, stale| Record {
        id,
        client: 0,
        replica: leader,
        key: key.into(),
        action,
        stale,
        call_ns,
        ret_ns: Some(ret_ns),
        outcome,
    };
    let read = |i: usize, stale: bool| {
        let mut api = cluster.client(i);
        async move {
            let list = api
                .catalog
                .list_instance_types(pb::ListInstanceTypesRequest { read: Some(ReadOptions { stale }) })
                .await?;
            anyhow::Ok(list.into_inner().instance_types.iter().find(|t| t.name == key).map(|t| t.memory_mib))
        }
    };

    let t0 = journal.now_ns();
    put(1).await?;
    journal.push(record(0, Action::PutRegister { value: 1 }, t0, journal.now_ns(), Outcome::Ok, false));
    // The follower has applied the first write before it is cut off.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while read(follower, true).await? != Some(1) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the follower never applied the first write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.isolate(follower)?;
    let t1 = journal.now_ns();
    put(2).await?;
    journal.push(record(0, Action::PutRegister { value: 2 }, t1, journal.now_ns(), Outcome::Ok, false));

    let t2 = journal.now_ns();
    let stale = read(follower, true).await?;
    let t3 = journal.now_ns();
    assert_eq!(stale, Some(1), "the cut-off follower should still hold the old value");
    // A linearizable read there cannot be served while it is cut off.
    if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(8), read(follower, false)).await {
        assert_ne!(v, Some(1), "a linearizable read on a cut-off follower returned the old value");
    }
    cluster.heal_network()?;

    let mut honest = journal.records();
    honest.push(record(2, Action::ReadRegister, t2, t3, Outcome::Read { value: stale }, true));
    let mut findings = check::Findings::default();
    check::check_linearizable(&honest, &mut findings);
    assert!(findings.anomalies.is_empty(), "{:?}", findings.anomalies);

    let mut lying = journal.records();
    lying.push(record(2, Action::ReadRegister, t2, t3, Outcome::Read { value: stale }, false));
    let mut findings = check::Findings::default();
    check::check_linearizable(&lying, &mut findings);
    assert_eq!(findings.anomalies.len(), 1, "the stale read was not caught: {:?}", findings.anomalies);
    cluster.shutdown().await
}
