//! The kit of the node tests: a sandbox scheduler, real `gantry-agent` processes on the
//! machine's Docker engine, a storage directory for algorithms, datasets and outputs
//! (`file://` paths), and checks against the engine itself.
//!
//! ```text
//!   NodeKit ── Sandbox (in-process scheduler, TLS, tokens)
//!      ├──── AgentProcess × n  (real processes; SIGKILL-able)  ──► Docker engine
//!      └──── DockerRuntime (the tests' own view of the engine, by the cluster label)
//! ```
//!
//! Every kit has a unique cluster label, so parallel tests never see each other's
//! containers; [`NodeKit::finish`] (or, failing that, drop) removes them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_agent::runtime::{ContainerInfo, ContainerRuntime, DockerConfig, DockerRuntime, LabelSelector, labels};
use gantry_chaos::{AgentOptions, AgentProcess};
use gantry_proto::v1::{self as pb, GetNodeRequest, GetTrainingRequest, TrainingLogsRequest};
use gantry_scheduler::config::GrantConfig;
use tempfile::TempDir;

pub use crate::eventually_within as wait_for;

use crate::{ADMIN_TOKEN, Clients, JOIN_TOKEN, Sandbox, SandboxOptions, TEAM_A};

/// The image every node test runs (built by `deploy/images/build.sh`).
pub const PYTHON_IMAGE: &str = "gantry/python:3.11";

pub struct NodeKit {
    /// Taken by [`NodeKit::finish`].
    sandbox: Option<Sandbox>,
    pub cluster: String,
    pub docker: DockerRuntime,
    agents: Vec<AgentProcess>,
    storage: TempDir,
}

impl NodeKit {
    /// A kit whose team-a may read and write its storage directory.
    pub async fn start(mut opts: SandboxOptions) -> anyhow::Result<NodeKit> {
        let docker = DockerRuntime::connect(&DockerConfig::default()).await.context("the tests need Docker")?;
        ensure_image(&docker).await?;
        let storage = tempfile::Builder::new().prefix("gantry-nodes-").tempdir()?;
        let root = format!("file://{}", storage.path().display());
        opts.grants = vec![GrantConfig { project: TEAM_A.into(), read: vec![], write: vec![root] }];
        let sandbox = Sandbox::start_with(opts).await?;
        let cluster = format!("t{:016x}", rand::random::<u64>());
        Ok(NodeKit { sandbox: Some(sandbox), cluster, docker, agents: Vec::new(), storage })
    }

    /// The kit's storage directory (granted to [`TEAM_A`]).
    pub fn storage_root(&self) -> &std::path::Path {
        self.storage.path()
    }

    pub fn sandbox(&self) -> &Sandbox {
        match &self.sandbox {
            Some(s) => s,
            None => panic!("the kit has finished"),
        }
    }

    pub fn admin(&self) -> Clients {
        self.sandbox().clients(ADMIN_TOKEN)
    }

    /// Starts an agent named `name` and waits until its node is READY with a session.
    pub async fn add_agent(&mut self, name: &str, extra_toml: &str) -> anyhow::Result<usize> {
        self.add_agent_with_env(name, extra_toml, Vec::new()).await
    }

    /// [`NodeKit::add_agent`] with extra environment variables for the agent process.
    pub async fn add_agent_with_env(
        &mut self,
        name: &str,
        extra_toml: &str,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<usize> {
        let agent = AgentProcess::start(&AgentOptions {
            node_name: name.into(),
            cluster: self.cluster.clone(),
            schedulers: vec![format!("https://{}", self.sandbox().api_addr())],
            join_token: JOIN_TOKEN.into(),
            ca_cert: self.sandbox().ca_cert().to_path_buf(),
            extra_toml: extra_toml.into(),
            heartbeat_interval: Duration::from_millis(500),
            env,
            netns: None,
        })?;
        self.agents.push(agent);
        let i = self.agents.len() - 1;
        self.wait_node_connected(name, i).await?;
        Ok(i)
    }

    pub fn agent(&self, i: usize) -> &AgentProcess {
        &self.agents[i]
    }

    /// Waits until node `name` is READY and connected to the scheduler.
    pub async fn wait_node_connected(&self, name: &str, agent: usize) -> anyhow::Result<pb::Node> {
        let admin = self.admin();
        let log = || self.agents[agent].log();
        wait_for(Duration::from_secs(60), &format!("node {name} READY and connected"), || {
            let mut admin = admin.clone();
            async move {
                let node = admin.nodes.get_node(GetNodeRequest { id: name.into(), read: None }).await?.into_inner();
                let connected = node.health.as_ref().is_some_and(|h| h.connected);
                anyhow::ensure!(
                    node.status == "READY" && connected,
                    "node is {} (connected: {connected})",
                    node.status
                );
                Ok(node)
            }
        })
        .await
        .with_context(|| format!("agent log:\n{}", log()))
    }

    /// A directory under the kit's storage, created.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.storage.path().join(rel);
        let _ = std::fs::create_dir_all(&p);
        p
    }

    /// `file://` URL of a path under the storage directory.
    pub fn url(&self, rel: &str) -> String {
        format!("file://{}", self.storage.path().join(rel).display())
    }

    /// Writes an algorithm directory `algo/{name}` with `files` and returns its URL.
    pub fn algorithm(&self, name: &str, files: &[(&str, &str)]) -> anyhow::Result<String> {
        let rel = format!("algo/{name}");
        let dir = self.dir(&rel);
        for (file, text) in files {
            std::fs::write(dir.join(file), text)?;
        }
        Ok(self.url(&rel))
    }

    /// A CPU training of team-a running `entry_point` of `algorithm`, output to
    /// `out/{name}`.
    pub fn training(&self, name: &str, algorithm: &str, entry_point: &str) -> pb::TrainingSpec {
        pb::TrainingSpec {
            name: name.into(),
            experiment: "nodes".into(),
            create_experiment: true,
            algorithm_path: algorithm.into(),
            entry_point: entry_point.into(),
            image: crate::CPU_IMAGE.into(),
            instance_type: crate::CPU_INSTANCE_TYPE.into(),
            instance_count: 1,
            nproc_per_node: 1,
            output_path: self.url(&format!("out/{name}")),
            timeout_minutes: 60,
            use_log: true,
            ..Default::default()
        }
    }

    pub async fn create(&self, spec: pb::TrainingSpec) -> anyhow::Result<pb::Training> {
        let req = crate::create_training(TEAM_A, spec);
        Ok(self.admin().trainings.create_training(req).await?.into_inner())
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<pb::Training> {
        let req = GetTrainingRequest { project: TEAM_A.into(), name: name.into(), read: None };
        Ok(self.admin().trainings.get_training(req).await?.into_inner())
    }

    /// Waits until training `name` has status `want`; fails at once if it reaches
    /// another terminal status.
    pub async fn wait_status(&self, name: &str, want: &str, within: Duration) -> anyhow::Result<pb::Training> {
        let terminal = ["COMPLETE", "FAIL TRAIN", "STOPPED", "CREATE FAILED"];
        let deadline = Instant::now() + within;
        loop {
            let t = self.get(name).await?;
            if t.status == want {
                return Ok(t);
            }
            if terminal.contains(&t.status.as_str()) || Instant::now() > deadline {
                let logs: Vec<String> = self.agents.iter().map(AgentProcess::log).collect();
                anyhow::bail!(
                    "training {name}: wanted {want}, it is {} ({}); agent logs:\n{}",
                    t.status,
                    t.status_reason,
                    logs.join("\n----\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The whole output of rank 0 (following it to the end when `follow`).
    pub async fn logs(&self, name: &str, follow: bool) -> anyhow::Result<String> {
        let req = TrainingLogsRequest { project: TEAM_A.into(), name: name.into(), rank: 0, follow, tail_lines: 0 };
        let mut stream = self.admin().trainings.training_logs(req).await?.into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await? {
            out.extend_from_slice(&chunk.data);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// This kit's containers as the engine lists them.
    pub async fn containers(&self) -> anyhow::Result<Vec<ContainerInfo>> {
        Ok(self.docker.list(&LabelSelector::new().with(labels::CLUSTER, &self.cluster)).await?)
    }

    /// Containers of workload `id`.
    pub async fn containers_of(&self, workload_id: &str) -> anyhow::Result<Vec<ContainerInfo>> {
        let selector = LabelSelector::new().with(labels::CLUSTER, &self.cluster).with(labels::WORKLOAD, workload_id);
        Ok(self.docker.list(&selector).await?)
    }

    /// Stops the agents, removes the kit's containers and stops the scheduler.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        for a in &self.agents {
            a.kill()?;
        }
        self.agents.clear();
        for c in self.containers().await? {
            self.docker.remove(&c.id).await?;
        }
        // A killed agent may have removed a workload's last container but not yet its
        // network.
        self.docker.remove_unused_networks(&LabelSelector::new().with(labels::CLUSTER, &self.cluster)).await?;
        match self.sandbox.take() {
            Some(sandbox) => sandbox.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Drop for NodeKit {
    /// A failed test still removes its containers: from a thread of its own, since a
    /// drop cannot await.
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(docker) = DockerRuntime::connect(&DockerConfig::default()).await else { return };
                let Ok(list) = docker.list(&LabelSelector::new().with(labels::CLUSTER, &cluster)).await else { return };
                for c in list {
                    let _ = docker.remove(&c.id).await;
                }
                let _ = docker.remove_unused_networks(&LabelSelector::new().with(labels::CLUSTER, &cluster)).await;
            });
        })
        .join();
    }
}

/// Builds the workload image with `deploy/images/build.sh` when it is missing (once
/// per test process; the script is idempotent and caches its rootfs), so `cargo test`
/// works on a fresh machine.
async fn ensure_image(docker: &DockerRuntime) -> anyhow::Result<()> {
    static BUILD: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    if docker.client().inspect_image(PYTHON_IMAGE).await.is_ok() {
        return Ok(());
    }
    let built = BUILD
        .get_or_init(|| async {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/images/build.sh");
            let status = tokio::process::Command::new("bash").arg(&script).status().await;
            match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("{} failed ({s})", script.display())),
                Err(e) => Err(format!("cannot run {}: {e}", script.display())),
            }
        })
        .await;
    built.clone().map_err(anyhow::Error::msg)?;
    docker.client().inspect_image(PYTHON_IMAGE).await.with_context(|| format!("image {PYTHON_IMAGE} still missing"))?;
    Ok(())
}
