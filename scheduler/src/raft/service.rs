//! The peer-facing gRPC service: raft messages in, forwarded proposals in.

use gantry_proto::v1::raft_service_server::RaftService;
use gantry_proto::v1::{ProposeRequest, ProposeResponse, RejoinRequest, RejoinResponse, StepRequest, StepResponse};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tonic::{Request, Response, Status, Streaming};

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

fn decode(req: &StepRequest) -> Result<Vec<Message>, Status> {
    req.messages
        .iter()
        .map(|bytes| Message::parse_from_bytes(bytes).map_err(|e| Status::invalid_argument(format!("messages: {e}"))))
        .collect()
}

#[tonic::async_trait]
impl RaftService for RaftPeerService {
    async fn step(&self, request: Request<StepRequest>) -> Result<Response<StepResponse>, Status> {
        self.handle.step(decode(&request.into_inner())?);
        Ok(Response::new(StepResponse {}))
    }

    async fn step_stream(&self, request: Request<Streaming<StepRequest>>) -> Result<Response<StepResponse>, Status> {
        let mut stream = request.into_inner();
        while let Some(req) = stream.message().await? {
            self.handle.step(decode(&req)?);
        }
        Ok(Response::new(StepResponse {}))
    }

    /// Replicas now forward writes inside raft (MsgProp); this stays for a peer of the
    /// previous version during a rolling upgrade.
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
