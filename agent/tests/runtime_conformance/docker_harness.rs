//! The suite's view of the real Docker engine, with cleanup that survives panics.

use std::sync::Mutex;

use gantry_agent::runtime::{
    ContainerId, ContainerRuntime, ContainerSpec, DockerConfig, DockerRuntime, GpuMode, LabelSelector, labels,
};

use crate::suite::Harness;
use crate::test_image;

/// Runs until SIGTERM; `sleep` in the background keeps the shell able to take the
/// signal (PID 1 ignores signals it has no handler for).
const LONG_RUNNING: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done";

pub struct DockerHarness {
    pub runtime: DockerRuntime,
    pub image: String,
    prefix: String,
    cluster: String,
    created: Mutex<Vec<String>>,
}

impl DockerHarness {
    /// Connects to this machine's engine (this fails the test if there is none: CI
    /// has Docker) with fake GPUs, and makes sure the test image exists.
    pub async fn new() -> Self {
        let config = DockerConfig { gpu_mode: GpuMode::FakeLabelsOnly, ..Default::default() };
        let runtime = DockerRuntime::connect(&config).await.expect("connecting to the local Docker engine");
        let image = test_image::ensure(runtime.client()).await;
        let id: u32 = rand::random();
        DockerHarness {
            runtime,
            image,
            prefix: format!("gantry-test-{id:08x}"),
            cluster: format!("test-{id:08x}"),
            created: Mutex::new(Vec::new()),
        }
    }

    /// A spec running `script` with `sh -c`.
    pub fn shell(&self, name: &str, script: &str) -> ContainerSpec {
        ContainerSpec::new(name, &self.image, vec!["/bin/sh".into(), "-c".into(), script.into()])
    }

    /// Removes every container this harness named and the networks of its cluster.
    /// Also run on drop (on a thread of its own, since drop cannot await), so failing
    /// tests clean up too.
    pub async fn cleanup(&self) {
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        remove_all(&self.runtime, names, &self.cluster).await;
    }
}

impl Drop for DockerHarness {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        if names.is_empty() {
            return;
        }
        let cluster = self.cluster.clone();
        let joined = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(docker) = DockerRuntime::connect(&DockerConfig::default()).await else { return };
                remove_all(&docker, names, &cluster).await;
            });
        })
        .join();
        if joined.is_err() {
            eprintln!("container cleanup thread panicked");
        }
    }
}

async fn remove_all(docker: &DockerRuntime, names: Vec<String>, cluster: &str) {
    for name in names {
        if let Err(e) = docker.remove(&ContainerId(name.clone())).await {
            eprintln!("cleanup of {name} failed: {e}");
        }
    }
    if let Err(e) = docker.remove_unused_networks(&LabelSelector::new().with(labels::CLUSTER, cluster)).await {
        eprintln!("cleanup of the networks of {cluster} failed: {e}");
    }
}

impl Harness for DockerHarness {
    fn runtime(&self) -> &dyn ContainerRuntime {
        &self.runtime
    }

    fn name(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        self.created.lock().unwrap_or_else(|p| p.into_inner()).push(name.clone());
        name
    }

    fn cluster(&self) -> &str {
        &self.cluster
    }

    fn exiting(&self, name: &str, lines: &[&str], code: i64) -> ContainerSpec {
        let mut argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!(r#"for l in "$@"; do echo "$l"; done; exit {code}"#),
            "sh".to_string(),
        ];
        argv.extend(lines.iter().map(|l| l.to_string()));
        ContainerSpec::new(name, &self.image, argv)
    }

    fn long_running(&self, name: &str) -> ContainerSpec {
        self.shell(name, LONG_RUNNING)
    }

    fn gpu_mode(&self) -> GpuMode {
        self.runtime.gpu_mode()
    }
}
