//! [`HostSample`] → what the scheduler receives (pure).

use gantry_domain::{Gpu, NodeInventory};

use super::{HostSample, InventoryError, NodeMetrics, ResourceOverrides};

const MIB: u64 = 1024 * 1024;

/// The node's capacity for placement: detected CPU and memory after `overrides`, the
/// total size of the data directory's filesystem, and `gpus`.
pub fn node_inventory(
    sample: &HostSample,
    gpus: Vec<Gpu>,
    overrides: &ResourceOverrides,
) -> Result<NodeInventory, InventoryError> {
    let cpu_millis = reported(
        "cpu_millis",
        u64::from(sample.cpu_count) * 1000,
        overrides.cpu_millis,
        overrides.reserved_cpu_millis,
    )?;
    let memory_mib =
        reported("memory_mib", sample.memory_total_bytes / MIB, overrides.memory_mib, overrides.reserved_memory_mib)?;
    Ok(NodeInventory { cpu_millis, memory_mib, disk_mib: sample.disk_total_bytes / MIB, gpus })
}

fn reported(
    resource: &'static str,
    detected: u64,
    configured: Option<u64>,
    reserved: u64,
) -> Result<u64, InventoryError> {
    let base = match configured {
        Some(configured) if configured > detected => {
            return Err(InventoryError::OverrideExceedsHost { resource, configured, detected });
        }
        Some(configured) => configured,
        None => detected,
    };
    match base.checked_sub(reserved) {
        Some(left) if left > 0 => Ok(left),
        _ => Err(InventoryError::NothingLeft { resource, reserved, available: base }),
    }
}

/// The load part of a heartbeat.
pub fn node_metrics(sample: &HostSample) -> NodeMetrics {
    let mean = if sample.cpu_usage_pct.is_empty() {
        0.0
    } else {
        sample.cpu_usage_pct.iter().sum::<f32>() / sample.cpu_usage_pct.len() as f32
    };
    NodeMetrics {
        load: sample.load,
        cpu_usage_pct: mean,
        per_cpu_usage_pct: sample.cpu_usage_pct.clone(),
        memory_used_mib: sample.memory_used_bytes / MIB,
        memory_total_mib: sample.memory_total_bytes / MIB,
        disk_available_mib: sample.disk_available_bytes / MIB,
        disk_total_mib: sample.disk_total_bytes / MIB,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::LoadAverage;

    fn sample() -> HostSample {
        HostSample {
            cpu_count: 16,
            memory_total_bytes: 64 * 1024 * MIB,
            memory_used_bytes: 8 * 1024 * MIB,
            disk_total_bytes: 500 * 1024 * MIB,
            disk_available_bytes: 100 * 1024 * MIB,
            load: LoadAverage { one: 1.5, five: 1.0, fifteen: 0.5 },
            cpu_usage_pct: vec![10.0, 30.0],
        }
    }

    #[test]
    fn detected_capacity_with_gpus() {
        let gpu = Gpu { uuid: "GPU-1".into(), model: "A100-80GB".into(), memory_mib: 81920 };
        let inv = node_inventory(&sample(), vec![gpu.clone()], &ResourceOverrides::default()).unwrap();
        assert_eq!(inv, NodeInventory { cpu_millis: 16_000, memory_mib: 65_536, disk_mib: 512_000, gpus: vec![gpu] });
    }

    #[test]
    fn overrides_then_reservations() {
        let reserve = ResourceOverrides { reserved_cpu_millis: 1000, reserved_memory_mib: 4096, ..Default::default() };
        let inv = node_inventory(&sample(), vec![], &reserve).unwrap();
        assert_eq!((inv.cpu_millis, inv.memory_mib), (15_000, 61_440));

        let both = ResourceOverrides {
            cpu_millis: Some(8000),
            memory_mib: Some(32_768),
            reserved_cpu_millis: 500,
            ..Default::default()
        };
        let inv = node_inventory(&sample(), vec![], &both).unwrap();
        assert_eq!((inv.cpu_millis, inv.memory_mib), (7_500, 32_768));
    }

    #[test]
    fn impossible_settings_are_errors() {
        let too_much = ResourceOverrides { cpu_millis: Some(32_000), ..Default::default() };
        assert_eq!(
            node_inventory(&sample(), vec![], &too_much),
            Err(InventoryError::OverrideExceedsHost { resource: "cpu_millis", configured: 32_000, detected: 16_000 })
        );
        let all_reserved = ResourceOverrides { reserved_memory_mib: 65_536, ..Default::default() };
        assert!(matches!(
            node_inventory(&sample(), vec![], &all_reserved),
            Err(InventoryError::NothingLeft { resource: "memory_mib", .. })
        ));
    }

    #[test]
    fn metrics_in_mib_and_mean_usage() {
        let m = node_metrics(&sample());
        assert_eq!(m.cpu_usage_pct, 20.0);
        assert_eq!((m.memory_used_mib, m.memory_total_mib), (8192, 65_536));
        assert_eq!((m.disk_available_mib, m.disk_total_mib), (102_400, 512_000));
        assert_eq!(m.load.one, 1.5);
    }
}
