//! [`GpuWatch`]: the node's GPU health over time (pure).
//!
//! Each heartbeat interval it takes a health sample and the XIDs seen since the last
//! one, and says which GPUs must get no work and why:
//! - a GPU whose reads fail (its sample's fault), while they fail;
//! - a GPU of the inventory the driver no longer lists (fell off the bus);
//! - every GPU, while no sample can be taken at all;
//! - a GPU that reported a critical XID other than an application's error, from then
//!   until the agent restarts (the GPU needs a reset; see [`super::xid_codes`]).
//!
//! XIDs are also kept as events (time, GPU, code, meaning), the newest
//! [`MAX_EVENTS`], sent with every heartbeat.

use std::collections::{BTreeMap, VecDeque};

use gantry_domain::Gpu;

use super::{GpuError, GpuHealth, Xid, xid_codes};

/// XID events kept by the agent (and resent with each heartbeat).
pub const MAX_EVENTS: usize = 32;

/// One critical XID as the agent saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidRecord {
    pub at_ms: u64,
    pub uuid: String,
    pub code: u64,
    pub meaning: &'static str,
}

/// A GPU's sample and whether it may get work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedGpu {
    pub health: GpuHealth,
    /// Why it must get no work; `None` when healthy.
    pub unhealthy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuReport {
    pub gpus: Vec<ReportedGpu>,
    /// Oldest first.
    pub events: Vec<XidRecord>,
}

#[derive(Debug)]
pub struct GpuWatch {
    /// The inventory the node registered with.
    known: Vec<Gpu>,
    /// GPUs a hardware XID marked unhealthy, by UUID.
    xid_faults: BTreeMap<String, String>,
    events: VecDeque<XidRecord>,
}

impl GpuWatch {
    pub fn new(known: Vec<Gpu>) -> Self {
        GpuWatch { known, xid_faults: BTreeMap::new(), events: VecDeque::new() }
    }

    pub fn observe(&mut self, sample: Result<Vec<GpuHealth>, GpuError>, xids: Vec<Xid>, now_ms: u64) -> GpuReport {
        for x in xids {
            let meaning = xid_codes::meaning(x.code);
            if !xid_codes::is_application_error(x.code) {
                self.xid_faults.insert(x.uuid.clone(), format!("xid {}: {meaning}", x.code));
            }
            if self.events.len() == MAX_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(XidRecord { at_ms: now_ms, uuid: x.uuid, code: x.code, meaning });
        }
        let (samples, missing_reason) = match sample {
            Ok(samples) => (samples, "the driver no longer lists it".to_string()),
            Err(e) => (Vec::new(), format!("no GPU can be read: {e}")),
        };
        let mut gpus: Vec<ReportedGpu> = samples
            .into_iter()
            .map(|health| {
                let unhealthy = health.fault.clone().or_else(|| self.xid_faults.get(&health.uuid).cloned());
                ReportedGpu { health, unhealthy }
            })
            .collect();
        for g in &self.known {
            if gpus.iter().any(|r| r.health.uuid == g.uuid) {
                continue;
            }
            let why = self.xid_faults.get(&g.uuid).cloned().unwrap_or_else(|| missing_reason.clone());
            gpus.push(ReportedGpu { health: unsampled(g), unhealthy: Some(why) });
        }
        GpuReport { gpus, events: self.events.iter().cloned().collect() }
    }
}

fn unsampled(g: &Gpu) -> GpuHealth {
    GpuHealth {
        uuid: g.uuid.clone(),
        temperature_c: None,
        utilization_pct: None,
        memory_used_mib: 0,
        memory_total_mib: g.memory_mib,
        ecc_errors: None,
        fault: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(uuid: &str) -> Gpu {
        Gpu { uuid: uuid.into(), model: "A100-80GB".into(), memory_mib: 81920 }
    }

    fn healthy(uuid: &str) -> GpuHealth {
        GpuHealth { fault: None, ..unsampled(&gpu(uuid)) }
    }

    fn xid(uuid: &str, code: u64) -> Xid {
        Xid { uuid: uuid.into(), code }
    }

    fn unhealthy(report: &GpuReport) -> Vec<(&str, &str)> {
        report.gpus.iter().filter_map(|g| Some((g.health.uuid.as_str(), g.unhealthy.as_deref()?))).collect()
    }

    #[test]
    fn a_hardware_xid_marks_its_gpu_until_restart_an_application_xid_does_not() {
        let mut watch = GpuWatch::new(vec![gpu("GPU-0"), gpu("GPU-1")]);
        let both = || Ok(vec![healthy("GPU-0"), healthy("GPU-1")]);
        let r = watch.observe(both(), vec![xid("GPU-0", 13), xid("GPU-1", 79)], 100);
        assert_eq!(unhealthy(&r), [("GPU-1", "xid 79: GPU has fallen off the bus")]);
        assert_eq!(r.events.len(), 2);
        assert_eq!((r.events[1].at_ms, r.events[1].code, r.events[1].meaning), (100, 79, "GPU has fallen off the bus"));
        // Later samples read fine, the mark stays; the events are still reported.
        let r = watch.observe(both(), vec![], 200);
        assert_eq!(unhealthy(&r).len(), 1);
        assert_eq!(r.events.len(), 2);
    }

    #[test]
    fn read_errors_missing_gpus_and_a_failed_sample_are_unhealthy_while_they_last() {
        let mut watch = GpuWatch::new(vec![gpu("GPU-0"), gpu("GPU-1")]);
        let bad = GpuHealth { fault: Some("nvml temperature failed: GPU is lost".into()), ..healthy("GPU-0") };
        let r = watch.observe(Ok(vec![bad]), vec![], 1);
        assert_eq!(
            unhealthy(&r),
            [("GPU-0", "nvml temperature failed: GPU is lost"), ("GPU-1", "the driver no longer lists it")]
        );
        let r = watch.observe(Err(GpuError::Nvml { call: "device_count", message: "driver gone".into() }), vec![], 2);
        assert_eq!(r.gpus.len(), 2);
        assert!(r.gpus.iter().all(|g| g.unhealthy.as_deref().is_some_and(|w| w.contains("driver gone"))));
        let r = watch.observe(Ok(vec![healthy("GPU-0"), healthy("GPU-1")]), vec![], 3);
        assert!(unhealthy(&r).is_empty(), "recovered reads are healthy again");
    }

    #[test]
    fn events_are_bounded_newest_kept() {
        let mut watch = GpuWatch::new(vec![]);
        for t in 0..(MAX_EVENTS as u64 + 5) {
            watch.observe(Ok(vec![]), vec![xid("GPU-9", 48)], t);
        }
        let r = watch.observe(Ok(vec![]), vec![], 1000);
        assert_eq!(r.events.len(), MAX_EVENTS);
        assert_eq!(r.events[0].at_ms, 5);
    }
}
