//! [`FakeGpus`]: a configured GPU list with settable health.

use std::sync::Mutex;

use gantry_domain::Gpu;

use super::{GpuError, GpuHealth, GpuSource};

/// Reports the GPUs it was given. Health starts healthy and idle (40 °C, 0 %, no
/// errors); tests change it with [`FakeGpus::set_health`].
#[derive(Debug)]
pub struct FakeGpus {
    gpus: Vec<Gpu>,
    // std Mutex: never held across an await (the trait is synchronous).
    health: Mutex<Vec<GpuHealth>>,
}

impl FakeGpus {
    pub fn new(gpus: Vec<Gpu>) -> Self {
        let health = gpus
            .iter()
            .map(|g| GpuHealth {
                uuid: g.uuid.clone(),
                temperature_c: Some(40),
                utilization_pct: Some(0),
                memory_used_mib: 0,
                memory_total_mib: g.memory_mib,
                ecc_errors: Some(0),
                xid_errors: Vec::new(),
            })
            .collect();
        FakeGpus { gpus, health: Mutex::new(health) }
    }

    /// Replaces the health reported for `health.uuid`; XIDs are reported once, as
    /// NVML's are. Returns false for an unknown UUID.
    pub fn set_health(&self, health: GpuHealth) -> bool {
        let mut all = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|h| h.uuid == health.uuid) {
            Some(slot) => {
                *slot = health;
                true
            }
            None => false,
        }
    }
}

impl GpuSource for FakeGpus {
    fn inventory(&self) -> Result<Vec<Gpu>, GpuError> {
        Ok(self.gpus.clone())
    }

    fn health(&self) -> Result<Vec<GpuHealth>, GpuError> {
        let mut all = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let sample = all.clone();
        for h in all.iter_mut() {
            h.xid_errors.clear();
        }
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_config_and_settable_health() {
        let gpu = Gpu { uuid: "GPU-1".into(), model: "A100-80GB".into(), memory_mib: 81920 };
        let fake = FakeGpus::new(vec![gpu.clone()]);
        assert_eq!(fake.inventory().unwrap(), [gpu]);
        let mut h = fake.health().unwrap().remove(0);
        assert_eq!((h.memory_total_mib, h.ecc_errors, h.xid_errors.len()), (81920, Some(0), 0));
        h.xid_errors = vec![79];
        assert!(fake.set_health(h));
        assert_eq!(fake.health().unwrap()[0].xid_errors, [79]);
        assert!(fake.health().unwrap()[0].xid_errors.is_empty(), "an XID is reported once");
        assert!(!fake.set_health(GpuHealth { uuid: "nope".into(), ..fake.health().unwrap()[0].clone() }));
    }
}
