//! A local etcd cluster of real `etcd` processes on 127.0.0.1, and the
//! replicated-write benchmarks Gantry is compared against.
//!
//! ```text
//!   EtcdCluster ──spawn──▶ etcd m0, m1, m2   (data + log under base_dir)
//!        │                      ▲
//!        └─status polls─────────┘   bench_writes ──puts──▶ member c % n, one connection each
//! ```
//!
//! Members run with etcd's own defaults for everything that affects durability
//! (the WAL is fsynced before every commit is acknowledged) and, unless the caller
//! passes timing flags (the failover benchmark's "same settings"), for timing too.
//! The base directory must be on a real disk: on tmpfs fsync is free and the
//! comparison would flatter etcd (`durability.rs` checks both).
//! Needs the `etcd` binary on PATH (`bench/scripts/install-peers.sh`). Clients
//! speak etcd's gRPC API over plain HTTP/2 through `etcd/client.rs`, our own minimal
//! client, so building the crate needs no `protoc`.

mod client;

pub use self::client::{EtcdClient, put_request_len};

use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use gantry_pki::TlsFiles;
use rand::Rng;
use tokio::time::Instant;
use tonic::transport::ClientTlsConfig;

use crate::load::{LoadReport, run_closed_loop};

/// How long a fresh or healed cluster may take to agree on a leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one status poll, so a killed or wedged member cannot stall polling.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Connect and per-request timeout of the benchmark writers' clients.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running local etcd cluster. Dropping it SIGKILLs every member.
pub struct EtcdCluster {
    base_dir: PathBuf,
    /// TLS on client and peer links (as Gantry always has), or plain HTTP.
    tls: Option<EtcdTls>,
    initial_cluster: String,
    /// Passed to every member on every start (timing flags; never durability ones).
    flags: Vec<String>,
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
        Self::start_with_flags(base_dir, members, tls, &[]).await
    }

    /// [`EtcdCluster::start`] with `flags` added to every member's command line.
    pub async fn start_with_flags(
        base_dir: &Path,
        members: usize,
        tls: bool,
        flags: &[String],
    ) -> anyhow::Result<EtcdCluster> {
        ensure!(members > 0, "an etcd cluster needs at least one member");
        ensure!(
            !flags.iter().any(|f| f.contains("fsync")),
            "fsync flags are not allowed: the comparison is with etcd's durable default"
        );
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
        let mut cluster = EtcdCluster {
            base_dir: base_dir.to_path_buf(),
            tls,
            initial_cluster,
            flags: flags.to_vec(),
            members: list,
        };
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

    /// Number of members, killed ones included.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Process id of `member`, while it runs.
    pub fn pid(&self, member: usize) -> Option<u32> {
        self.members.get(member)?.child.as_ref().map(Child::id)
    }

    /// Where `member` keeps its WAL and snapshots.
    pub fn data_dir(&self, member: usize) -> PathBuf {
        self.base_dir.join(format!("m{member}.etcd"))
    }

    /// A client with one connection to `member` only; `timeout` bounds connecting and
    /// each request.
    pub fn member_client(&self, member: usize, timeout: Duration) -> anyhow::Result<EtcdClient> {
        let m = self.members.get(member).context("no such member")?;
        let tls = self.client_tls();
        Ok(EtcdClient::new(std::slice::from_ref(&m.client_url), timeout, timeout, tls.as_ref())?)
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
            .arg(self.data_dir(member))
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            // Ignored on restart: etcd reads membership from its WAL once it has one.
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "gantry-bench"])
            .args(&self.flags)
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

/// `len` random alphanumeric bytes.
pub fn random_value(len: usize) -> Vec<u8> {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).collect()
}

/// The output of the installed `etcd --help` (it states the defaults).
pub fn help() -> anyhow::Result<String> {
    let out = Command::new("etcd")
        .arg("--help")
        .output()
        .context("running `etcd --help` (install etcd with bench/scripts/install-peers.sh)")?;
    // etcd 3.4 prints its help to stderr.
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A unique key of fixed length (25 bytes) for `seq` under `prefix` (8 hex digits).
fn key(prefix: u32, seq: usize) -> String {
    format!("bench/{prefix:08x}/{seq:010}")
}

/// The value length that makes a put of a [`key`] `request_bytes` long on the wire
/// (protobuf), so both systems carry requests of one size. One byte more where a
/// length prefix grows by a byte and the exact size cannot be hit.
pub fn value_len_for(request_bytes: usize) -> anyhow::Result<usize> {
    let key_len = key(0, 0).len();
    ensure!(put_request_len(key_len, 0) <= request_bytes, "an etcd put of a bench key is over {request_bytes} bytes");
    Ok((0..=request_bytes).find(|&v| put_request_len(key_len, v) >= request_bytes).unwrap_or(request_bytes))
}

/// Bytes of every put [`bench_writes`] sends for requests of `request_bytes`.
pub fn put_len_for(request_bytes: usize) -> anyhow::Result<usize> {
    Ok(put_request_len(key(0, 0).len(), value_len_for(request_bytes)?))
}

/// Closed-loop puts of unique keys, each request `request_bytes` long. Client `c` has
/// its own connection, to member `c % members` (followers forward to the leader), and
/// does one warm-up put first, so connection setup is not in the latencies.
pub async fn bench_writes(
    cluster: &EtcdCluster,
    clients: usize,
    total_ops: usize,
    max_duration: Duration,
    request_bytes: usize,
) -> anyhow::Result<LoadReport> {
    let value = random_value(value_len_for(request_bytes)?);
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut conn = cluster.member_client(i % cluster.len(), WRITE_TIMEOUT)?;
        conn.put(format!("bench/warmup/{i}"), value.clone()).await.context("etcd warm-up put")?;
        conns.push(conn);
    }
    // A fresh prefix per run, so runs on one cluster never overwrite each other.
    let prefix = rand::rng().random::<u32>();
    Ok(run_closed_loop(clients, total_ops, max_duration, move |client, seq| {
        let mut conn = conns[client].clone();
        let key = key(prefix, seq);
        let value = value.clone();
        async move {
            conn.put(key, value).await?;
            Ok(())
        }
    })
    .await)
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

        let report = bench_writes(&cluster, 4, 100, Duration::from_secs(20), 200).await?;
        assert_eq!((report.ops, report.errors), (100, 0));
        assert!(report.p50_us > 0 && report.p50_us <= report.p99_us);
        assert!(cluster.pid(leader).is_some());

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
    fn puts_are_sized_to_the_byte() -> anyhow::Result<()> {
        for bytes in 40..1000 {
            let len = put_len_for(bytes)?;
            assert!(len == bytes || len == bytes + 1, "{bytes} -> {len}");
        }
        assert_eq!(put_len_for(200)?, 200);
        assert!(value_len_for(10).is_err(), "smaller than the key alone");
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
