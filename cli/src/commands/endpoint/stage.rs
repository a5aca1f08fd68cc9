//! `gantryctl endpoint stage`: stages, their resources, the default switch and what the
//! gateway serves for them.

use clap::{Args, Subcommand};
use gantry_proto::v1::{
    AddStageResourceRequest, CreateStageRequest, DeleteStageRequest, DeleteStageResourceRequest,
    GetGatewayConfigRequest, GetStageRequest, GetStageStatsRequest, ListStagesRequest, ListStagesResponse,
    RedeployStageRequest, SetDefaultStageRequest, UpdateStageResourceRequest,
};

use super::args::{StageArgs, resource};
use super::{client, view};
use crate::cli::ReadArgs;
use crate::commands::Context;
use crate::output::emit;
use crate::request_id::new_request_id;

#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// Add a stage to an existing endpoint
    Create {
        endpoint: String,
        #[command(flatten)]
        stage: StageArgs,
    },
    /// List an endpoint's stages
    List {
        endpoint: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Show a stage: URL, instances, pods, resources, monitoring
    Get {
        endpoint: String,
        stage: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Delete a stage (never the default one)
    Delete { endpoint: String, stage: String },
    /// Make a stage the default (the endpoint URL answers from it; the old default's
    /// resources are then removed)
    SetDefault { endpoint: String, stage: String },
    /// Deploy the stage's gateway configuration again (after STAGE DEPLOY FAIL)
    Redeploy { endpoint: String, stage: String },
    /// What the gateways were asked to serve for the stage, and what each reported
    GatewayConfig { endpoint: String, stage: String },
    /// API statistics per minute (calls, errors, latency percentiles)
    Stats {
        endpoint: String,
        stage: String,
        /// The last N minutes (at most 1440)
        #[arg(long, default_value_t = 60)]
        minutes: u32,
    },
    /// Add a resource (model=NAME,path=/PATH[,pods=N][,description=TEXT])
    AddResource(ResourceArgs),
    /// Delete a stage resource by id
    DeleteResource { endpoint: String, stage: String, resource_id: String },
    /// Roll a stage resource to another model (new pods first, no failed request)
    SetModel { endpoint: String, stage: String, resource_id: String, model: String },
}

#[derive(Debug, Args)]
pub struct ResourceArgs {
    pub endpoint: String,
    pub stage: String,
    #[arg(value_parser = resource)]
    pub resource: gantry_proto::v1::StageResourceSpec,
}

pub async fn run(ctx: &Context, cmd: StageCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        StageCommand::Create { endpoint, stage } => {
            let request =
                CreateStageRequest { project, endpoint, stage: Some(stage.spec("")), request_id: new_request_id() };
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).create_stage(request).await }
                })
                .await?;
            emit(ctx.format, &created, |s| format!("stage \"{}\" created: {} (URL {})\n", s.name, s.status, s.url))
        }
        StageCommand::List { endpoint, read } => {
            let request = ListStagesRequest { project, endpoint, read: read.options() };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).list_stages(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListStagesResponse| view::stage_list(&l.stages))
        }
        StageCommand::Get { endpoint, stage, read } => {
            let request = GetStageRequest { project, endpoint, stage, read: read.options() };
            let stage = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).get_stage(request).await }
                })
                .await?;
            emit(ctx.format, &stage, view::stage_detail)
        }
        StageCommand::Delete { endpoint, stage } => {
            let request = DeleteStageRequest { project, endpoint, stage: stage.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).delete_stage(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("stage \"{stage}\" is being deleted\n"))
        }
        StageCommand::SetDefault { endpoint, stage } => {
            let request = SetDefaultStageRequest { project, endpoint, stage };
            let e = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).set_default_stage(request).await }
                })
                .await?;
            emit(ctx.format, &e, |e| format!("endpoint \"{}\": default stage is now \"{}\"\n", e.name, e.default_stage))
        }
        StageCommand::Redeploy { endpoint, stage } => {
            let request = RedeployStageRequest { project, endpoint, stage };
            let s = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).redeploy_stage(request).await }
                })
                .await?;
            emit(ctx.format, &s, |s| format!("stage \"{}\" redeploying: {}\n", s.name, s.gateway_status))
        }
        StageCommand::GatewayConfig { endpoint, stage } => {
            let request = GetGatewayConfigRequest { project, endpoint, stage };
            let config = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).get_gateway_config(request).await }
                })
                .await?;
            emit(ctx.format, &config, view::gateway_config)
        }
        StageCommand::Stats { endpoint, stage, minutes } => {
            let request = GetStageStatsRequest { project, endpoint, stage, minutes };
            let stats = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).get_stage_stats(request).await }
                })
                .await?;
            emit(ctx.format, &stats, view::stage_stats)
        }
        StageCommand::AddResource(args) => {
            let request = AddStageResourceRequest {
                project,
                endpoint: args.endpoint,
                stage: args.stage,
                resource: Some(args.resource),
            };
            let s = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).add_stage_resource(request).await }
                })
                .await?;
            emit(ctx.format, &s, view::stage_detail)
        }
        StageCommand::DeleteResource { endpoint, stage, resource_id } => {
            let request = DeleteStageResourceRequest { project, endpoint, stage, resource_id };
            let s = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).delete_stage_resource(request).await }
                })
                .await?;
            emit(ctx.format, &s, view::stage_detail)
        }
        StageCommand::SetModel { endpoint, stage, resource_id, model } => {
            let request = UpdateStageResourceRequest { project, endpoint, stage, resource_id, model };
            let s = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).update_stage_resource(request).await }
                })
                .await?;
            emit(ctx.format, &s, view::stage_detail)
        }
    }
}
