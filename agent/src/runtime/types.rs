//! What the runtime reports back: ids, states, log lines, events, usage and limits.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The engine's id of a container (a container's name is accepted wherever an id is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId(pub String);

impl ContainerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ContainerId {
    fn from(s: &str) -> Self {
        ContainerId(s.to_string())
    }
}

/// Lifecycle state as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    /// Finished; `exit_code` of [`ContainerInfo`] is set.
    Exited,
    /// The engine failed to stop or remove it; needs an operator or a forced remove.
    Dead,
    Unknown,
}

impl ContainerState {
    /// True while the container's process may still run (or start again).
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            ContainerState::Created | ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// One container as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: ContainerId,
    /// Without Docker's leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// Set once the container has exited.
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of container output, without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: LogStream,
    pub line: String,
    /// When the engine received the line (Unix ms); `None` if the engine gave no
    /// readable timestamp.
    pub ts_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerEventKind {
    Start,
    /// The main process ended; `exit_code` is `None` only if the engine omitted it.
    Die {
        exit_code: Option<i64>,
    },
    /// The kernel's OOM killer hit a process of the container (a `Die` follows when
    /// it was the main process).
    Oom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvent {
    pub id: ContainerId,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub kind: ContainerEventKind,
    /// When it happened (Unix ms).
    pub time_ms: u64,
}

/// A usage sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// CPU used over the sample interval, in millicores (1000 = one full core).
    pub cpu_millis: u64,
    /// Memory in use, page cache excluded (what the OOM killer counts).
    pub memory_bytes: u64,
    /// The memory limit the kernel enforces (the host's memory if unlimited).
    pub memory_limit_bytes: u64,
}

/// Limits the engine applied to a container. Zero means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// Device ids of the container's NVIDIA device requests (GPU UUIDs).
    pub gpu_device_ids: Vec<String>,
}

/// One of Gantry's workload networks as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Containers attached to it, in any state (created, running, exited).
    pub containers: usize,
}

/// The security settings the engine actually applied to a container (tests compare
/// them with the spec, and assert the ones no spec can change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedHardening {
    pub init: bool,
    /// The container's security options (`no-new-privileges:true`, …).
    pub security_opt: Vec<String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    /// `None`: unlimited.
    pub pids_limit: Option<i64>,
    /// `uid:gid`, or empty for the image's user.
    pub user: String,
    pub read_only_rootfs: bool,
    pub privileged: bool,
    /// `host`, `none` or a network name.
    pub network_mode: String,
    /// Networks the container is attached to, sorted.
    pub networks: Vec<String>,
    /// Empty for a private namespace.
    pub pid_mode: String,
    pub ipc_mode: String,
    /// Host paths of its bind mounts.
    pub mount_sources: Vec<String>,
    /// Container paths of its tmpfs mounts, sorted.
    pub tmpfs: Vec<String>,
}
