//! [`NvmlGpus`]: GPUs as the NVIDIA driver reports them, through NVML.
//!
//! nvml-wrapper loads `libnvidia-ml.so.1` at run time, so the agent builds and runs on
//! machines without the driver; [`NvmlGpus::new`] then fails with
//! [`GpuError::NoNvml`].

use std::sync::Arc;

use gantry_domain::Gpu;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::devices::{self, DeviceReader, DeviceSet};
use super::xid::XidWatcher;
use super::{GpuError, GpuHealth, GpuSource, Xid};

/// NVML-backed [`GpuSource`]. Every call blocks (see the module doc of [`super`]).
pub struct NvmlGpus {
    nvml: Nvml,
    /// Collects critical XID errors between health samples; absent where the GPUs
    /// do not support events.
    xids: Option<Arc<XidWatcher>>,
}

impl std::fmt::Debug for NvmlGpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlGpus").field("xid_watcher", &self.xids.is_some()).finish()
    }
}

impl NvmlGpus {
    /// Loads NVML and starts watching for XID errors. Never panics: a missing driver
    /// or library is [`GpuError::NoNvml`].
    pub fn new() -> Result<Self, GpuError> {
        let nvml = Nvml::init().map_err(init_error)?;
        let xids = match XidWatcher::start() {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "gpu xid errors will not be reported");
                None
            }
        };
        Ok(NvmlGpus { nvml, xids })
    }
}

impl GpuSource for NvmlGpus {
    fn inventory(&self) -> Result<Vec<Gpu>, GpuError> {
        devices::inventory(&NvmlDevices(&self.nvml))
    }

    fn health(&self) -> Result<Vec<GpuHealth>, GpuError> {
        devices::health(&NvmlDevices(&self.nvml))
    }

    fn take_xids(&self) -> Vec<Xid> {
        self.xids.as_ref().map(|w| w.drain()).unwrap_or_default()
    }
}

/// The driver's GPUs as a [`DeviceSet`].
struct NvmlDevices<'a>(&'a Nvml);

impl DeviceSet for NvmlDevices<'_> {
    fn count(&self) -> Result<u32, GpuError> {
        self.0.device_count().map_err(call("device_count"))
    }

    fn device(&self, index: u32) -> Result<Box<dyn DeviceReader + '_>, GpuError> {
        Ok(Box::new(NvmlDevice(self.0.device_by_index(index).map_err(call("device_by_index"))?)))
    }
}

struct NvmlDevice<'a>(Device<'a>);

impl DeviceReader for NvmlDevice<'_> {
    fn uuid(&self) -> Result<String, GpuError> {
        self.0.uuid().map_err(call("uuid"))
    }

    fn name(&self) -> Result<String, GpuError> {
        self.0.name().map_err(call("name"))
    }

    fn memory(&self) -> Result<(u64, u64), GpuError> {
        self.0.memory_info().map(|m| (m.used, m.total)).map_err(call("memory_info"))
    }

    fn temperature(&self) -> Result<Option<u32>, GpuError> {
        optional(self.0.temperature(TemperatureSensor::Gpu), "temperature")
    }

    fn utilization(&self) -> Result<Option<u32>, GpuError> {
        Ok(optional(self.0.utilization_rates(), "utilization_rates")?.map(|u| u.gpu))
    }

    fn ecc_errors(&self) -> Result<Option<u64>, GpuError> {
        // Volatile: since the driver loaded, so old errors do not mark a repaired GPU as
        // unhealthy forever.
        optional(self.0.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile), "total_ecc_errors")
    }
}

/// `Ok(None)` for a metric the GPU does not support.
fn optional<T>(result: Result<T, NvmlError>, name: &'static str) -> Result<Option<T>, GpuError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(NvmlError::NotSupported) => Ok(None),
        Err(e) => Err(call(name)(e)),
    }
}

fn call(name: &'static str) -> impl Fn(NvmlError) -> GpuError {
    move |e| GpuError::Nvml { call: name, message: e.to_string() }
}

/// What `Nvml::init` failing means for the operator.
pub(super) fn init_error(e: NvmlError) -> GpuError {
    match e {
        NvmlError::LibloadingError(e) => {
            GpuError::NoNvml(format!("libnvidia-ml.so.1 could not be loaded ({e}); is the NVIDIA driver installed?"))
        }
        NvmlError::DriverNotLoaded => GpuError::NoNvml("the NVIDIA kernel driver is not loaded".into()),
        NvmlError::LibraryNotFound => GpuError::NoNvml("the NVML library was not found".into()),
        NvmlError::FailedToLoadSymbol(s) => GpuError::NoNvml(format!("the NVML library lacks {s}; driver too old?")),
        e => GpuError::Nvml { call: "init", message: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine has no NVIDIA driver: construction must fail cleanly.
    #[test]
    fn without_a_driver_new_is_a_clear_error() {
        if std::path::Path::new("/proc/driver/nvidia/version").exists() {
            // A real GPU host: NVML must work there.
            assert!(NvmlGpus::new().is_ok());
            return;
        }
        match NvmlGpus::new() {
            Err(GpuError::NoNvml(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected NoNvml, got {other:?}"),
        }
        let config = crate::gpu::GpuConfig::Nvml;
        assert!(matches!(crate::gpu::from_config(&config), Err(GpuError::NoNvml(_))));
    }
}
