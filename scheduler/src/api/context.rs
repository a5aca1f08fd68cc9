//! What every admin service shares: the replica's raft handle and the token table.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_proto::v1::ReadOptions;
use tonic::Status;

use super::auth::Auth;
use super::status;
use crate::agents::AgentHub;
use crate::raft::RaftHandle;
use crate::secret::Secret;
use crate::state::{Applied, Command, CommandV1};

#[derive(Clone)]
pub struct ApiContext {
    pub raft: RaftHandle,
    pub auth: Auth,
    pub join_token: Secret,
    /// This replica's live agent sessions.
    pub hub: AgentHub,
    /// Directory of the CA (certificate and key) that signs node certificates; `None`
    /// when this replica cannot sign (agents then bring their own certificates).
    pub node_ca: Option<PathBuf>,
    /// The API is served over TLS: agents then act only with their node certificates.
    pub tls: bool,
    /// Validity of the node certificates this replica signs.
    pub node_cert_lifetime: Duration,
    /// Where callers reach the gateways (`[gateway] public_url`): the base of every
    /// endpoint and stage URL the API shows.
    pub gateway_url: String,
}

impl ApiContext {
    /// Replicates a command; Ok only once it is durable on a majority and applied.
    pub async fn write(&self, command: CommandV1) -> Result<Applied, Status> {
        let (_, outcome) = self.raft.propose(&Command::V1(command)).await.map_err(status::propose)?;
        outcome.map_err(status::rejected)
    }

    /// Linearizable unless the caller asked for a stale read.
    pub async fn read_barrier(&self, read: Option<&ReadOptions>) -> Result<(), Status> {
        if read.is_some_and(|r| r.stale) {
            return Ok(());
        }
        self.raft.read_barrier().await.map_err(status::propose)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A fresh resource id: 16 random bytes as hex, prefixed by kind (`exp-…`, `trn-…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}
