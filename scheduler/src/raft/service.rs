//! The peer-facing gRPC service: raft messages in, re-admission requests in.
//!
//! Every method starts with [`PeerPolicy::authorize`]: the caller must present the
//! replica certificate of a configured member (see `gantry_pki::replica_id_of`). Any
//! other certificate of the cluster CA — an agent's node certificate, a client's, the
//! shared development leaf — is refused with `PermissionDenied` naming what it
//! presented, before a byte of its request reaches raft-rs. A member may then only
//! speak for itself: every message's `from`, and the id it asks to re-admit, must be
//! its own.

use std::collections::BTreeSet;

use gantry_pki::PeerCertificate;
use gantry_proto::v1::raft_service_server::RaftService;
use gantry_proto::v1::{RejoinRequest, RejoinResponse, StepRequest, StepResponse};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tonic::{Request, Response, Status, Streaming};

use super::{ProposeError, RaftHandle};

/// Who may call the peer service of one replica.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// This replica and its configured peers.
    members: BTreeSet<u64>,
    /// Mutual TLS: callers are known by their replica certificate. Off only with
    /// `tls.insecure_dev`, where nobody can be authenticated and only the ids that
    /// requests name are checked against the membership.
    tls: bool,
}

/// The authenticated caller: its replica id, or `None` without TLS.
type Caller = Option<u64>;

impl PeerPolicy {
    pub fn new(me: u64, peers: impl IntoIterator<Item = u64>, tls: bool) -> Self {
        let mut members: BTreeSet<u64> = peers.into_iter().collect();
        members.insert(me);
        PeerPolicy { members, tls }
    }

    /// The one gate of every peer RPC (see the module docs).
    pub fn authorize<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        if !self.tls {
            return Ok(None);
        }
        match gantry_pki::peer_certificate(req) {
            PeerCertificate::Replica(id) if self.members.contains(&id) => Ok(Some(id)),
            PeerCertificate::Replica(id) => Err(Status::permission_denied(format!(
                "the raft peer port serves only the replicas {:?}; this connection presented the replica \
                 certificate of replica {id}, which is not in the configured membership",
                self.members
            ))),
            other => Err(Status::permission_denied(format!(
                "the raft peer port serves only the replica certificates of replicas {:?}; this connection \
                 presented {other}",
                self.members
            ))),
        }
    }

    /// `field` names replica `id` as the sender: it must be the caller itself (with
    /// TLS) or at least a member (without).
    fn check_sender(&self, caller: Caller, field: &str, id: u64) -> Result<(), Status> {
        match caller {
            Some(me) if me == id => Ok(()),
            Some(me) => Err(Status::permission_denied(format!(
                "{field}: is replica {id}, but this connection is replica {me}'s; a replica speaks only for itself"
            ))),
            None if self.members.contains(&id) => Ok(()),
            None => Err(Status::permission_denied(format!(
                "{field}: replica {id} is not in the configured membership {:?}",
                self.members
            ))),
        }
    }

    /// Decodes a batch, refusing it whole if any message claims another sender.
    fn decode(&self, caller: Caller, req: &StepRequest) -> Result<Vec<Message>, Status> {
        self.check_sender(caller, "from", req.from)?;
        req.messages
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let m = Message::parse_from_bytes(bytes)
                    .map_err(|e| Status::invalid_argument(format!("messages[{i}]: {e}")))?;
                self.check_sender(caller, &format!("messages[{i}].from"), m.from)?;
                Ok(m)
            })
            .collect()
    }
}

pub struct RaftPeerService {
    handle: RaftHandle,
    policy: PeerPolicy,
}

impl RaftPeerService {
    pub fn new(handle: RaftHandle, policy: PeerPolicy) -> Self {
        RaftPeerService { handle, policy }
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
        let caller = self.policy.authorize(&request)?;
        self.handle.step(self.policy.decode(caller, request.get_ref())?);
        Ok(Response::new(StepResponse {}))
    }

    async fn step_stream(&self, request: Request<Streaming<StepRequest>>) -> Result<Response<StepResponse>, Status> {
        let caller = self.policy.authorize(&request)?;
        let mut stream = request.into_inner();
        while let Some(req) = stream.message().await? {
            self.handle.step(self.policy.decode(caller, &req)?);
        }
        Ok(Response::new(StepResponse {}))
    }

    async fn rejoin(&self, request: Request<RejoinRequest>) -> Result<Response<RejoinResponse>, Status> {
        let caller = self.policy.authorize(&request)?;
        let id = request.get_ref().id;
        self.policy.check_sender(caller, "id", id)?;
        self.handle.readmit(id).await.map_err(|e| propose_error_status(&e))?;
        Ok(Response::new(RejoinResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: u64, senders: &[u64]) -> StepRequest {
        let messages = senders
            .iter()
            .map(|&f| {
                let m = Message { from: f, to: 1, ..Default::default() };
                m.write_to_bytes().unwrap()
            })
            .collect();
        StepRequest { from, messages }
    }

    #[test]
    fn without_tls_nobody_is_authenticated_but_ids_must_be_members() {
        let policy = PeerPolicy::new(1, [2, 3], false);
        let caller = policy.authorize(&Request::new(())).unwrap();
        assert_eq!(caller, None);
        assert_eq!(policy.decode(caller, &batch(2, &[2, 2])).unwrap().len(), 2);
        let err = policy.decode(caller, &batch(2, &[2, 9])).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().starts_with("messages[1].from: replica 9"), "{}", err.message());
        assert!(policy.check_sender(caller, "id", 4).is_err());
    }

    #[test]
    fn with_tls_a_request_without_a_certificate_is_refused() {
        let policy = PeerPolicy::new(1, [2, 3], true);
        let err = policy.authorize(&Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("presented no client certificate"), "{}", err.message());
    }

    #[test]
    fn a_replica_speaks_only_for_itself() {
        let policy = PeerPolicy::new(1, [2, 3], true);
        let me = Some(2);
        assert!(policy.decode(me, &batch(2, &[2])).is_ok());
        let err = policy.decode(me, &batch(3, &[3])).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().starts_with("from: is replica 3"), "{}", err.message());
        let err = policy.decode(me, &batch(2, &[2, 3])).unwrap_err();
        assert!(err.message().starts_with("messages[1].from"), "{}", err.message());
        assert!(policy.check_sender(me, "id", 2).is_ok());
        assert_eq!(policy.check_sender(me, "id", 3).unwrap_err().code(), tonic::Code::PermissionDenied);
        let err = policy.decode(me, &StepRequest { from: 2, messages: vec![vec![0xff; 3]] }).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
}
