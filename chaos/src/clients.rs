//! Typed gRPC clients for one replica, presenting the same credentials on every call.

use gantry_proto::v1::agent_service_client::AgentServiceClient;
use gantry_proto::v1::catalog_service_client::CatalogServiceClient;
use gantry_proto::v1::cluster_service_client::ClusterServiceClient;
use gantry_proto::v1::endpoint_service_client::EndpointServiceClient;
use gantry_proto::v1::experiment_service_client::ExperimentServiceClient;
use gantry_proto::v1::model_service_client::ModelServiceClient;
use gantry_proto::v1::node_service_client::NodeServiceClient;
use gantry_proto::v1::project_service_client::ProjectServiceClient;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use tonic::Status;
use tonic::codegen::InterceptedService;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The channel every client uses: TLS to one replica plus the `authorization` header.
pub type AuthChannel = InterceptedService<Channel, Authorization>;

/// The `authorization` header set on every request: `Bearer {token}` normally, any raw
/// value or none at all for tests of authentication itself.
#[derive(Clone)]
pub struct Authorization(Option<AsciiMetadataValue>);

impl Authorization {
    pub fn bearer(token: &str) -> anyhow::Result<Authorization> {
        let value =
            format!("Bearer {token}").parse().map_err(|_| anyhow::anyhow!("token is not a valid header value"))?;
        Ok(Authorization(Some(value)))
    }

    pub fn raw(value: AsciiMetadataValue) -> Authorization {
        Authorization(Some(value))
    }

    pub fn none() -> Authorization {
        Authorization(None)
    }
}

impl Interceptor for Authorization {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
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
    pub projects: ProjectServiceClient<AuthChannel>,
    pub models: ModelServiceClient<AuthChannel>,
    pub endpoints: EndpointServiceClient<AuthChannel>,
}

impl Clients {
    pub fn new(channel: Channel, auth: Authorization) -> Clients {
        let ch = || InterceptedService::new(channel.clone(), auth.clone());
        Clients {
            cluster: ClusterServiceClient::new(ch()),
            catalog: CatalogServiceClient::new(ch()),
            nodes: NodeServiceClient::new(ch()),
            agent: AgentServiceClient::new(ch()),
            experiments: ExperimentServiceClient::new(ch()),
            trainings: TrainingServiceClient::new(ch()),
            projects: ProjectServiceClient::new(ch()),
            models: ModelServiceClient::new(ch()),
            endpoints: EndpointServiceClient::new(ch()),
        }
    }
}
