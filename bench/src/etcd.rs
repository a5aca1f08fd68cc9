//! A local etcd cluster of real `etcd` processes on 127.0.0.1, and the
//! replicated-write benchmarks Gantry is compared against.
//!
//! ```text
//!   EtcdCluster ──spawn──▶ etcd m0, m1, m2   (data + log under base_dir)
//!        │                      ▲
//!        └─status polls─────────┘   bench_writes / bench_failover ──puts──▶ endpoints()
//! ```
//!
//! Members run with etcd's own defaults for everything that affects
//! durability and timing, so the comparison is against etcd as shipped: the WAL
//! is fsynced before every commit is acknowledged, `--heartbeat-interval` is
//! 100 ms and `--election-timeout` 1000 ms. The base directory must be on a
//! real disk: on tmpfs fsync is free and the comparison would flatter etcd.
//! Needs the `etcd` binary on PATH (`bench/scripts/install-peers.sh`). Clients
//! speak etcd's gRPC API over plain HTTP/2 through `etcd/client.rs`, our own minimal
//! client, so building the crate needs no `protoc`.

mod client;

use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use gantry_pki::TlsFiles;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::ClientTlsConfig;

use self::client::EtcdClient;
use crate::load::{LoadReport, run_closed_loop};

/// How long a fresh or healed cluster may take to agree on a leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one status poll, so a killed or wedged member cannot stall polling.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Connect and per-request timeouts of the benchmark writers' clients.
const WRITE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of the value of every benchmark put, close to a Gantry job record.
const VALUE_BYTES: usize = 200;
/// Per-put timeout of the failover writer: short, so it moves on to another
/// member quickly instead of waiting on a dead one.
const FAILOVER_OP_TIMEOUT: Duration = Duration::from_millis(200);
/// Acknowledged puts before the leader is killed, so the writer is in steady state.
const FAILOVER_WARMUP_ACKS: usize = 20;
/// Longest failover measured; past it the benchmark fails.
const FAILOVER_GIVE_UP: Duration = Duration::from_secs(30);

/// A running local etcd cluster. Dropping it SIGKILLs every member.
pub struct EtcdCluster {
    base_dir: PathBuf,
    /// TLS on client and peer links (as Gantry always has), or plain HTTP.
    tls: Option<EtcdTls>,
    initial_cluster: String,
    members: Vec<Member>,
}

struct EtcdTls {
    files: TlsFiles,
    client: ClientTlsConfig,
}

struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    /// `None` while killed.
    child: Option<Child>,
    /// Single-endpoint client for status polls. It connects lazily and
    /// reconnects, so it survives a kill/restart of its member.
    status_client: EtcdClient,
}

impl EtcdCluster {
    /// Starts `members` etcd processes with static bootstrap and returns once
    /// they all agree on a leader (or fails after 30 s).
    ///
    /// With `tls`, members serve clients over TLS and authenticate each other with
    /// mutual TLS, like Gantry's replicas (a dev CA and certificate made in `base_dir`).
    pub async fn start(base_dir: &Path, members: usize, tls: bool) -> anyhow::Result<EtcdCluster> {
        ensure!(members > 0, "an etcd cluster needs at least one member");
        fs::create_dir_all(base_dir).with_context(|| format!("creating {}", base_dir.display()))?;
        let tls = if tls {
            let files = gantry_pki::ensure_dev_pki(&base_dir.join("pki"), &[]).context("creating etcd's dev PKI")?;
            let client = gantry_pki::client_tls_ca_only(&files.ca_cert, "localhost")?;
            Some(EtcdTls { files, client })
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_tls = tls.as_ref().map(|t| &t.client);
        let ports = free_ports(2 * members)?;
        let mut list = Vec::with_capacity(members);
        for i in 0..members {
            let client_url = format!("{scheme}://127.0.0.1:{}", ports[2 * i]);
            let status_client =
                EtcdClient::new(std::slice::from_ref(&client_url), STATUS_TIMEOUT, STATUS_TIMEOUT, client_tls)?;
            list.push(Member {
                name: format!("m{i}"),
                client_url,
                peer_url: format!("{scheme}://127.0.0.1:{}", ports[2 * i + 1]),
                child: None,
                status_client,
            });
        }
        let initial_cluster = list.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
        let mut cluster = EtcdCluster { base_dir: base_dir.to_path_buf(), tls, initial_cluster, members: list };
        for i in 0..members {
            cluster.spawn(i)?;
        }
        cluster.wait_ready(READY_TIMEOUT).await?;
        Ok(cluster)
    }

    /// Client URLs of all members, killed ones included (clients are expected
    /// to fail over between them).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// What clients of this cluster need to connect (`None`: plain HTTP).
    pub fn client_tls(&self) -> Option<ClientTlsConfig> {
        self.tls.as_ref().map(|t| t.client.clone())
    }

    /// SIGKILLs `member` (no chance to flush or hand over leadership) and reaps it.
    pub fn kill(&mut self, member: usize) -> anyhow::Result<()> {
        let m = self.members.get_mut(member).context("no such member")?;
        let mut child = m.child.take().context("member is not running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Starts a killed `member` again on its existing data directory. Returns
    /// once the process is spawned; use [`EtcdCluster::wait_ready`] to wait
    /// for it to rejoin.
    pub fn restart(&mut self, member: usize) -> anyhow::Result<()> {
        let m = self.members.get(member).context("no such member")?;
        ensure!(m.child.is_none(), "member {member} is already running");
        self.spawn(member)
    }

    /// Index of the member that reports itself leader, if any running member does.
    pub async fn leader(&self) -> Option<usize> {
        for (i, m) in self.running() {
            if let Some((id, leader)) = status(&m.status_client).await
                && leader != 0
                && leader == id
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits until every running member answers and all name the same
    /// leader, which is itself running; returns its index. Fails early if a
    /// member process exits on its own.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                bail!("etcd members did not agree on a leader within {timeout:?}; logs in {}", self.base_dir.display());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let mut agreed = None;
        let mut leader_idx = None;
        for (i, m) in self.running() {
            let (id, leader) = status(&m.status_client).await?;
            if leader == 0 || agreed.is_some_and(|l| l != leader) {
                return None;
            }
            agreed = Some(leader);
            if id == leader {
                leader_idx = Some(i);
            }
        }
        leader_idx
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Member)> {
        self.members.iter().enumerate().filter(|(_, m)| m.child.is_some())
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for m in &mut self.members {
            if let Some(child) = &mut m.child
                && let Some(exit) = child.try_wait()?
            {
                m.child = None;
                bail!(
                    "etcd {} exited with {exit}; see {}",
                    m.name,
                    self.base_dir.join(format!("{}.log", m.name)).display()
                );
            }
        }
        Ok(())
    }

    fn spawn(&mut self, member: usize) -> anyhow::Result<()> {
        let m = &self.members[member];
        let log_path = self.base_dir.join(format!("{}.log", m.name));
        // Append: a restarted member's log follows its previous life.
        let log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut cmd = Command::new("etcd");
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.base_dir.join(format!("{}.etcd", m.name)))
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            // Ignored on restart: etcd reads membership from its WAL once it has one.
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "gantry-bench"])
            .stdin(Stdio::null());
        if let Some(tls) = &self.tls {
            let (ca, cert, key) = (&tls.files.ca_cert, &tls.files.cert, &tls.files.key);
            cmd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
            cmd.arg("--peer-cert-file").arg(cert).arg("--peer-key-file").arg(key);
            cmd.arg("--peer-trusted-ca-file").arg(ca).arg("--peer-client-cert-auth");
        }
        cmd.stdout(log.try_clone()?).stderr(log);
        // etcd also reads ETCD_* variables; a developer's own must not change the setup.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd.spawn().context("starting etcd (install it with bench/scripts/install-peers.sh)")?;
        self.members[member].child = Some(child);
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // Best effort: nothing useful to do with a failure while dropping.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `(own member id, leader id)` as one member sees it; `None` if it did not answer in time.
async fn status(client: &EtcdClient) -> Option<(u64, u64)> {
    let mut client = client.clone();
    let status = tokio::time::timeout(STATUS_TIMEOUT, client.status()).await.ok()?.ok()?;
    Some((status.member_id, status.leader))
}

/// `n` distinct ports free right now on 127.0.0.1. etcd cannot listen on
/// port 0 and report back, so we let the kernel pick and release them; all
/// listeners are held together so the ports are distinct.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
    Ok(listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?)
}

fn random_value() -> Vec<u8> {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(VALUE_BYTES).collect()
}

/// Closed-loop puts of unique keys with 200-byte values. Each client has its
/// own connection (balanced over all members) and does one warm-up put first,
/// so connection setup is not in the latencies.
pub async fn bench_writes(
    cluster: &EtcdCluster,
    clients: usize,
    total_ops: usize,
    max_duration: Duration,
) -> anyhow::Result<LoadReport> {
    let endpoints = cluster.endpoints();
    let tls = cluster.client_tls();
    let value = random_value();
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut conn = EtcdClient::new(&endpoints, WRITE_CONNECT_TIMEOUT, WRITE_TIMEOUT, tls.as_ref())?;
        conn.put(format!("bench/warmup/{i}"), value.clone()).await.context("etcd warm-up put")?;
        conns.push(conn);
    }
    // A fresh prefix per run, so runs on one cluster never overwrite each other.
    let prefix = format!("bench/{:08x}", rand::rng().random::<u32>());
    Ok(run_closed_loop(clients, total_ops, max_duration, move |client, seq| {
        let mut conn = conns[client].clone();
        let key = format!("{prefix}/{seq:010}");
        let value = value.clone();
        async move {
            conn.put(key, value).await?;
            Ok(())
        }
    })
    .await)
}

/// Time from SIGKILL of the leader to the first acknowledged put issued after
/// it, seen by a writer that retries across members with a 200 ms per-put
/// timeout. The killed member is restarted and the cluster healed before
/// returning, so the cluster can be reused.
pub async fn bench_failover(cluster: &mut EtcdCluster) -> anyhow::Result<Duration> {
    let leader = cluster.wait_ready(READY_TIMEOUT).await?;
    let (acks, mut acked) = mpsc::channel(64);
    let writer_deadline = Instant::now() + READY_TIMEOUT + FAILOVER_GIVE_UP;
    let writer = tokio::spawn(failover_writer(cluster.endpoints(), cluster.client_tls(), acks, writer_deadline));

    let warm_deadline = Instant::now() + READY_TIMEOUT;
    for _ in 0..FAILOVER_WARMUP_ACKS {
        match tokio::time::timeout_at(warm_deadline, acked.recv()).await {
            Ok(Some(_)) => {}
            _ => bail!("failover writer got no acknowledgements before the kill"),
        }
    }

    // Taken before the signal: a conservative start (includes reaping the process).
    let killed_at = Instant::now();
    cluster.kill(leader)?;
    let failover = loop {
        match tokio::time::timeout_at(killed_at + FAILOVER_GIVE_UP, acked.recv()).await {
            // Acks of puts sent before the kill may come from the old leader: skip them.
            Ok(Some(ack)) if ack.issued >= killed_at => break ack.acked - killed_at,
            Ok(Some(_)) => {}
            Ok(None) => bail!("failover writer stopped"),
            Err(_) => bail!("no etcd put acknowledged within {FAILOVER_GIVE_UP:?} of the kill"),
        }
    };
    drop(acked);
    writer.await?;
    // The ack proves some member led; check it was a new one, not a stale report.
    let new_leader = cluster.leader().await;
    ensure!(new_leader.is_some_and(|l| l != leader), "after killing leader {leader} the leader is {new_leader:?}");

    cluster.restart(leader)?;
    cluster.wait_ready(READY_TIMEOUT).await?;
    Ok(failover)
}

struct Ack {
    issued: Instant,
    acked: Instant,
}

/// Puts in a loop until `deadline` or until nobody listens, moving to the next
/// member whenever a put fails or times out.
async fn failover_writer(
    endpoints: Vec<String>,
    tls: Option<ClientTlsConfig>,
    acks: mpsc::Sender<Ack>,
    deadline: Instant,
) {
    // One single-endpoint client per member, so "retry elsewhere" is explicit.
    let clients: Result<Vec<_>, _> = endpoints
        .iter()
        .map(|e| EtcdClient::new(std::slice::from_ref(e), FAILOVER_OP_TIMEOUT, FAILOVER_OP_TIMEOUT, tls.as_ref()))
        .collect();
    let mut clients = match clients {
        Ok(clients) if !clients.is_empty() => clients,
        _ => return,
    };
    let value = random_value();
    let mut current = 0;
    let mut seq = 0u64;
    while Instant::now() < deadline && !acks.is_closed() {
        seq += 1;
        let issued = Instant::now();
        let put = clients[current].put(format!("bench/failover/{seq:010}"), value.clone());
        match tokio::time::timeout(FAILOVER_OP_TIMEOUT, put).await {
            Ok(Ok(_)) => {
                let ack = Ack { issued, acked: Instant::now() };
                if acks.send(ack).await.is_err() {
                    return;
                }
            }
            _ => current = (current + 1) % clients.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real processes: needs `etcd` (bench/scripts/install-peers.sh). Small
    /// figures, a few seconds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_writes_fails_over_and_heals() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut cluster = EtcdCluster::start(dir.path(), 3, true).await?;
        let leader = cluster.leader().await.context("a started cluster has a leader")?;
        assert_eq!(cluster.endpoints().len(), 3);

        let report = bench_writes(&cluster, 4, 100, Duration::from_secs(20)).await?;
        assert_eq!((report.ops, report.errors), (100, 0));
        assert!(report.p50_us > 0 && report.p50_us <= report.p99_us);

        let failover = bench_failover(&mut cluster).await?;
        assert!(failover < FAILOVER_GIVE_UP);
        // Healed: all three members are back and agree.
        assert_eq!(cluster.running().count(), 3);
        assert!(cluster.leader().await.is_some());

        // kill/restart by hand, including the misuse errors.
        let follower = (leader + 1) % 3;
        cluster.kill(follower)?;
        assert!(cluster.kill(follower).is_err());
        cluster.restart(follower)?;
        assert!(cluster.restart(follower).is_err());
        cluster.wait_ready(READY_TIMEOUT).await?;
        Ok(())
    }

    #[test]
    fn free_ports_are_distinct() -> anyhow::Result<()> {
        let mut ports = free_ports(16)?;
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 16);
        Ok(())
    }
}
