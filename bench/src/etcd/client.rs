//! The minimal etcd v3 client the benchmarks need: `KV.Put` and `Maintenance.Status`,
//! generated from `bench/proto/etcd.proto` by `build.rs` (protox, so no `protoc`).
//!
//! ```text
//!   EtcdClient ──balanced Channel──▶ http://127.0.0.1:p0, :p1, …   (plain HTTP/2, loopback)
//!        ├── KvClient::put
//!        └── MaintenanceClient::status
//! ```
//!
//! Like etcd's own clients it always balances, even over one endpoint, and connects
//! lazily: it can be built before the members start and survives a member being killed
//! and restarted.

use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

#[allow(clippy::all, clippy::unwrap_used)]
mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::kv_client::KvClient;
use pb::maintenance_client::MaintenanceClient;
use pb::{PutRequest, StatusRequest};

/// What failed while talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdClientError {
    /// No endpoint to connect to.
    #[error("no etcd endpoints given")]
    NoEndpoints,
    /// An endpoint is not a valid URI.
    #[error("invalid etcd endpoint {url:?}")]
    InvalidEndpoint {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The call failed on the wire or etcd refused it (timeouts included).
    #[error("etcd {call} failed")]
    Rpc {
        call: &'static str,
        #[source]
        source: tonic::Status,
    },
    /// etcd answered a status request without the response header it always sets.
    #[error("etcd status response has no header")]
    MissingHeader,
}

/// Bytes of a `PutRequest` (protobuf) with a key and a value of these lengths.
pub fn put_request_len(key_len: usize, value_len: usize) -> usize {
    use prost::Message as _;
    PutRequest { key: vec![0; key_len], value: vec![0; value_len], ..PutRequest::default() }.encoded_len()
}

/// How one member sees the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// Raft ID of the member that answered.
    pub member_id: u64,
    /// Raft ID of the member it follows; 0 while it knows no leader.
    pub leader: u64,
}

/// A client of one or more etcd members. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct EtcdClient {
    kv: KvClient<Channel>,
    maintenance: MaintenanceClient<Channel>,
}

impl EtcdClient {
    /// A client balanced over `endpoints` (`http://host:port`, or `https://` with `tls`).
    /// `connect_timeout` bounds each connection attempt and `timeout` each request on an
    /// open connection. Must be called inside a tokio runtime (the balancer runs as a
    /// task); connects on first use.
    pub fn new(
        endpoints: &[String],
        connect_timeout: Duration,
        timeout: Duration,
        tls: Option<&ClientTlsConfig>,
    ) -> Result<Self, EtcdClientError> {
        if endpoints.is_empty() {
            return Err(EtcdClientError::NoEndpoints);
        }
        let list = endpoints
            .iter()
            .map(|url| {
                let invalid = |source| EtcdClientError::InvalidEndpoint { url: url.clone(), source };
                let endpoint = Endpoint::from_shared(url.clone()).map_err(invalid)?;
                let endpoint = endpoint.connect_timeout(connect_timeout).timeout(timeout);
                match tls {
                    Some(tls) => endpoint.tls_config(tls.clone()).map_err(invalid),
                    None => Ok(endpoint),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channel = Channel::balance_list(list.into_iter());
        Ok(EtcdClient { kv: KvClient::new(channel.clone()), maintenance: MaintenanceClient::new(channel) })
    }

    /// Puts `key` = `value` without a lease. `Ok` means etcd acknowledged the write, i.e.
    /// it is committed by a quorum and in the WAL.
    pub async fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<(), EtcdClientError> {
        let req = PutRequest { key: key.into(), value: value.into(), ..PutRequest::default() };
        self.kv.put(req).await.map_err(|source| EtcdClientError::Rpc { call: "put", source })?;
        Ok(())
    }

    /// The status of whichever member answers (with one endpoint: that member).
    pub async fn status(&mut self) -> Result<MemberStatus, EtcdClientError> {
        let resp = self
            .maintenance
            .status(StatusRequest {})
            .await
            .map_err(|source| EtcdClientError::Rpc { call: "status", source })?
            .into_inner();
        let header = resp.header.ok_or(EtcdClientError::MissingHeader)?;
        Ok(MemberStatus { member_id: header.member_id, leader: resp.leader })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[tokio::test]
    async fn rejects_bad_endpoints() {
        let t = Duration::from_secs(1);
        assert!(matches!(EtcdClient::new(&[], t, t, None), Err(EtcdClientError::NoEndpoints)));
        let bad = ["http://127.0.0.1:2379 with spaces".to_string()];
        assert!(matches!(EtcdClient::new(&bad, t, t, None), Err(EtcdClientError::InvalidEndpoint { .. })));
    }

    /// The bytes etcd's own Go client sends for `Put("k", "v")`: field 1 and 2, length-delimited.
    #[test]
    fn put_request_matches_etcd_wire_format() {
        let req = PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..PutRequest::default() };
        assert_eq!(req.encode_to_vec(), [0x0a, 1, b'k', 0x12, 1, b'v']);
    }

    /// Fields etcd sends that the subset leaves out (here `raftAppliedIndex = 7` and
    /// `isLearner = 10`) are skipped, and the known ones keep etcd's numbers.
    #[test]
    fn status_response_skips_unknown_etcd_fields() -> Result<(), prost::DecodeError> {
        // header{member_id = 2: 7}, leader = 4: 9, raftAppliedIndex = 7: 5, isLearner = 10: true
        let bytes = [0x0a, 2, 0x10, 7, 0x20, 9, 0x38, 5, 0x50, 1];
        let resp = pb::StatusResponse::decode(&bytes[..])?;
        assert_eq!(resp.header.map(|h| h.member_id), Some(7));
        assert_eq!(resp.leader, 9);
        Ok(())
    }
}
