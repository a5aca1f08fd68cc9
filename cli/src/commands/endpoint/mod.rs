//! `gantryctl endpoint`: serving endpoints, their stages and stage resources, API keys,
//! and `invoke` to call one through the gateway.

mod args;
mod invoke;
mod key;
mod stage;
mod view;

use clap::Subcommand;
use gantry_proto::v1::endpoint_service_client::EndpointServiceClient;
use gantry_proto::v1::{
    CreateEndpointRequest, DeleteEndpointRequest, GetEndpointRequest, ListEndpointsRequest, ListEndpointsResponse,
    UpdateEndpointRequest,
};

use super::Context;
use super::experiment::tags;
use crate::cli::ReadArgs;
use crate::connect::AuthChannel;
use crate::output::emit;
use crate::request_id::new_request_id;
pub use args::{CreateArgs, UpdateArgs};

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint with its default stage
    Create(CreateArgs),
    /// List the project's endpoints
    List(ReadArgs),
    /// Show one endpoint and its stages
    Get {
        name: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Change an endpoint's name, description or tags
    Update(UpdateArgs),
    /// Delete an endpoint (only its default stage may remain)
    Delete { name: String },
    /// Stages of an endpoint and their resources
    #[command(subcommand)]
    Stage(stage::StageCommand),
    /// API keys that may call an endpoint
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// POST a JSON body to an endpoint's resource through the gateway and print the answer
    Invoke(invoke::InvokeArgs),
}

/// The endpoint service on a connection the connector chose.
pub(crate) fn client(ch: AuthChannel) -> EndpointServiceClient<AuthChannel> {
    EndpointServiceClient::new(ch)
}

pub async fn run(ctx: &Context, cmd: EndpointCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        EndpointCommand::Create(args) => {
            let request = CreateEndpointRequest {
                project,
                name: args.name.clone(),
                description: args.description.clone(),
                tags: tags(&args.tags),
                stage: Some(args.stage.spec("default")),
                request_id: new_request_id(),
            };
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).create_endpoint(request).await }
                })
                .await?;
            emit(ctx.format, &created, |e| format!("endpoint \"{}\" created: {} (URL {})\n", e.name, e.status, e.url))
        }
        EndpointCommand::List(read) => {
            let request = ListEndpointsRequest { project, read: read.options() };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).list_endpoints(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListEndpointsResponse| view::endpoint_list(&l.endpoints))
        }
        EndpointCommand::Get { name, read } => {
            let request = GetEndpointRequest { project, name, read: read.options() };
            let endpoint = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).get_endpoint(request).await }
                })
                .await?;
            emit(ctx.format, &endpoint, view::endpoint_detail)
        }
        EndpointCommand::Update(args) => {
            let request = UpdateEndpointRequest {
                project,
                name: args.name.clone(),
                new_name: args.new_name.clone(),
                description: args.description.clone(),
                tags: tags(&args.tags),
                set_tags: !args.tags.is_empty() || args.clear_tags,
            };
            let updated = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).update_endpoint(request).await }
                })
                .await?;
            emit(ctx.format, &updated, |e| format!("endpoint \"{}\" updated\n", e.name))
        }
        EndpointCommand::Delete { name } => {
            let request = DeleteEndpointRequest { project, name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).delete_endpoint(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("endpoint \"{name}\" is being deleted\n"))
        }
        EndpointCommand::Stage(cmd) => stage::run(ctx, cmd).await,
        EndpointCommand::Key(cmd) => key::run(ctx, cmd).await,
        EndpointCommand::Invoke(args) => invoke::run(ctx, args).await,
    }
}
