//! GPUs of this node: what the scheduler places work on, and how healthy they are.
//!
//! [`GpuSource`] is the I/O edge. [`NvmlGpus`] asks the NVIDIA driver through NVML;
//! [`FakeGpus`] reports a list from the configuration (machines without GPUs, tests).
//! Which one runs is chosen by [`GpuConfig`] (`source = "nvml" | "fake" | "none"`).
//!
//! NVML calls block (some for tens of milliseconds per GPU): async callers wrap
//! [`GpuSource`] calls in `tokio::task::spawn_blocking`.
//!
//! One GPU's error costs that GPU only: it is reported unhealthy with the error (see
//! [`devices`]) while the others are reported as usual. Critical XID errors are
//! events, kept by [`GpuWatch`], which also marks a GPU unhealthy after one that needs
//! a reset.

mod config;
mod devices;
mod fake;
mod nvml;
mod watch;
mod xid;
pub mod xid_codes;

use gantry_domain::Gpu;
use serde::{Deserialize, Serialize};

pub use config::{FakeGpuConfig, GpuConfig};
pub use fake::FakeGpus;
pub use nvml::NvmlGpus;
pub use watch::{GpuReport, GpuWatch, ReportedGpu, XidRecord};

/// A source of GPU inventory and health. Implementations block; see the module doc.
pub trait GpuSource: Send + Sync {
    /// The node's GPUs that can be read, in the driver's index order. An error means
    /// no GPU could be listed at all; a single unreadable GPU is left out (and
    /// reported unhealthy by [`GpuSource::health`]).
    fn inventory(&self) -> Result<Vec<Gpu>, GpuError>;
    /// A health sample per GPU the driver lists, same order as the driver's. An error
    /// means none could be sampled.
    fn health(&self) -> Result<Vec<GpuHealth>, GpuError>;
    /// The critical XID errors seen since the previous call, oldest first. Separate from
    /// [`GpuSource::health`] so a failed sample never loses them.
    fn take_xids(&self) -> Vec<Xid>;
}

/// One critical XID error of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xid {
    pub uuid: String,
    pub code: u64,
}

/// One GPU's health sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuHealth {
    pub uuid: String,
    /// `None` where the GPU does not report it.
    pub temperature_c: Option<u32>,
    /// Share of the last sample period a kernel ran; `None` where not reported.
    pub utilization_pct: Option<u32>,
    pub memory_used_mib: u64,
    pub memory_total_mib: u64,
    /// Uncorrected ECC errors since the driver loaded; `None` without ECC.
    pub ecc_errors: Option<u64>,
    /// Why the GPU could not be read (an NVML call failed for it): it must get no work.
    /// `None` when it was read.
    pub fault: Option<String>,
}

/// Why GPU information could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The NVIDIA driver or `libnvidia-ml.so.1` is missing: the node has no usable
    /// GPUs through NVML.
    #[error("nvml is not available: {0}")]
    NoNvml(String),
    /// An NVML call failed.
    #[error("nvml {call} failed: {message}")]
    Nvml { call: &'static str, message: String },
    /// The `[gpu]` configuration is inconsistent.
    #[error("invalid gpu configuration: {0}")]
    InvalidConfig(String),
}

/// The source `config` asks for. `none` is a source with no GPUs.
pub fn from_config(config: &GpuConfig) -> Result<Box<dyn GpuSource>, GpuError> {
    config.validate()?;
    Ok(match config {
        GpuConfig::Nvml => Box::new(NvmlGpus::new()?),
        GpuConfig::Fake { fake } => Box::new(FakeGpus::from_config(fake)),
        GpuConfig::None => Box::new(FakeGpus::new(Vec::new())),
    })
}

const MIB: u64 = 1024 * 1024;
