//! The gRPC admin API (and the agent-facing registration service).
//!
//! Every handler: authenticate the bearer token → authorize the project → validate the
//! request into domain types (InvalidArgument names the field) → for writes, replicate
//! a command and map its outcome; for reads, pass the ReadIndex barrier (unless the
//! caller asked for a stale read) and copy out of the local state.

mod agent;
pub mod auth;
mod catalog;
mod cluster;
mod context;
pub mod endpoint;
mod experiment;
mod gateway;
mod model;
mod node;
mod pods;
mod project;
pub mod status;
mod training;

pub use agent::AgentApi;
pub use catalog::CatalogApi;
pub use cluster::ClusterApi;
pub use context::{ApiContext, now_ms};
pub use endpoint::EndpointApi;
pub use experiment::ExperimentApi;
pub use gateway::GatewayApi;
pub use model::ModelApi;
pub use node::NodeApi;
pub use project::ProjectApi;
pub use training::TrainingApi;
