//! [`ProcessCluster`]: N `gantry-scheduler` replicas as child processes on loopback.
//!
//! ```text
//!   base dir (tempdir, kept with GANTRY_KEEP_CHAOS_DIR=1 when a test fails)
//!   ├── pki/                     one dev CA + one replica certificate per replica
//!   │                            (replica-{id}.pem: localhost, 127.0.0.1), unless
//!   │                            ClusterOptions::replica_tls brings its own
//!   └── replica-{id}/
//!       ├── scheduler.toml       explicit config: ports, peers, TLS, tokens, raft
//!       ├── scheduler.log        stdout + stderr of every incarnation, appended
//!       └── data/                raft log + snapshots (what `wipe` deletes)
//! ```
//!
//! Every method takes `&self`, so a workload and a fault schedule can share one cluster
//! through an `Arc`. Dropping the cluster SIGKILLs every replica; after a failure (the
//! thread is panicking, or a cluster method returned an error) it also prints the base
//! dir, the seed and each replica's log tail.
//!
//! Lifecycle and faults are here; status, waits and logs in `cluster/observe.rs`.

mod disk;
mod faults;
mod network_faults;
mod observe;
mod setup;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use gantry_pki::TlsFiles;
use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::clients::{Authorization, Clients};
use crate::hosts::{FakeClock, HostNetwork, SmallDisk};

/// Cluster-wide token (project `*`) every cluster is configured with; [`ProcessCluster::client`]
/// presents it.
pub const ADMIN_TOKEN: &str = "chaos-admin-0123456789abcdef";
/// The agents' join token every cluster is configured with.
pub const JOIN_TOKEN: &str = "chaos-join-0123456789abcdef";

/// Set to keep the base dir of a failed run.
pub const KEEP_DIR_ENV: &str = "GANTRY_KEEP_CHAOS_DIR";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fresh or restarted process may take until its API answers.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replica may take to exit after SIGTERM (graceful drain) or SIGKILL.
const TERM_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(25);
/// Log lines printed per replica when a test panics.
const PANIC_LOG_LINES: usize = 40;

/// How to build a cluster. `Default` is three replicas with the scheduler's default raft
/// timing and no tokens besides [`ADMIN_TOKEN`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub replicas: usize,
    /// `[raft] snapshot_every`: snapshot and compact after this many applied entries.
    pub snapshot_every: u64,
    /// Extra API tokens: (name, token, project or `*`). [`ADMIN_TOKEN`] is always added.
    pub tokens: Vec<(String, String, String)>,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// `GANTRY_LOG` for the replicas.
    pub log_filter: String,
    /// The run's seed, printed with the base dir on failure paths.
    pub seed: Option<u64>,
    /// Each replica's own TLS files, index `i` for raft id `i + 1` (e.g. made with
    /// `gantryctl pki`); their certificates must be valid for `localhost` and
    /// `127.0.0.1`. `None`: a development CA in `{base}/pki` issues one replica
    /// certificate per replica.
    pub replica_tls: Option<Vec<TlsFiles>>,
    /// Run every replica on its own "host" (network namespace) of a private bridge, so
    /// that [`ProcessCluster::partition`] can cut the network (needs root). `false`:
    /// loopback ports in the test's namespace.
    pub namespaces: bool,
    /// With `namespaces`: extra hosts after the replicas' (for agents).
    pub agent_hosts: usize,
    /// Start every replica on a libfaketime clock that [`ProcessCluster::jump_clock`]
    /// moves.
    pub fake_clocks: bool,
    /// Give every replica's data dir a loop-mounted ext4 of this many MiB, that
    /// [`ProcessCluster::fill_disk`] fills (needs root).
    pub small_disk_mib: Option<u64>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            replicas: 3,
            snapshot_every: 10_000,
            tokens: Vec::new(),
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_filter: "info".into(),
            seed: None,
            replica_tls: None,
            namespaces: false,
            agent_hosts: 0,
            fake_clocks: false,
            small_disk_mib: None,
        }
    }
}

struct Replica {
    id: u64,
    api: SocketAddr,
    peer: SocketAddr,
    tls: TlsFiles,
    dir: PathBuf,
    data_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    channel: Channel,
    /// The running incarnation, if any. std Mutex: never held across an await.
    process: Mutex<Process>,
    clock: Mutex<Option<FakeClock>>,
}

#[derive(Default)]
struct Process {
    child: Option<Child>,
    incarnation: u32,
}

/// A running cluster of scheduler processes. See the module docs.
pub struct ProcessCluster {
    /// Unmounted in Drop, before the base dir is removed.
    disks: Mutex<Vec<SmallDisk>>,
    net: Option<HostNetwork>,
    dir: TempDir,
    /// Set on a failure path: with [`KEEP_DIR_ENV`], Drop keeps the base dir.
    failed: AtomicBool,
    binary: PathBuf,
    log_filter: String,
    seed: Option<u64>,
    replicas: Vec<Replica>,
}

impl ProcessCluster {
    /// Creates the base dir, PKI and configs, starts every replica and returns once each
    /// one's API answers (not necessarily with a leader elected: see
    /// [`ProcessCluster::wait_for_leader`]).
    pub async fn start(options: ClusterOptions) -> anyhow::Result<ProcessCluster> {
        anyhow::ensure!(options.replicas > 0, "a cluster needs at least one replica");
        gantry_pki::install_crypto_provider();
        let binary = crate::binary::scheduler_binary()?;
        let dir = tempfile::Builder::new().prefix("gantry-chaos-").tempdir().context("cannot create the base dir")?;
        let base = dir.path().to_path_buf();
        let seed = options.seed;
        let cluster = Self::prepare(dir, binary, &options);
        let cluster = match cluster {
            Ok(c) => c,
            Err(e) => {
                return Err(e.context(format!(
                    "starting a {}-replica cluster in {} (seed {seed:?})",
                    options.replicas,
                    base.display()
                )));
            }
        };
        let started = async {
            for i in 0..cluster.replicas.len() {
                cluster.spawn(i)?;
            }
            for i in 0..cluster.replicas.len() {
                cluster.wait_answering(i, 0).await?;
            }
            anyhow::Ok(())
        }
        .await;
        match started {
            Ok(()) => {
                tracing::info!(base = %cluster.base_dir().display(), seed = ?seed, "chaos cluster started");
                Ok(cluster)
            }
            Err(e) => {
                let context = format!("starting {}\n{}", cluster.describe(), cluster.log_tails(PANIC_LOG_LINES));
                cluster.mark_failed();
                Err(e.context(context))
            }
        }
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Raft id of replica `i` (`i + 1`).
    pub fn replica_id(&self, i: usize) -> u64 {
        self.replicas[i].id
    }

    /// Replica index of raft id `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.replicas.iter().position(|r| r.id == id)
    }

    pub fn base_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replica 0's CA, certificate and key. Every replica trusts the same CA (for
    /// suites that start agents too); the certificate is replica 0's own.
    pub fn tls_files(&self) -> &TlsFiles {
        &self.replicas[0].tls
    }

    /// Replica `i`'s CA, certificate and key.
    pub fn replica_tls(&self, i: usize) -> &TlsFiles {
        &self.replicas[i].tls
    }

    /// `https://127.0.0.1:{port}` of replica `i`'s raft peer port (mutual TLS, replica
    /// certificates only).
    pub fn peer_url(&self, i: usize) -> String {
        format!("https://{}", self.replicas[i].peer)
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.replicas[i].data_dir
    }

    pub fn log_path(&self, i: usize) -> &Path {
        &self.replicas[i].log
    }

    /// `https://127.0.0.1:{port}` of replica `i`'s API (certificate name: `localhost`).
    pub fn api_url(&self, i: usize) -> String {
        format!("https://{}", self.replicas[i].api)
    }

    /// "base dir …, seed …": for failure messages.
    pub fn describe(&self) -> String {
        let seed = self.seed.map_or_else(|| "none".to_string(), |s| s.to_string());
        format!("chaos cluster in {} (seed {seed}; {KEEP_DIR_ENV}=1 keeps it)", self.base_dir().display())
    }

    /// Admin clients for replica `i` (TLS, [`ADMIN_TOKEN`]; connect timeout 1 s, request
    /// timeout 5 s). The channel survives restarts of the replica.
    pub fn client(&self, i: usize) -> Clients {
        self.client_as(i, ADMIN_TOKEN).unwrap_or_else(|e| unreachable!("the admin token is a valid header: {e}"))
    }

    /// Clients for replica `i` presenting `token`.
    pub fn client_as(&self, i: usize, token: &str) -> anyhow::Result<Clients> {
        Ok(Clients::new(self.replicas[i].channel.clone(), Authorization::bearer(token)?))
    }

    fn process(&self, i: usize) -> MutexGuard<'_, Process> {
        match self.replicas[i].process.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether replica `i`'s process is alive (started and not exited).
    pub fn is_running(&self, i: usize) -> bool {
        let mut p = self.process(i);
        match p.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) | None => false,
        }
    }

    /// Indexes of the replicas whose process is alive.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_running(i)).collect()
    }

    fn spawn(&self, i: usize) -> anyhow::Result<()> {
        let r = &self.replicas[i];
        let mut p = self.process(i);
        if let Some(child) = p.child.as_mut() {
            anyhow::ensure!(!matches!(child.try_wait(), Ok(None)), "replica {i} (id {}) is already running", r.id);
        }
        p.incarnation += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .with_context(|| format!("cannot open {}", r.log.display()))?;
        writeln!(log, "===== chaos: starting replica {} (index {i}), incarnation {} =====", r.id, p.incarnation)?;
        let stderr = log.try_clone()?;
        let mut cmd = self.command(i);
        cmd.arg("--config")
            .arg(&r.config)
            .env("GANTRY_LOG", &self.log_filter)
            // Plain text logs: they are read by people and by `panics`.
            .env("NO_COLOR", "1")
            .current_dir(&r.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        // The config file is the whole truth: no override from the test's environment.
        for var in [
            "GANTRY_CONFIG_FILE",
            "GANTRY_LOG_JSON",
            "GANTRY_REPLICA_ID",
            "GANTRY_DATA_DIR",
            "GANTRY_LISTEN_API",
            "GANTRY_LISTEN_PEER",
            "GANTRY_INSECURE_DEV",
            "GANTRY_JOIN_TOKEN",
            "GANTRY_CLIENT_CONFIG",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd.spawn().with_context(|| format!("cannot spawn {}", self.binary.display()))?;
        tracing::info!(replica = r.id, pid = child.id(), incarnation = p.incarnation, "replica started");
        p.child = Some(child);
        Ok(())
    }

    /// Waits until replica `i` answers `GetStatus`, failing early if its process exits
    /// or logs a panic beyond the `panics_before` it had logged before this start.
    async fn wait_answering(&self, i: usize, panics_before: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.is_running(i) {
                anyhow::bail!(
                    "replica {i} (id {}) exited while starting; log tail:\n{}",
                    self.replicas[i].id,
                    self.log_tail(i, PANIC_LOG_LINES)
                );
            }
            let panics = self.panics(i);
            if panics.len() > panics_before {
                anyhow::bail!(
                    "replica {i} (id {}) panicked while starting:\n  {}\nlog tail:\n{}",
                    self.replicas[i].id,
                    panics[panics_before..].join("\n  "),
                    self.log_tail(i, PANIC_LOG_LINES)
                );
            }
            let last = match tokio::time::timeout(Duration::from_secs(2), self.status(i)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => "GetStatus did not answer within 2s".to_string(),
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "replica {i} (id {}) did not answer within {START_TIMEOUT:?}; last: {last}; log tail:\n{}",
                    self.replicas[i].id,
                    self.log_tail(i, PANIC_LOG_LINES)
                );
            }
            tokio::time::sleep(POLL_EVERY * 4).await;
        }
    }

    /// Starts replica `i` again (same config, ports and data dir) and waits until its API
    /// answers. Precondition: it is stopped ([`ProcessCluster::kill`] or
    /// [`ProcessCluster::terminate`]).
    pub async fn restart(&self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_running(i), "restart: replica {i} is still running; kill or terminate it first");
        let _ = self.take_child(i);
        let panics_before = self.panics(i).len();
        let result = match self.spawn(i) {
            Ok(()) => self.wait_answering(i, panics_before).await,
            Err(e) => Err(e),
        };
        self.failing(result.with_context(|| format!("restarting replica {i}; {}", self.describe())))
    }

    /// SIGTERMs every replica and waits for each to exit cleanly; the first failure is
    /// returned after all were stopped.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let mut first_err = None;
        for i in 0..self.len() {
            if let Err(e) = self.terminate(i).await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => {
                self.mark_failed();
                Err(e.context(self.describe()))
            }
        }
    }

    /// Records that the run failed without panicking (e.g. an error returned to the
    /// test), so that Drop keeps the base dir when [`KEEP_DIR_ENV`] is set.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    fn failing<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        if result.is_err() {
            self.mark_failed();
        }
        result
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            if let Some(mut child) = self.take_child(i) {
                let _ = Self::signal(&child, Signal::SIGKILL);
                // After SIGKILL the exit is immediate; blocking here is brief.
                let _ = child.wait();
            }
        }
        match self.disks.lock() {
            Ok(mut d) => d.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
        let keep = std::env::var_os(KEEP_DIR_ENV).is_some_and(|v| !v.is_empty());
        let failed = std::thread::panicking() || self.failed.load(Ordering::Relaxed);
        if failed {
            eprintln!("{}\n{}", self.describe(), self.log_tails(PANIC_LOG_LINES));
        }
        if keep && failed {
            self.dir.disable_cleanup(true);
            eprintln!("chaos: kept {}", self.base_dir().display());
        }
    }
}

fn channel(api: SocketAddr, tls: &ClientTlsConfig) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("https://{api}"))?
        .tls_config(tls.clone())?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}
