//! Reading GPUs one device at a time: an error reading one GPU marks that GPU
//! unhealthy with the error, the others are reported as usual. (Collecting every read
//! into one `Result` let a single bad GPU hide all of them.)
//!
//! [`DeviceSet`] is the seam: NVML implements it in production, tests implement it
//! with devices that fail on purpose.

use gantry_domain::Gpu;

use super::{GpuError, GpuHealth, MIB};

/// The driver's list of GPUs.
pub(super) trait DeviceSet {
    /// How many GPUs the driver lists. An error here means no GPU can be read.
    fn count(&self) -> Result<u32, GpuError>;
    fn device(&self, index: u32) -> Result<Box<dyn DeviceReader + '_>, GpuError>;
}

/// The reads of one GPU. `Ok(None)`: the GPU does not support the metric.
pub(super) trait DeviceReader {
    fn uuid(&self) -> Result<String, GpuError>;
    fn name(&self) -> Result<String, GpuError>;
    /// `(used, total)` in bytes.
    fn memory(&self) -> Result<(u64, u64), GpuError>;
    fn temperature(&self) -> Result<Option<u32>, GpuError>;
    fn utilization(&self) -> Result<Option<u32>, GpuError>;
    fn ecc_errors(&self) -> Result<Option<u64>, GpuError>;
}

/// The name of a GPU whose UUID cannot be read (it is in no inventory).
pub fn unreadable_name(index: u32) -> String {
    format!("nvml-index-{index}")
}

/// Every GPU that can be fully identified; the others are left out with a warning
/// (placement cannot hand out a GPU it cannot name) and show up unhealthy in
/// [`health`].
pub(super) fn inventory(set: &dyn DeviceSet) -> Result<Vec<Gpu>, GpuError> {
    let mut gpus = Vec::new();
    for index in 0..set.count()? {
        let read = set.device(index).and_then(|d| {
            Ok(Gpu {
                uuid: d.uuid()?,
                // The marketing name (e.g. "NVIDIA A100-SXM4-80GB"); operators name
                // instance types' GPU core types after it.
                model: d.name()?,
                memory_mib: d.memory()?.1 / MIB,
            })
        });
        match read {
            Ok(gpu) => gpus.push(gpu),
            Err(e) => tracing::warn!(gpu_index = index, error = %e, "gpu left out of the inventory: it cannot be read"),
        }
    }
    Ok(gpus)
}

/// A sample of every GPU the driver lists; one that fails a read carries the error as
/// its fault.
pub(super) fn health(set: &dyn DeviceSet) -> Result<Vec<GpuHealth>, GpuError> {
    Ok((0..set.count()?).map(|index| sample(set, index)).collect())
}

fn sample(set: &dyn DeviceSet, index: u32) -> GpuHealth {
    let unreadable = |uuid: String, e: GpuError| GpuHealth {
        uuid,
        temperature_c: None,
        utilization_pct: None,
        memory_used_mib: 0,
        memory_total_mib: 0,
        ecc_errors: None,
        fault: Some(e.to_string()),
    };
    let device = match set.device(index) {
        Ok(d) => d,
        Err(e) => return unreadable(unreadable_name(index), e),
    };
    let uuid = match device.uuid() {
        Ok(uuid) => uuid,
        Err(e) => return unreadable(unreadable_name(index), e),
    };
    let read = || -> Result<GpuHealth, GpuError> {
        // Read as the inventory reads it: a GPU left out of it for a failed read is
        // reported unhealthy here, not silently healthy.
        device.name()?;
        let (used, total) = device.memory()?;
        Ok(GpuHealth {
            uuid: uuid.clone(),
            temperature_c: device.temperature()?,
            utilization_pct: device.utilization()?,
            memory_used_mib: used / MIB,
            memory_total_mib: total / MIB,
            ecc_errors: device.ecc_errors()?,
            fault: None,
        })
    };
    read().unwrap_or_else(|e| unreadable(uuid.clone(), e))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A GPU for tests: `fail` names the read that errors (as NVML does for a GPU that
    /// fell off the bus), if any.
    #[derive(Clone)]
    pub struct TestDevice {
        pub uuid: &'static str,
        pub fail: Option<&'static str>,
    }

    pub struct TestSet(pub Vec<TestDevice>);

    fn err(call: &'static str) -> GpuError {
        GpuError::Nvml { call, message: "GPU is lost".into() }
    }

    impl TestDevice {
        fn check(&self, call: &'static str) -> Result<(), GpuError> {
            if self.fail == Some(call) { Err(err(call)) } else { Ok(()) }
        }
    }

    impl DeviceSet for TestSet {
        fn count(&self) -> Result<u32, GpuError> {
            Ok(self.0.len() as u32)
        }
        fn device(&self, index: u32) -> Result<Box<dyn DeviceReader + '_>, GpuError> {
            let d = &self.0[index as usize];
            d.check("device_by_index")?;
            Ok(Box::new(d.clone()))
        }
    }

    impl DeviceReader for TestDevice {
        fn uuid(&self) -> Result<String, GpuError> {
            self.check("uuid").map(|_| self.uuid.to_string())
        }
        fn name(&self) -> Result<String, GpuError> {
            self.check("name").map(|_| "A100-80GB".to_string())
        }
        fn memory(&self) -> Result<(u64, u64), GpuError> {
            self.check("memory_info").map(|_| (1024 * MIB, 81920 * MIB))
        }
        fn temperature(&self) -> Result<Option<u32>, GpuError> {
            self.check("temperature").map(|_| Some(40))
        }
        fn utilization(&self) -> Result<Option<u32>, GpuError> {
            self.check("utilization_rates").map(|_| None)
        }
        fn ecc_errors(&self) -> Result<Option<u64>, GpuError> {
            self.check("total_ecc_errors").map(|_| Some(0))
        }
    }

    fn set(fail: Option<&'static str>) -> TestSet {
        TestSet(vec![
            TestDevice { uuid: "GPU-0", fail: None },
            TestDevice { uuid: "GPU-1", fail },
            TestDevice { uuid: "GPU-2", fail: None },
        ])
    }

    /// Regression (issue 9): one GPU failing any read hid every GPU of the node.
    #[test]
    fn regression_one_bad_gpu_is_reported_unhealthy_and_the_others_still_are_reported() {
        for call in
            ["device_by_index", "uuid", "name", "memory_info", "temperature", "utilization_rates", "total_ecc_errors"]
        {
            let set = set(Some(call));
            let samples = health(&set).unwrap();
            assert_eq!(samples.len(), 3, "{call}");
            assert_eq!((samples[0].fault.as_ref(), samples[2].fault.as_ref()), (None, None), "{call}");
            assert_eq!(samples[0].memory_total_mib, 81920);
            let bad = &samples[1];
            let why = bad.fault.as_deref().unwrap_or_default();
            assert!(why.contains(call) && why.contains("GPU is lost"), "{call}: {why}");
            // A GPU that cannot even be named is reported by its index.
            let expected = if matches!(call, "device_by_index" | "uuid") { "nvml-index-1" } else { "GPU-1" };
            assert_eq!(bad.uuid, expected, "{call}");

            // The inventory keeps every GPU it can identify (health reads do not matter).
            let inv: Vec<String> = inventory(&set).unwrap().into_iter().map(|g| g.uuid).collect();
            let identifiable = !matches!(call, "device_by_index" | "uuid" | "name" | "memory_info");
            let want: &[&str] = if identifiable { &["GPU-0", "GPU-1", "GPU-2"] } else { &["GPU-0", "GPU-2"] };
            assert_eq!(inv, want, "{call}");
        }
        let healthy = health(&set(None)).unwrap();
        assert!(healthy.iter().all(|h| h.fault.is_none()));
        assert_eq!(healthy[1].utilization_pct, None, "unsupported stays None, not a fault");
    }
}
