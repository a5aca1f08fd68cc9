//! `gantryctl training`: create, watch, stop and delete trainings.
//!
//! `spec` builds the create form from a file and flags; `view` renders trainings for
//! people.

mod spec;
mod view;

use clap::Subcommand;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use gantry_proto::v1::{
    CreateTrainingRequest, DeleteTrainingRequest, GetTrainingRequest, ListTrainingsRequest, ListTrainingsResponse,
    StopTrainingRequest,
};

pub use self::spec::CreateArgs;
use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::request_id::new_request_id;

#[derive(Debug, Subcommand)]
pub enum TrainingCommand {
    /// Create a training from flags, a spec file (-f), or both
    Create(Box<CreateArgs>),
    /// List the project's trainings
    List {
        /// Only trainings of this experiment
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Show one training: its form, placement and status history
    Get {
        name: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Stop a running training
    Stop { name: String },
    /// Delete a training (stop it first if it is running)
    Delete { name: String },
}

pub async fn run(ctx: &Context, cmd: TrainingCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        TrainingCommand::Create(args) => {
            let file = match &args.file {
                Some(path) => spec::load(path)?,
                None => spec::SpecFile::default(),
            };
            let request =
                CreateTrainingRequest { project, spec: Some(spec::build(&args, file)?), request_id: new_request_id() };
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).create_training(request).await }
                })
                .await?;
            emit(ctx.format, &created, |t| format!("training \"{}\" created: {}\n", view::name(t), t.status))
        }
        TrainingCommand::List { experiment, read } => {
            let request =
                ListTrainingsRequest { project, experiment: experiment.unwrap_or_default(), read: read.options() };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).list_trainings(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListTrainingsResponse| view::list(&l.trainings))
        }
        TrainingCommand::Get { name, read } => {
            let request = GetTrainingRequest { project, name, read: read.options() };
            let training = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).get_training(request).await }
                })
                .await?;
            emit(ctx.format, &training, view::detail)
        }
        TrainingCommand::Stop { name } => {
            let request = StopTrainingRequest { project, name };
            let stopped = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).stop_training(request).await }
                })
                .await?;
            emit(ctx.format, &stopped, |t| format!("training \"{}\": {}\n", view::name(t), t.status))
        }
        TrainingCommand::Delete { name } => {
            let request = DeleteTrainingRequest { project, name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).delete_training(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("training \"{name}\" deleted\n"))
        }
    }
}
