//! The in-process sandbox the API-level integration tests run against: one scheduler
//! replica started inside the test's own tokio runtime, typed gRPC clients for every
//! service, a deadline-bound [`eventually`] for asynchronous outcomes, and request
//! fixtures shared by the test files under `tests/`.
//!
//! ```text
//!   test ── Clients (Bearer token | none | raw header) ──TLS──▶ 127.0.0.1:{api}
//!                                                                   │
//!   Sandbox: tempdir/{data, pki} ── Config ── gantry_scheduler::server::run (tokio task)
//!            single replica, 20 ms raft ticks, tokens for admin / team-a / team-b
//! ```
//!
//! Every sandbox owns its directory and ports, so tests in one binary run in parallel
//! without sharing state. Always finish with [`Sandbox::shutdown`]; dropping a sandbox
//! only cancels it (a panicking test cannot await).

pub mod nodes;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use gantry_domain::{Framework, Image, ImageCoreType, InstanceType};
use gantry_proto::v1::{self as pb, GetClusterStatusRequest, ListImagesRequest, ListInstanceTypesRequest, ReadOptions};
use gantry_scheduler::config::{
    AuthConfig, CatalogConfig, Config, ControllerConfig, EmbeddedGatewayConfig, GangConfig, GrantConfig, MetricsConfig,
    RaftConfig, ReplicaConfig, StorageConfig, TlsConfig, TokenConfig,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Cluster-wide token (project `*`).
pub const ADMIN_TOKEN: &str = "sandbox-admin-0123456789abcdef";
/// Token scoped to [`TEAM_A`].
pub const TEAM_A_TOKEN: &str = "sandbox-team-a-0123456789abcdef";
/// Token scoped to [`TEAM_B`].
pub const TEAM_B_TOKEN: &str = "sandbox-team-b-0123456789abcdef";
/// What agents present to `AgentService/Register`.
pub const JOIN_TOKEN: &str = "sandbox-join-0123456789abcdef";
pub const TEAM_A: &str = "team-a";
pub const TEAM_B: &str = "team-b";

/// Seeded from the default catalog.
pub const CPU_INSTANCE_TYPE: &str = "cpu-small";
pub const CPU_IMAGE: &str = "python311";
/// Added by the sandbox: 2 x A100-80GB, 8 cores, 32 GiB per container.
pub const GPU_INSTANCE_TYPE: &str = "gpu-a100x2";
pub const GPU_MODEL: &str = "A100-80GB";
pub const GPU_IMAGE: &str = "torch-gpu";
pub const GPU_CPU_MILLIS: u64 = 8_000;
pub const GPU_MEMORY_MIB: u64 = 32 * 1024;

/// How long any asynchronous condition may take, generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(25);

/// The channel type every client uses: TLS to the sandbox, plus an `authorization`
/// header (or none).
pub use gantry_chaos::{Authorization, Clients};

/// What tests may vary about a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Silence after which a node is declared DOWN.
    pub node_down_after: Duration,
    /// Serve `/metrics` on a free loopback port (see [`Sandbox::metrics_addr`]).
    pub metrics: bool,
    /// Storage grants seeded at start. By default each team may read `file:///srv` and
    /// write `file:///srv/output` (the paths of [`cpu_training`]).
    pub grants: Vec<GrantConfig>,
    /// Where gangs on several nodes get their ports.
    pub rendezvous_ports: gantry_domain::PortRange,
    /// Run the embedded HTTP gateway on a free loopback port (see
    /// [`Sandbox::gateway_url`]).
    pub gateway: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        let srv = |project: &str| GrantConfig {
            project: project.into(),
            read: vec!["file:///srv".into()],
            write: vec!["file:///srv/output".into()],
        };
        SandboxOptions {
            node_down_after: Duration::from_secs(30),
            metrics: false,
            grants: vec![srv(TEAM_A), srv(TEAM_B)],
            rendezvous_ports: gantry_domain::PortRange::default(),
            gateway: false,
        }
    }
}

/// One scheduler replica running in-process on loopback ports, with TLS and tokens.
pub struct Sandbox {
    api_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    gateway_addr: Option<SocketAddr>,
    ca_cert: std::path::PathBuf,
    channel: Channel,
    cancel: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the replica's files live here.
    _dir: TempDir,
}

impl Sandbox {
    /// Starts the replica and returns once it leads and has seeded its catalog.
    pub async fn start() -> anyhow::Result<Sandbox> {
        Self::start_with(SandboxOptions::default()).await
    }

    /// [`Sandbox::start_with`] with exactly `grants` seeded at startup.
    pub async fn start_with_grants(opts: SandboxOptions, grants: Vec<GrantConfig>) -> anyhow::Result<Sandbox> {
        Self::start_with(SandboxOptions { grants, ..opts }).await
    }

    pub async fn start_with(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        gantry_pki::install_crypto_provider();
        let dir = tempfile::Builder::new().prefix("gantry-sandbox-").tempdir()?;
        let tls = gantry_pki::ensure_dev_pki(&dir.path().join("pki"), &[])?;
        let client_tls = gantry_pki::client_tls_ca_only(&tls.ca_cert, "localhost")?;
        let (listen_api, listen_peer) = free_ports()?;
        let metrics_addr = if opts.metrics { Some(free_ports()?.0) } else { None };
        let gateway_addr = if opts.gateway { Some(free_ports()?.0) } else { None };
        let config = Config {
            replica: ReplicaConfig { id: 1, data_dir: dir.path().join("data"), listen_api, listen_peer },
            // Fast elections; the other raft settings stay at their defaults.
            raft: RaftConfig { tick: Duration::from_millis(20), ..RaftConfig::default() },
            tls: TlsConfig {
                insecure_dev: false,
                ca_cert: Some(tls.ca_cert.clone()),
                cert: Some(tls.cert.clone()),
                key: Some(tls.key.clone()),
                server_names: Vec::new(),
            },
            auth: AuthConfig {
                join_token: JOIN_TOKEN.into(),
                tokens: vec![
                    token("admin", ADMIN_TOKEN, "*"),
                    token(TEAM_A, TEAM_A_TOKEN, TEAM_A),
                    token(TEAM_B, TEAM_B_TOKEN, TEAM_B),
                ],
                bootstrap_admin: false,
                client_config: None,
                ..AuthConfig::default()
            },
            catalog: catalog(),
            controllers: ControllerConfig {
                placement_interval: Duration::from_millis(50),
                node_down_after: opts.node_down_after,
            },
            // No fixed ports: sandboxes run in parallel.
            metrics: MetricsConfig { listen: metrics_addr },
            storage: StorageConfig { grants: opts.grants.clone() },
            gangs: GangConfig { rendezvous_ports: opts.rendezvous_ports },
            gateway: EmbeddedGatewayConfig {
                embedded: gateway_addr.is_some(),
                listen: gateway_addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
                inference_log_dir: Some(dir.path().join("inference-logs")),
                public_url: None,
            },
            // A single replica (no peers); anything newer at its default.
            ..Config::default()
        };

        let cancel = CancellationToken::new();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(gantry_scheduler::server::run(config, cancel.clone(), move || {
            let _ = ready_tx.send(());
        }));
        let channel = Endpoint::from_shared(format!("https://{listen_api}"))?
            .tls_config(client_tls)?
            .connect_timeout(Duration::from_secs(5))
            .timeout(DEADLINE)
            .connect_lazy();
        let ca_cert = tls.ca_cert.clone();
        let mut sandbox = Sandbox {
            api_addr: listen_api,
            metrics_addr,
            gateway_addr,
            ca_cert,
            channel,
            cancel,
            server: Some(server),
            _dir: dir,
        };

        match tokio::time::timeout(DEADLINE, ready_rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(sandbox.exit_error().await.context("scheduler exited before listening")),
            Err(_) => anyhow::bail!("scheduler did not start listening within {DEADLINE:?}"),
        }
        sandbox.wait_ready(&opts.grants).await?;
        Ok(sandbox)
    }

    /// Leader elected and every configured catalog entry replicated.
    async fn wait_ready(&self, grants: &[GrantConfig]) -> anyhow::Result<()> {
        let admin = self.admin();
        let granted: Vec<String> = grants.iter().map(|g| g.project.clone()).collect();
        let exited = || self.server.as_ref().is_none_or(JoinHandle::is_finished);
        eventually("a leader and the seeded catalog", || {
            let mut admin = admin.clone();
            let granted = granted.clone();
            async move {
                anyhow::ensure!(!exited(), "the scheduler task exited");
                let status = admin.cluster.get_status(GetClusterStatusRequest {}).await?.into_inner();
                anyhow::ensure!(status.leader_id != 0, "no leader yet (role {})", status.role);
                let types = admin.catalog.list_instance_types(ListInstanceTypesRequest::default()).await?.into_inner();
                let images = admin.catalog.list_images(ListImagesRequest::default()).await?.into_inner();
                let want = catalog();
                let have_types: Vec<&str> = types.instance_types.iter().map(|t| t.name.as_str()).collect();
                let have_images: Vec<&str> = images.images.iter().map(|i| i.name.as_str()).collect();
                anyhow::ensure!(
                    want.instance_types.iter().all(|t| have_types.contains(&t.name.as_str()))
                        && want.images.iter().all(|i| have_images.contains(&i.name.as_str())),
                    "catalog not seeded yet: instance types {have_types:?}, images {have_images:?}"
                );
                let projects = admin
                    .projects
                    .list_storage_grants(pb::ListStorageGrantsRequest::default())
                    .await?
                    .into_inner()
                    .projects;
                let have: Vec<&str> = projects.iter().map(|p| p.project.as_str()).collect();
                anyhow::ensure!(granted.iter().all(|p| have.contains(&p.as_str())), "grants not seeded yet: {have:?}");
                Ok(())
            }
        })
        .await
    }

    /// The error the server task ended with (it must have ended or be about to).
    async fn exit_error(&mut self) -> anyhow::Error {
        match self.server.take() {
            Some(handle) => match tokio::time::timeout(DEADLINE, handle).await {
                Ok(Ok(Err(e))) => e,
                Ok(Ok(Ok(()))) => anyhow::anyhow!("scheduler returned without error"),
                Ok(Err(join)) => anyhow::anyhow!("scheduler task failed: {join}"),
                Err(_) => anyhow::anyhow!("scheduler task did not finish"),
            },
            None => anyhow::anyhow!("scheduler task already awaited"),
        }
    }

    /// The CA that signed the replica's certificate (its key lies beside it, so the
    /// replica signs node certificates).
    pub fn ca_cert(&self) -> &std::path::Path {
        &self.ca_cert
    }

    /// The embedded gateway's base URL, when the options asked for it.
    pub fn gateway_url(&self) -> Option<String> {
        self.gateway_addr.map(|a| format!("http://{a}"))
    }

    /// Where the embedded gateway writes inference logs (one JSON-lines file per endpoint).
    pub fn inference_log_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("inference-logs")
    }

    /// The admin API address (TLS; the certificate names `localhost` and `127.0.0.1`).
    /// Where `/metrics` is served, when the options asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Clients presenting `authorization: Bearer {token}`.
    pub fn clients(&self, token: &str) -> Clients {
        match Authorization::bearer(token) {
            Ok(auth) => Clients::new(self.channel.clone(), auth),
            Err(e) => panic!("token {token:?}: {e}; use with_authorization"),
        }
    }

    /// Clients presenting exactly `value` as the `authorization` header.
    pub fn with_authorization(&self, value: AsciiMetadataValue) -> Clients {
        Clients::new(self.channel.clone(), Authorization::raw(value))
    }

    /// Clients presenting no `authorization` header at all.
    pub fn anonymous(&self) -> Clients {
        Clients::new(self.channel.clone(), Authorization::none())
    }

    /// The TLS channel to the replica's API port, without any authorization header.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Replaces `project`'s storage grants (through the API, as an operator would).
    pub async fn grant(&self, project: &str, read: &[&str], write: &[&str]) -> anyhow::Result<()> {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let grants = pb::StorageGrants { read: strings(read), write: strings(write) };
        let request = pb::SetStorageGrantsRequest { project: project.into(), grants: Some(grants) };
        self.admin().projects.set_storage_grants(request).await?;
        Ok(())
    }

    pub fn admin(&self) -> Clients {
        self.clients(ADMIN_TOKEN)
    }

    pub fn team_a(&self) -> Clients {
        self.clients(TEAM_A_TOKEN)
    }

    pub fn team_b(&self) -> Clients {
        self.clients(TEAM_B_TOKEN)
    }

    /// Cancels the replica and waits for every one of its tasks to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let Some(handle) = self.server.take() else { return Ok(()) };
        match tokio::time::timeout(DEADLINE, handle).await {
            Ok(joined) => joined.context("scheduler task panicked")?.context("scheduler returned an error"),
            Err(_) => anyhow::bail!("scheduler did not shut down within {DEADLINE:?}"),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn token(name: &str, token: &str, project: &str) -> TokenConfig {
    TokenConfig { name: name.into(), token: token.into(), project: project.into() }
}

/// The default catalog plus one GPU instance type and one GPU image.
fn catalog() -> CatalogConfig {
    let mut catalog = CatalogConfig::default();
    catalog.instance_types.push(InstanceType {
        name: GPU_INSTANCE_TYPE.into(),
        cpu_millis: GPU_CPU_MILLIS,
        memory_mib: GPU_MEMORY_MIB,
        gpu_count: 2,
        gpu_model: Some(GPU_MODEL.into()),
    });
    catalog.images.push(Image {
        name: GPU_IMAGE.into(),
        reference: "gantry/torch:2.3-gpu".into(),
        core_type: ImageCoreType::Gpu,
        framework: Framework::Pytorch,
        framework_version: "2.3".into(),
        python_version: "3.11".into(),
    });
    catalog
}

/// Two distinct free loopback ports. Both listeners are held until both are picked,
/// then released for the scheduler to bind.
fn free_ports() -> std::io::Result<(SocketAddr, SocketAddr)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?, b.local_addr()?))
}

/// Polls `probe` until it returns `Ok`, or fails after [`DEADLINE`] with the last
/// thing the probe saw. An `Err` from the probe means "not yet" (RPC errors included).
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    eventually_within(DEADLINE, what, probe).await
}

/// [`eventually`] with a deadline of `within` (for slow outcomes: containers, trainings).
pub async fn eventually_within<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "the last probe itself did not finish".to_string(),
        };
        if tokio::time::Instant::now() + POLL_EVERY >= deadline {
            anyhow::bail!("timed out after {within:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Asserts that `result` failed with `code` and returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, code: Code, what: &str) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        Err(status) => panic!("{what}: expected {code:?}, got {:?}: {}", status.code(), status.message()),
        Ok(response) => panic!("{what}: expected {code:?}, got success: {:?}", response.into_inner()),
    }
}

/// Asserts an `InvalidArgument` whose message starts with `{field}:`.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, field: &str, what: &str) {
    let status = expect_code(result, Code::InvalidArgument, what);
    assert!(
        status.message().starts_with(&format!("{field}:")),
        "{what}: expected the message to start with '{field}:', got: {}",
        status.message()
    );
}

/// Asserts success and returns the message.
#[track_caller]
pub fn expect_ok<T>(result: Result<tonic::Response<T>, Status>, what: &str) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what}: expected success, got {:?}: {}", status.code(), status.message()),
    }
}

/// `ReadOptions` asking for a stale (local, no ReadIndex) read.
pub fn stale() -> Option<ReadOptions> {
    Some(ReadOptions { stale: true })
}

/// A header value that is not valid UTF-8 (allowed on the wire as obs-text).
pub fn non_ascii_header() -> AsciiMetadataValue {
    match MetadataValue::try_from(&b"Bearer \xff\xfe-token"[..]) {
        Ok(value) => value,
        Err(e) => panic!("obs-text header value: {e}"),
    }
}

/// A valid CPU training of the default catalog, in experiment `experiment`.
pub fn cpu_training(name: &str, experiment: &str) -> pb::TrainingSpec {
    pb::TrainingSpec {
        name: name.into(),
        experiment: experiment.into(),
        algorithm_path: "file:///srv/algorithms/mnist".into(),
        entry_point: "train.py".into(),
        image: CPU_IMAGE.into(),
        instance_type: CPU_INSTANCE_TYPE.into(),
        instance_count: 1,
        nproc_per_node: 1,
        output_path: "file:///srv/output/mnist".into(),
        timeout_minutes: 60,
        use_log: true,
        ..Default::default()
    }
}

/// A valid GPU training on [`GPU_INSTANCE_TYPE`] with a gang of `instance_count`.
pub fn gpu_training(name: &str, experiment: &str, instance_count: u32) -> pb::TrainingSpec {
    pb::TrainingSpec {
        image: GPU_IMAGE.into(),
        instance_type: GPU_INSTANCE_TYPE.into(),
        instance_count,
        ..cpu_training(name, experiment)
    }
}

pub fn create_training(project: &str, spec: pb::TrainingSpec) -> pb::CreateTrainingRequest {
    pb::CreateTrainingRequest { project: project.into(), spec: Some(spec), request_id: String::new() }
}

pub fn create_experiment(project: &str, name: &str) -> pb::CreateExperimentRequest {
    pb::CreateExperimentRequest { project: project.into(), name: name.into(), ..Default::default() }
}

/// Registration of a node with `gpus` A100-80GB GPUs, 32 cores and 128 GiB, using the
/// right join token. GPU uuids are `GPU-{hostname}-{i}`.
pub fn gpu_node(hostname: &str, gpus: usize) -> pb::RegisterNodeRequest {
    pb::RegisterNodeRequest {
        hostname: hostname.into(),
        address: "127.0.0.1".into(),
        inventory: Some(pb::NodeInventory {
            cpu_millis: 32_000,
            memory_mib: 128 * 1024,
            disk_mib: 1024 * 1024,
            gpus: (0..gpus)
                .map(|i| pb::Gpu { uuid: format!("GPU-{hostname}-{i}"), model: GPU_MODEL.into(), memory_mib: 81_920 })
                .collect(),
        }),
        join_token: JOIN_TOKEN.into(),
        csr_pem: String::new(),
    }
}

/// Polls `GetTraining` until `done` holds for it, and returns it.
pub async fn wait_for_training(
    clients: &Clients,
    project: &str,
    name: &str,
    what: &str,
    done: impl Fn(&pb::Training) -> bool,
) -> anyhow::Result<pb::Training> {
    let done = &done;
    eventually(&format!("training '{name}': {what}"), || {
        let mut trainings = clients.trainings.clone();
        let request = pb::GetTrainingRequest { project: project.into(), name: name.into(), read: None };
        async move {
            let t = trainings.get_training(request).await?.into_inner();
            anyhow::ensure!(
                done(&t),
                "status {:?}, reason {:?}, assignments {:?}",
                t.status,
                t.status_reason,
                t.assignments
            );
            Ok(t)
        }
    })
    .await
}
