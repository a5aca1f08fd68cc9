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
