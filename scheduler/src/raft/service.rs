//! The peer-facing gRPC service: raft messages in, forwarded proposals in.

use gantry_proto::v1::raft_service_server::RaftService;
use gantry_proto::v1::{ProposeRequest, ProposeResponse, RejoinRequest, RejoinResponse, StepRequest, StepResponse};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tonic::{Request, Response, Status};

use super::{ProposeError, RaftHandle};

pub struct RaftPeerService {
    handle: RaftHandle,
}

impl RaftPeerService {
    pub fn new(handle: RaftHandle) -> Self {
        RaftPeerService { handle }
    }
}

pub fn propose_error_status(e: &ProposeError) -> Status {
    match e {
        ProposeError::Codec(_) => Status::internal(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl RaftService for RaftPeerService {
    async fn step(&self, request: Request<StepRequest>) -> Result<Response<StepResponse>, Status> {
        let req = request.into_inner();
        let mut msgs = Vec::with_capacity(req.messages.len());
        for bytes in &req.messages {
            let m = Message::parse_from_bytes(bytes).map_err(|e| Status::invalid_argument(format!("messages: {e}")))?;
            msgs.push(m);
        }
        self.handle.step(msgs);
        Ok(Response::new(StepResponse {}))
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeResponse>, Status> {
        if !self.handle.is_leader() {
            return Err(Status::unavailable("not the leader"));
        }
        let command = request.into_inner().command;
        let (index, outcome) = self.handle.propose_bytes(command).await.map_err(|e| propose_error_status(&e))?;
        let outcome = serde_json::to_vec(&outcome).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ProposeResponse { outcome, index }))
    }

    async fn rejoin(&self, request: Request<RejoinRequest>) -> Result<Response<RejoinResponse>, Status> {
        let id = request.into_inner().id;
        self.handle.readmit(id).await.map_err(|e| propose_error_status(&e))?;
        Ok(Response::new(RejoinResponse {}))
    }
}
