//! The host as the scheduler sees it: capacity (CPU, memory, disk, GPUs) for placement
//! and a load sample for health.
//!
//! ```text
//!   HostProbe::sample ──► HostSample ─┬─► node_inventory(sample, gpus, overrides) ──► NodeInventory
//!   (sysinfo, blocking)               └─► node_metrics(sample)                     ──► NodeMetrics
//! ```
//!
//! Only [`SysinfoHost`] touches the system; the functions turning a sample into what
//! the scheduler receives are pure ([`report`]).

mod report;
mod sysinfo_host;

use serde::{Deserialize, Serialize};

pub use report::{node_inventory, node_metrics};
pub use sysinfo_host::SysinfoHost;

/// A source of host samples. Sampling reads `/proc` and `statvfs`: it blocks briefly,
/// so async callers use `spawn_blocking`.
pub trait HostProbe: Send {
    fn sample(&mut self) -> Result<HostSample, InventoryError>;
}

/// What the host has and how busy it is, in the units the system reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// Logical CPUs.
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    /// The filesystem holding the agent's data directory.
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    pub load: LoadAverage,
    /// Per logical CPU, 0–100, over the time since the previous sample (all zero on
    /// the first sample).
    pub cpu_usage_pct: Vec<f32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Host load as reported in heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    pub load: LoadAverage,
    /// Mean over all CPUs, 0–100.
    pub cpu_usage_pct: f32,
    pub per_cpu_usage_pct: Vec<f32>,
    pub memory_used_mib: u64,
    pub memory_total_mib: u64,
    pub disk_available_mib: u64,
    pub disk_total_mib: u64,
}

/// How much of the host the scheduler may hand out (the `[resources]` section).
/// The reported amount is `(override or detected) - reserved`: an absolute override
/// for one odd machine, a reservation that fits every machine of a fleet sharing one
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceOverrides {
    /// Report this many millicores instead of the detected CPUs (at most those).
    pub cpu_millis: Option<u64>,
    /// Report this much memory instead of the detected memory (at most that).
    pub memory_mib: Option<u64>,
    /// Kept back for the system and the agent itself.
    pub reserved_cpu_millis: u64,
    pub reserved_memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// The system could not be read.
    #[error("reading the host's {what} failed: {message}")]
    Probe { what: &'static str, message: String },
    /// No mounted filesystem holds the data directory.
    #[error("no filesystem found for the data directory {0}")]
    DataDirFilesystem(String),
    /// An override promises more than the host has.
    #[error("configured {resource} {configured} exceeds the {detected} this host has")]
    OverrideExceedsHost { resource: &'static str, configured: u64, detected: u64 },
    /// Reservations leave nothing to hand out.
    #[error("reserving {reserved} leaves no {resource} for workloads (the host reports {available})")]
    NothingLeft { resource: &'static str, reserved: u64, available: u64 },
}
