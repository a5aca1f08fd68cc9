//! [`FakeGpus`]: a configured GPU list with settable health and injectable XIDs.

use std::sync::Mutex;

use gantry_domain::Gpu;

use super::{FakeGpuConfig, GpuError, GpuHealth, GpuSource, Xid};

/// Reports the GPUs it was given. Health starts healthy and idle (40 °C, 0 %, no
/// errors); tests change it with [`FakeGpus::set_health`] / [`FakeGpus::set_fault`]
/// and report XIDs with [`FakeGpus::inject_xid`] (or from the configuration, see
/// [`FakeGpus::from_config`]).
#[derive(Debug)]
pub struct FakeGpus {
    gpus: Vec<Gpu>,
    // std Mutex: never held across an await (the trait is synchronous).
    health: Mutex<Vec<GpuHealth>>,
    xids: Mutex<Vec<Xid>>,
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
                fault: None,
            })
            .collect();
        FakeGpus { gpus, health: Mutex::new(health), xids: Mutex::new(Vec::new()) }
    }

    /// The configured GPUs, with the faults and XIDs the configuration gives them (so
    /// tests of a whole agent process can make a GPU sick).
    pub fn from_config(fake: &[FakeGpuConfig]) -> Self {
        let gpus = FakeGpus::new(fake.iter().map(FakeGpuConfig::to_gpu).collect());
        for g in fake {
            if let Some(why) = &g.unhealthy {
                gpus.set_fault(&g.uuid, Some(why.clone()));
            }
            for &code in &g.xids {
                gpus.inject_xid(&g.uuid, code);
            }
        }
        gpus
    }

    /// Replaces the health reported for `health.uuid`. Returns false for an unknown
    /// UUID.
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

    /// Makes reads of GPU `uuid` fail with `fault` (`None`: they work again). Returns
    /// false for an unknown UUID.
    pub fn set_fault(&self, uuid: &str, fault: Option<String>) -> bool {
        let mut all = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|h| h.uuid == uuid) {
            Some(slot) => {
                slot.fault = fault;
                true
            }
            None => false,
        }
    }

    /// Reports a critical XID for `uuid` at the next [`GpuSource::take_xids`], as
    /// NVML's event would.
    pub fn inject_xid(&self, uuid: &str, code: u64) {
        self.xids.lock().unwrap_or_else(|p| p.into_inner()).push(Xid { uuid: uuid.to_string(), code });
    }
}

impl GpuSource for FakeGpus {
    fn inventory(&self) -> Result<Vec<Gpu>, GpuError> {
        Ok(self.gpus.clone())
    }

    fn health(&self) -> Result<Vec<GpuHealth>, GpuError> {
        Ok(self.health.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn take_xids(&self) -> Vec<Xid> {
        std::mem::take(&mut *self.xids.lock().unwrap_or_else(|p| p.into_inner()))
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
        assert_eq!((h.memory_total_mib, h.ecc_errors, h.fault.as_deref()), (81920, Some(0), None));
        h.ecc_errors = Some(3);
        assert!(fake.set_health(h));
        assert_eq!(fake.health().unwrap()[0].ecc_errors, Some(3));
        assert!(!fake.set_health(GpuHealth { uuid: "nope".into(), ..fake.health().unwrap()[0].clone() }));
    }

    #[test]
    fn faults_and_xids_are_injectable_from_code_and_configuration() {
        let config = |uuid: &str, unhealthy: Option<&str>, xids: Vec<u64>| FakeGpuConfig {
            uuid: uuid.into(),
            model: "T4".into(),
            memory_mib: 16384,
            unhealthy: unhealthy.map(String::from),
            xids,
        };
        let fake =
            FakeGpus::from_config(&[config("GPU-0", Some("fan failed"), vec![]), config("GPU-1", None, vec![79])]);
        let health = fake.health().unwrap();
        assert_eq!((health[0].fault.as_deref(), health[1].fault.as_deref()), (Some("fan failed"), None));
        assert_eq!(fake.take_xids(), [Xid { uuid: "GPU-1".into(), code: 79 }]);
        assert!(fake.take_xids().is_empty(), "an XID is reported once");
        fake.inject_xid("GPU-0", 48);
        assert!(fake.set_fault("GPU-0", None));
        assert_eq!(fake.health().unwrap()[0].fault, None);
        assert_eq!(fake.take_xids(), [Xid { uuid: "GPU-0".into(), code: 48 }]);
        assert!(!fake.set_fault("nope", None));
    }
}
