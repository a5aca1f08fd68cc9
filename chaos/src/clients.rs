//! Typed gRPC clients for one replica, presenting a bearer token on every call.

use gantry_proto::v1::agent_service_client::AgentServiceClient;
use gantry_proto::v1::catalog_service_client::CatalogServiceClient;
use gantry_proto::v1::cluster_service_client::ClusterServiceClient;
use gantry_proto::v1::experiment_service_client::ExperimentServiceClient;
use gantry_proto::v1::node_service_client::NodeServiceClient;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use tonic::Status;
use tonic::codegen::InterceptedService;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The channel every client uses: TLS to one replica plus `authorization: Bearer …`.
pub type AuthChannel = InterceptedService<Channel, BearerToken>;

/// Sets `authorization: Bearer {token}` on every request.
#[derive(Clone)]
pub struct BearerToken(AsciiMetadataValue);

impl BearerToken {
    pub fn new(token: &str) -> anyhow::Result<BearerToken> {
        let value =
            format!("Bearer {token}").parse().map_err(|_| anyhow::anyhow!("token is not a valid header value"))?;
        Ok(BearerToken(value))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// One client per service, all on the same channel (one HTTP/2 connection, reconnected
/// by tonic after the replica restarts).
#[derive(Clone)]
pub struct Clients {
    pub cluster: ClusterServiceClient<AuthChannel>,
    pub catalog: CatalogServiceClient<AuthChannel>,
    pub nodes: NodeServiceClient<AuthChannel>,
    pub agent: AgentServiceClient<AuthChannel>,
    pub experiments: ExperimentServiceClient<AuthChannel>,
    pub trainings: TrainingServiceClient<AuthChannel>,
}

impl Clients {
    pub fn new(channel: Channel, token: BearerToken) -> Clients {
        let ch = || InterceptedService::new(channel.clone(), token.clone());
        Clients {
            cluster: ClusterServiceClient::new(ch()),
            catalog: CatalogServiceClient::new(ch()),
            nodes: NodeServiceClient::new(ch()),
            agent: AgentServiceClient::new(ch()),
            experiments: ExperimentServiceClient::new(ch()),
            trainings: TrainingServiceClient::new(ch()),
        }
    }
}
