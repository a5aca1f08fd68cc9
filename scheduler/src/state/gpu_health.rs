//! Unhealthy GPUs in the replicated state.
//!
//! Heartbeats stay in each replica's memory, but placement runs from the replicated
//! state (and `Place` is re-checked on apply by every replica): a GPU placement must
//! skip has to be there too. An agent's report becomes a `SetGpuHealth` entry only when
//! its set of unhealthy GPUs changes (see `agents::gpu_health`), so a healthy cluster
//! writes nothing per heartbeat.

use std::collections::BTreeMap;

use gantry_domain::GpuFault;

use super::{Applied, Outcome, Rejected, State};

/// More unhealthy GPUs than any server holds is a broken or hostile report.
pub const MAX_UNHEALTHY: usize = 64;
/// Bounds a reason (an NVML error message or an XID's meaning).
pub const MAX_REASON: usize = 512;

/// Replaces node `node_id`'s unhealthy GPUs with `unhealthy`, keeping the time each one
/// that stays unhealthy was first recorded.
pub(super) fn set_gpu_health(
    state: &mut State,
    node_id: &str,
    unhealthy: BTreeMap<String, String>,
    now_ms: u64,
) -> Outcome {
    if unhealthy.len() > MAX_UNHEALTHY {
        return Err(Rejected::invalid("unhealthy", format!("at most {MAX_UNHEALTHY} GPUs")));
    }
    for (uuid, reason) in &unhealthy {
        gantry_domain::validate::non_empty_bounded("unhealthy.uuid", uuid, 128)?;
        if reason.is_empty() || reason.len() > MAX_REASON {
            return Err(Rejected::invalid(
                format!("unhealthy[{uuid}]"),
                format!("reason must be 1-{MAX_REASON} bytes"),
            ));
        }
    }
    let node = state.nodes.get_mut(node_id).ok_or_else(|| Rejected::not_found(format!("node '{node_id}'")))?;
    let faults = unhealthy
        .into_iter()
        .map(|(uuid, reason)| {
            let since_ms = node.unhealthy_gpus.get(&uuid).map_or(now_ms, |f| f.since_ms);
            (uuid, GpuFault { reason, since_ms })
        })
        .collect();
    node.unhealthy_gpus = faults;
    Ok(Applied::Node(node.clone()))
}

/// True when `reported` (UUID → why) differs from what the state holds for the node.
pub fn differs(state: &State, node_id: &str, reported: &BTreeMap<String, String>) -> bool {
    let Some(node) = state.nodes.get(node_id) else { return false };
    node.unhealthy_gpus.len() != reported.len()
        || node.unhealthy_gpus.iter().zip(reported).any(|((a, fa), (b, rb))| a != b || &fa.reason != rb)
}

#[cfg(test)]
mod tests {
    use gantry_domain::{Assignment, Gpu, NodeInventory, Placement, TrainingStatus};

    use super::*;
    use crate::state::tests::{cpu_catalog, spec};
    use crate::state::{CommandV1, apply};

    fn gpu_state() -> State {
        let mut state = cpu_catalog();
        let it = gantry_domain::InstanceType {
            name: "g1".into(),
            cpu_millis: 1000,
            memory_mib: 1024,
            gpu_count: 1,
            gpu_model: Some("A100-80GB".into()),
        };
        let image = gantry_domain::Image {
            name: "gpu".into(),
            reference: "r".into(),
            core_type: gantry_domain::ImageCoreType::Gpu,
            framework: gantry_domain::Framework::Python,
            framework_version: String::new(),
            python_version: "3.11".into(),
        };
        apply(&mut state, 3, CommandV1::PutInstanceType { instance_type: it }.into()).unwrap();
        apply(&mut state, 4, CommandV1::PutImage { image }.into()).unwrap();
        let gpus = ["GPU-0", "GPU-1"]
            .iter()
            .map(|u| Gpu { uuid: u.to_string(), model: "A100-80GB".into(), memory_mib: 1 })
            .collect();
        let inventory = NodeInventory { cpu_millis: 8000, memory_mib: 8192, disk_mib: 0, gpus };
        let node = CommandV1::RegisterNode { hostname: "a".into(), address: String::new(), inventory, now_ms: 1 };
        apply(&mut state, 5, node.into()).unwrap();
        state
    }

    fn set(uuids: &[(&str, &str)], now_ms: u64) -> CommandV1 {
        CommandV1::SetGpuHealth {
            node_id: "a".into(),
            unhealthy: uuids.iter().map(|(u, r)| (u.to_string(), r.to_string())).collect(),
            now_ms,
        }
    }

    #[test]
    fn the_set_is_replaced_and_keeps_when_each_gpu_went_bad() {
        let mut state = gpu_state();
        apply(&mut state, 6, set(&[("GPU-0", "xid 79: fell off the bus")], 10).into()).unwrap();
        apply(&mut state, 7, set(&[("GPU-0", "xid 79: fell off the bus"), ("GPU-1", "nvml error")], 20).into())
            .unwrap();
        let faults = &state.nodes["a"].unhealthy_gpus;
        assert_eq!((faults["GPU-0"].since_ms, faults["GPU-1"].since_ms), (10, 20));
        let reported: BTreeMap<String, String> = [("GPU-1".to_string(), "nvml error".to_string())].into();
        assert!(differs(&state, "a", &reported));
        apply(&mut state, 8, set(&[("GPU-1", "nvml error")], 30).into()).unwrap();
        assert!(!differs(&state, "a", &reported));
        assert_eq!(state.nodes["a"].unhealthy_gpus.keys().collect::<Vec<_>>(), ["GPU-1"]);
        assert!(apply(&mut state, 9, set(&[("GPU-1", "")], 30).into()).is_err());
        let unknown = CommandV1::SetGpuHealth { node_id: "zz".into(), unhealthy: BTreeMap::new(), now_ms: 1 };
        assert!(apply(&mut state, 10, unknown.into()).is_err());
    }

    /// Regression (issue 9): placement handed out a GPU its node reported unhealthy.
    #[test]
    fn regression_placement_skips_unhealthy_gpus_and_a_stale_place_on_one_is_rejected() {
        let mut state = gpu_state();
        apply(&mut state, 6, set(&[("GPU-0", "xid 48: double bit ECC error")], 10).into()).unwrap();
        let snapshot = state.node_snapshots();
        let free: Vec<&str> = snapshot[0].free_gpus.iter().map(|g| g.uuid.as_str()).collect();
        assert_eq!(free, ["GPU-1"]);
        assert_eq!(snapshot[0].free.gpus, 1);

        let create = CommandV1::CreateTraining {
            project: "p".into(),
            id: "w1".into(),
            experiment_id: "e1".into(),
            request_id: String::new(),
            spec: spec("t", "e", "g1", "gpu", 1),
            now_ms: 1,
        };
        apply(&mut state, 7, create.into()).unwrap();
        // A decision made before the report (a stale leader) is refused on apply.
        let on = |gpu: &str| CommandV1::Place {
            workload_id: "w1".into(),
            placement: Placement { assignments: vec![Assignment { node_id: "a".into(), gpu_uuids: vec![gpu.into()] }] },
            now_ms: 11,
            ports: None,
        };
        assert!(apply(&mut state, 8, on("GPU-0").into()).is_err());
        let plan = crate::controller::placement::plan(&state, 12, gantry_domain::PortRange::default());
        let [CommandV1::Place { placement, .. }] = &plan[..] else { panic!("{plan:?}") };
        assert_eq!(placement.assignments[0].gpu_uuids, ["GPU-1"]);
        apply(&mut state, 9, on("GPU-1").into()).unwrap();
        assert_eq!(state.training("p", "t").unwrap().status, TrainingStatus::CreateInProgress);
    }
}
