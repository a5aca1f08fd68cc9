//! Node registration and status: who may join, that no GPU is registered twice, and
//! what ends when a node goes DOWN or comes back with less (`node_loss`).

use gantry_domain::{Node, NodeInventory, NodeStatus};

use super::{Applied, Outcome, Rejected, State};
use super::{node_loss, revocations};

pub(super) fn register_node(
    state: &mut State,
    hostname: String,
    address: String,
    inventory: NodeInventory,
    now_ms: u64,
) -> Outcome {
    gantry_domain::validate::non_empty_bounded("hostname", &hostname, 253)?;
    // The API refuses a revoked node's certificates; this closes the window between that
    // check and a revocation committed before this entry.
    if revocations::blocks_ready(state, &hostname) {
        return Err(Rejected::PermissionDenied { reason: format!("node '{hostname}' was revoked") });
    }
    check_gpus_unique(state, &hostname, &inventory)?;
    let node = state.nodes.entry(hostname.clone()).or_insert_with(|| Node {
        id: hostname.clone(),
        hostname: hostname.clone(),
        address: address.clone(),
        inventory: inventory.clone(),
        status: NodeStatus::Ready,
        registered_at_ms: now_ms,
        status_changed_at_ms: now_ms,
        unhealthy_gpus: Default::default(),
    });
    node.address = address;
    node.inventory = inventory;
    if node.status == NodeStatus::Down {
        node.status = NodeStatus::Ready;
        node.status_changed_at_ms = now_ms;
    }
    let node = node.clone();
    node_loss::end_what_no_longer_fits(state, &node, now_ms);
    Ok(Applied::Node(node))
}

/// A GPU is one physical device: a UUID another node already reports is a misconfigured
/// fake inventory or a cloned host, and placement would hand the same device out twice.
pub(super) fn check_gpus_unique(state: &State, hostname: &str, inventory: &NodeInventory) -> Result<(), Rejected> {
    for (i, gpu) in inventory.gpus.iter().enumerate() {
        if let Some(other) =
            state.nodes.values().find(|n| n.id != hostname && n.inventory.gpus.iter().any(|g| g.uuid == gpu.uuid))
        {
            return Err(Rejected::invalid(
                format!("inventory.gpus[{i}].uuid"),
                format!("GPU {} is already registered by node '{}'", gpu.uuid, other.id),
            ));
        }
    }
    Ok(())
}

pub(super) fn set_node_status(
    state: &mut State,
    node_id: &str,
    status: NodeStatus,
    reason: &str,
    now_ms: u64,
) -> Outcome {
    if status == NodeStatus::Ready && revocations::blocks_ready(state, node_id) {
        return Err(Rejected::PermissionDenied { reason: format!("node '{node_id}' was revoked") });
    }
    let node = state.nodes.get_mut(node_id).ok_or_else(|| Rejected::not_found(format!("node '{node_id}'")))?;
    if node.status == status {
        return Ok(Applied::Node(node.clone()));
    }
    node.status = status;
    node.status_changed_at_ms = now_ms;
    let node = node.clone();
    if status == NodeStatus::Down {
        node_loss::end_workloads_on_lost_node(state, node_id, reason, now_ms);
    }
    Ok(Applied::Node(node))
}
