//! NodeService: the operator's view of nodes, with the health this replica last heard.

use gantry_domain::Node;
use gantry_proto::convert;
use gantry_proto::v1::node_service_server::NodeService;
use gantry_proto::v1::{self as pb, GetNodeRequest, ListNodesRequest, ListNodesResponse};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::context::ApiContext;
use crate::agents::AgentHub;
use crate::state::{State, WorkloadOwner};

pub struct NodeApi(pub ApiContext);

/// A node as `caller` may see it: resources are cluster-wide facts, but the workloads
/// listed are only those of projects the caller can see.
fn node_to_wire(state: &State, hub: &AgentHub, n: &Node, caller: &Caller) -> pb::Node {
    let (allocated, allocated_gpus) = state.allocated_on(&n.id);
    let capacity = n.inventory.capacity();
    let mut free = capacity.saturating_sub(&allocated);
    free.gpus = capacity.gpus.saturating_sub(allocated_gpus.len() as u32);
    let workloads = state
        .workloads
        .iter()
        .filter(|(_, w)| w.placement.iter().flat_map(|p| &p.assignments).any(|a| a.node_id == n.id))
        .filter(|(_, w)| match &w.owner {
            WorkloadOwner::Training { project, .. } => caller.sees_project(project),
        })
        .map(|(id, _)| id.clone())
        .collect();
    pb::Node {
        id: n.id.clone(),
        hostname: n.hostname.clone(),
        address: n.address.clone(),
        inventory: Some(convert::inventory_to_wire(&n.inventory)),
        status: n.status.as_str().into(),
        allocated: Some(convert::resources_to_wire(&allocated)),
        free: Some(convert::resources_to_wire(&free)),
        allocated_gpus,
        registered_at_ms: n.registered_at_ms,
        status_changed_at_ms: n.status_changed_at_ms,
        workloads,
        health: Some(hub.health(&n.id)),
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all)]
    async fn list_nodes(&self, req: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let nodes = state.nodes.values().map(|n| node_to_wire(&state, &self.0.hub, n, &caller)).collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_node(&self, req: Request<GetNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let id = &req.get_ref().id;
        let node = state.nodes.get(id).ok_or_else(|| Status::not_found(format!("node '{id}' not found")))?;
        Ok(Response::new(node_to_wire(&state, &self.0.hub, node, &caller)))
    }
}
