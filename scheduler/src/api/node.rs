//! NodeService (operators) and AgentService (agents registering).

use gantry_domain::Node;
use gantry_proto::convert;
use gantry_proto::v1::agent_service_server::AgentService;
use gantry_proto::v1::node_service_server::NodeService;
use gantry_proto::v1::{
    self as pb, GetNodeRequest, ListNodesRequest, ListNodesResponse, RegisterNodeRequest, RegisterNodeResponse,
};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::catalog::unexpected;
use super::context::{ApiContext, now_ms};
use super::status;
use crate::state::{Applied, CommandV1, State, WorkloadOwner};

pub struct NodeApi(pub ApiContext);

/// A node as `caller` may see it: resources are cluster-wide facts, but the workloads
/// listed are only those of projects the caller can see.
fn node_to_wire(state: &State, n: &Node, caller: &Caller) -> pb::Node {
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
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all)]
    async fn list_nodes(&self, req: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let nodes = state.nodes.values().map(|n| node_to_wire(&state, n, &caller)).collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_node(&self, req: Request<GetNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let id = &req.get_ref().id;
        let node = state.nodes.get(id).ok_or_else(|| Status::not_found(format!("node '{id}' not found")))?;
        Ok(Response::new(node_to_wire(&state, node, &caller)))
    }
}

pub struct AgentApi(pub ApiContext);

#[tonic::async_trait]
impl AgentService for AgentApi {
    #[tracing::instrument(skip_all, fields(hostname = %req.get_ref().hostname))]
    async fn register(&self, req: Request<RegisterNodeRequest>) -> Result<Response<RegisterNodeResponse>, Status> {
        let req = req.into_inner();
        // Constant-time enough: the token is a long random secret compared once per join.
        if self.0.join_token.is_empty() || req.join_token != self.0.join_token {
            return Err(Status::unauthenticated("join_token: does not match the cluster's join token"));
        }
        gantry_domain::validate::non_empty_bounded("hostname", &req.hostname, 253).map_err(status::invalid)?;
        let inventory = req
            .inventory
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("inventory: is required"))
            .and_then(|inv| convert::inventory_from_wire(inv).map_err(status::invalid))?;
        let cmd = CommandV1::RegisterNode { hostname: req.hostname, address: req.address, inventory, now_ms: now_ms() };
        match self.0.write(cmd).await? {
            Applied::Node(n) => Ok(Response::new(RegisterNodeResponse { node_id: n.id })),
            other => Err(unexpected(other)),
        }
    }
}
