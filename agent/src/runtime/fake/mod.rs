//! [`FakeRuntime`]: an in-memory [`ContainerRuntime`](super::ContainerRuntime) for
//! testing the agent's controllers without an engine.
//!
//! What a container "does" is scripted per container name with a [`FakeScript`]: the
//! lines it prints, and whether it exits at once with a code or runs until stopped.
//! Tests can also make a running container exit, be OOM-killed or print at any moment.
//! Time is a logical clock (a counter), so runs are deterministic.
//!
//! It behaves like [`DockerRuntime`](super::DockerRuntime) wherever the conformance
//! suite can tell (`agent/tests/runtime_conformance`).

mod runtime_impl;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};

use super::error::RuntimeError;
use super::hardening::NO_NEW_PRIVILEGES;
use super::spec::{ContainerSpec, GpuMode, Network, PublishedPort};
use super::types::{
    AppliedHardening, ContainerEvent, ContainerEventKind, ContainerId, ContainerState, ContainerStats, LogLine,
    LogStream,
};

/// Exit code of a container killed by SIGKILL (force remove, OOM kill).
const SIGKILL_EXIT: i64 = 137;

/// How a scripted container ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeExit {
    /// Prints its lines, then exits with this code.
    Code(i64),
    /// Prints its lines, then runs until stopped, removed or told to exit.
    Running,
}

/// What a fake container does when started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeScript {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub exit: FakeExit,
    /// The exit code `stop` produces (143: the process ended on SIGTERM).
    pub stop_exit_code: i64,
}

impl Default for FakeScript {
    /// Prints nothing and runs until stopped.
    fn default() -> Self {
        FakeScript { stdout: Vec::new(), stderr: Vec::new(), exit: FakeExit::Running, stop_exit_code: 143 }
    }
}

impl FakeScript {
    /// Prints `stdout` and exits with `code`.
    pub fn exits(code: i64, stdout: &[&str]) -> Self {
        FakeScript {
            stdout: stdout.iter().map(|s| s.to_string()).collect(),
            exit: FakeExit::Code(code),
            ..Default::default()
        }
    }
}

#[derive(Debug)]
struct FakeContainer {
    id: ContainerId,
    spec: ContainerSpec,
    script: FakeScript,
    state: ContainerState,
    exit_code: Option<i64>,
    logs: Vec<LogLine>,
    stats: Option<ContainerStats>,
}

#[derive(Debug, Default)]
struct State {
    /// By id.
    containers: BTreeMap<String, FakeContainer>,
    scripts: HashMap<String, FakeScript>,
    default_script: FakeScript,
    /// `None`: every image exists.
    images: Option<BTreeSet<String>>,
    /// Workload networks by name, with their labels.
    networks: BTreeMap<String, BTreeMap<String, String>>,
    next_id: u64,
    clock: u64,
}

impl State {
    /// Containers (any state) attached to network `name`.
    fn attached(&self, name: &str) -> usize {
        self.containers.values().filter(|c| network_name(&c.spec) == Some(name)).count()
    }

    /// Whether a running container already publishes `port`'s host port on an
    /// overlapping address.
    fn port_taken(&self, port: &PublishedPort) -> bool {
        self.containers.values().filter(|c| c.state == ContainerState::Running).any(|c| {
            c.spec.network.published().iter().any(|p| {
                p.host_port == port.host_port
                    && (p.host_ip == port.host_ip || p.host_ip.is_unspecified() || port.host_ip.is_unspecified())
            })
        })
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The id of the container with this id or name.
    fn resolve(&self, key: &str) -> Option<String> {
        if self.containers.contains_key(key) {
            return Some(key.to_string());
        }
        self.containers.values().find(|c| c.spec.name == key).map(|c| c.id.0.clone())
    }
}

/// The in-memory runtime. Clones share state.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    /// Bumped on every change; log followers and waiters sleep on it.
    changed: Arc<watch::Sender<u64>>,
    events: broadcast::Sender<ContainerEvent>,
    gpu_mode: GpuMode,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    /// A runtime on which every image exists and GPUs are requested as on an NVIDIA
    /// node.
    pub fn new() -> Self {
        FakeRuntime {
            state: Arc::new(Mutex::new(State::default())),
            changed: Arc::new(watch::Sender::new(0)),
            events: broadcast::channel(1024).0,
            gpu_mode: GpuMode::Nvidia,
        }
    }

    pub fn with_gpu_mode(mut self, gpu_mode: GpuMode) -> Self {
        self.gpu_mode = gpu_mode;
        self
    }

    /// Only these images exist; creating a container of another fails with
    /// [`RuntimeError::ImageMissing`].
    pub fn with_images(self, images: &[&str]) -> Self {
        self.lock().images = Some(images.iter().map(|s| s.to_string()).collect());
        self
    }

    /// What the container named `name` does when (next) started.
    pub fn script(&self, name: &str, script: FakeScript) {
        self.lock().scripts.insert(name.to_string(), script);
    }

    /// What containers without their own script do.
    pub fn set_default_script(&self, script: FakeScript) {
        self.lock().default_script = script;
    }

    /// The spec the container (id or name) was created from.
    pub fn spec(&self, key: &str) -> Option<ContainerSpec> {
        let state = self.lock();
        state.resolve(key).map(|id| state.containers[&id].spec.clone())
    }

    /// The specs of all containers that exist, by creation order.
    pub fn specs(&self) -> Vec<ContainerSpec> {
        let state = self.lock();
        state.containers.values().map(|c| c.spec.clone()).collect()
    }

    /// Makes a running container exit with `code` now.
    pub fn exit(&self, key: &str, code: i64) -> Result<(), RuntimeError> {
        self.mutate(key, |state, id| finish(state, &self.events, id, code, false))
    }

    /// Makes the kernel OOM-kill a running container now (`oom`, then `die` 137).
    pub fn oom_kill(&self, key: &str) -> Result<(), RuntimeError> {
        self.mutate(key, |state, id| finish(state, &self.events, id, SIGKILL_EXIT, true))
    }

    /// Appends a line to a container's output.
    pub fn print(&self, key: &str, stream: LogStream, line: &str) -> Result<(), RuntimeError> {
        self.mutate(key, |state, id| {
            let ts = state.tick();
            if let Some(c) = state.containers.get_mut(id) {
                c.logs.push(LogLine { stream, line: line.to_string(), ts_ms: Some(ts) });
            }
        })
    }

    /// What `stats` reports for the container from now on.
    pub fn set_stats(&self, key: &str, stats: ContainerStats) -> Result<(), RuntimeError> {
        self.mutate(key, |state, id| {
            if let Some(c) = state.containers.get_mut(id) {
                c.stats = Some(stats);
            }
        })
    }

    // std Mutex: it is never held across an await.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn mutate(&self, key: &str, f: impl FnOnce(&mut State, &str)) -> Result<(), RuntimeError> {
        {
            let mut state = self.lock();
            let id = state.resolve(key).ok_or_else(|| RuntimeError::NotFound(key.to_string()))?;
            f(&mut state, &id);
        }
        self.notify();
        Ok(())
    }
}

/// The workload network of a spec, if it has one.
fn network_name(spec: &ContainerSpec) -> Option<&str> {
    spec.network.own_bridge()
}

/// What the engine would report for a container created from `spec` (the shape
/// `create_body` gives Docker).
fn applied(spec: &ContainerSpec) -> AppliedHardening {
    let h = &spec.hardening;
    let network_mode = match &spec.network {
        Network::None => "none".to_string(),
        Network::HostForMultiNodeGang => "host".to_string(),
        Network::Workload { name, .. } | Network::Published { name, .. } => name.clone(),
    };
    let mut tmpfs: Vec<String> = h.tmpfs.iter().map(|t| t.container_path.clone()).collect();
    tmpfs.sort();
    AppliedHardening {
        init: true,
        security_opt: vec![NO_NEW_PRIVILEGES.to_string()],
        cap_drop: vec!["ALL".to_string()],
        cap_add: h.cap_add.iter().map(|c| c.engine_name().to_string()).collect(),
        pids_limit: Some(h.pids_limit),
        user: h.user.map(|u| u.to_string()).unwrap_or_default(),
        read_only_rootfs: h.read_only_rootfs,
        privileged: false,
        network_mode,
        networks: network_name(spec).map(|n| vec![n.to_string()]).unwrap_or_default(),
        pid_mode: String::new(),
        ipc_mode: "private".to_string(),
        mount_sources: spec.mounts.iter().map(|m| m.host_path.clone()).collect(),
        tmpfs,
    }
}

fn emit(state: &mut State, events: &broadcast::Sender<ContainerEvent>, id: &str, kind: ContainerEventKind) {
    let time_ms = state.tick();
    if let Some(c) = state.containers.get(id) {
        // No receiver is not an error: nobody watches events yet.
        let _ = events.send(ContainerEvent {
            id: c.id.clone(),
            name: c.spec.name.clone(),
            labels: c.spec.effective_labels(),
            kind,
            time_ms,
        });
    }
}

/// Ends a running container with `code` (after an OOM event if `oom`); no-op otherwise.
fn finish(state: &mut State, events: &broadcast::Sender<ContainerEvent>, id: &str, code: i64, oom: bool) {
    let Some(c) = state.containers.get_mut(id) else { return };
    if c.state != ContainerState::Running {
        return;
    }
    c.state = ContainerState::Exited;
    c.exit_code = Some(code);
    if oom {
        emit(state, events, id, ContainerEventKind::Oom);
    }
    emit(state, events, id, ContainerEventKind::Die { exit_code: Some(code) });
}
