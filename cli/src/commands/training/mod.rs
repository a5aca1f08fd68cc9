//! `gantryctl training`: create, watch, stop and delete trainings, and read their output.
//!
//! `spec` builds the create form from a file and flags; `view` renders trainings for
//! people; `logs` (with `log_sink`) streams a container's output; `wait` polls a
//! training until it ends and `progress` says what to print and which exit code.

mod log_sink;
mod logs;
mod progress;
mod spec;
mod view;
mod wait;

#[cfg(test)]
mod fake;

use clap::Subcommand;
use gantry_proto::v1::training_service_client::TrainingServiceClient;
use gantry_proto::v1::{
    CreateTrainingRequest, DeleteTrainingRequest, GetTrainingRequest, ListTrainingsRequest, ListTrainingsResponse,
    StopTrainingRequest,
};

pub use self::logs::LogsArgs;
pub use self::spec::CreateArgs;
pub use self::wait::CreateWaitArgs;
use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::request_id::new_request_id;

#[derive(Debug, Subcommand)]
pub enum TrainingCommand {
    /// Create a training from flags, a spec file (-f), or both
    #[command(after_help = progress::EXIT_CODES_HELP)]
    Create {
        #[command(flatten)]
        spec: Box<CreateArgs>,
        #[command(flatten)]
        wait: CreateWaitArgs,
    },
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
    /// Print the output of one of a training's containers (with `-o json`, one
    /// `{"line": ...}` object per line)
    Logs(LogsArgs),
    /// Wait until a training ends, printing its status changes on stderr, then show it
    /// like `get` does; the exit code tells how it ended
    #[command(after_help = progress::EXIT_CODES_HELP)]
    Wait {
        /// Training name
        name: String,
    },
}

pub async fn run(ctx: &Context, cmd: TrainingCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        TrainingCommand::Create { spec: args, wait } => {
            let file = match &args.file {
                Some(path) => spec::load(path)?,
                None => spec::SpecFile::default(),
            };
            let spec = spec::build(&args, file)?;
            let name = spec.name.clone();
            let request = CreateTrainingRequest { project, spec: Some(spec), request_id: new_request_id() };
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { TrainingServiceClient::new(ch).create_training(request).await }
                })
                .await?;
            if wait.waits() {
                return wait::run(ctx, name, Some(created), wait.follow).await;
            }
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
        TrainingCommand::Logs(args) => logs::run(ctx, args).await,
        TrainingCommand::Wait { name } => wait::run(ctx, name, None, false).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> TrainingCommand {
        let cli = Cli::try_parse_from([&["gantryctl", "training"], args].concat()).unwrap();
        match cli.command {
            Command::Training(cmd) => cmd,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn logs_flags() {
        let TrainingCommand::Logs(args) = parse(&["logs", "mnist"]) else { panic!() };
        assert_eq!((args.name.as_str(), args.follow, args.rank, args.tail), ("mnist", false, 0, 0));
        let TrainingCommand::Logs(args) = parse(&["logs", "mnist", "-f", "--rank", "3", "--tail", "100"]) else {
            panic!()
        };
        assert_eq!((args.follow, args.rank, args.tail), (true, 3, 100));
        assert!(Cli::try_parse_from(["gantryctl", "training", "logs", "mnist", "--tail", "-1"]).is_err());
    }

    #[test]
    fn create_waits_with_wait_or_follow_and_keeps_f_for_the_file() {
        let TrainingCommand::Create { spec, wait } = parse(&["create", "mnist", "-f", "spec.toml"]) else { panic!() };
        assert_eq!((spec.name.as_deref(), spec.file.is_some(), wait.waits()), (Some("mnist"), true, false));
        let TrainingCommand::Create { wait, .. } = parse(&["create", "mnist", "--wait"]) else { panic!() };
        assert!(wait.waits() && !wait.follow);
        let TrainingCommand::Create { wait, .. } = parse(&["create", "mnist", "--follow"]) else { panic!() };
        assert!(wait.waits() && wait.follow);
    }

    #[test]
    fn wait_takes_a_name() {
        let TrainingCommand::Wait { name } = parse(&["wait", "mnist"]) else { panic!() };
        assert_eq!(name, "mnist");
    }
}
