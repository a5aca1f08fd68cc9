//! `gantryctl experiment`: named groups of trainings within a project.

use clap::{Args, Subcommand};
use gantry_proto::v1::experiment_service_client::ExperimentServiceClient;
use gantry_proto::v1::{
    CreateExperimentRequest, DeleteExperimentRequest, Experiment, GetExperimentRequest, ListExperimentsRequest,
    ListExperimentsResponse, Tag,
};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::format::timestamp;
use crate::output::table::{Table, fields, truncate};
use crate::parse::{self, Pair};
use crate::request_id::new_request_id;

/// Longest description shown in the list before it is cut.
const DESCRIPTION_WIDTH: usize = 40;

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment
    Create(CreateArgs),
    /// List the project's experiments
    List(ReadArgs),
    /// Show one experiment
    Get {
        name: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Delete an experiment (it must have no trainings)
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Free text (at most 255 characters)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    /// A KEY=VALUE tag; repeat for more (at most 10)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub tags: Vec<Pair>,
}

/// Tags as the wire spells them.
pub fn tags(pairs: &[Pair]) -> Vec<Tag> {
    pairs.iter().map(|p| Tag { key: p.key.clone(), value: p.value.clone() }).collect()
}

/// `k=v, k2=v2` for views.
pub fn tags_text(tags: &[Tag]) -> String {
    tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect::<Vec<_>>().join(", ")
}

pub async fn run(ctx: &Context, cmd: ExperimentCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        ExperimentCommand::Create(args) => {
            let request = CreateExperimentRequest {
                project,
                name: args.name,
                description: args.description,
                tags: tags(&args.tags),
                request_id: new_request_id(),
            };
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ExperimentServiceClient::new(ch).create_experiment(request).await }
                })
                .await?;
            emit(ctx.format, &created, |e| format!("experiment \"{}\" created: {}\n", e.name, e.status))
        }
        ExperimentCommand::List(read) => {
            let request = ListExperimentsRequest { project, read: read.options() };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ExperimentServiceClient::new(ch).list_experiments(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListExperimentsResponse| list_view(&l.experiments))
        }
        ExperimentCommand::Get { name, read } => {
            let request = GetExperimentRequest { project, name, read: read.options() };
            let experiment = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ExperimentServiceClient::new(ch).get_experiment(request).await }
                })
                .await?;
            emit(ctx.format, &experiment, detail_view)
        }
        ExperimentCommand::Delete { name } => {
            let request = DeleteExperimentRequest { project, name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ExperimentServiceClient::new(ch).delete_experiment(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("experiment \"{name}\" deleted\n"))
        }
    }
}

fn list_view(experiments: &[Experiment]) -> String {
    let mut table = Table::new(["NAME", "STATUS", "TRAININGS", "CREATED", "DESCRIPTION"]);
    for e in experiments {
        table.row([
            e.name.clone(),
            e.status.clone(),
            e.training_count.to_string(),
            timestamp(e.created_at_ms),
            truncate(&e.description, DESCRIPTION_WIDTH),
        ]);
    }
    table.render()
}

fn detail_view(e: &Experiment) -> String {
    fields(&[
        ("Name", e.name.clone()),
        ("ID", e.id.clone()),
        ("Project", e.project.clone()),
        ("Status", e.status.clone()),
        ("Reason", e.status_reason.clone()),
        ("Description", e.description.clone()),
        ("Tags", tags_text(&e.tags)),
        ("Trainings", e.training_count.to_string()),
        ("Created", timestamp(e.created_at_ms)),
        ("Updated", timestamp(e.updated_at_ms)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> Experiment {
        Experiment {
            id: "exp-1".into(),
            project: "default".into(),
            name: "mnist".into(),
            description: "digits, with a description long enough to be cut".into(),
            tags: vec![Tag { key: "team".into(), value: "vision".into() }],
            status: "ACTIVE".into(),
            status_reason: String::new(),
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_000_000,
            training_count: 3,
        }
    }

    #[test]
    fn list_view_cuts_long_descriptions() {
        assert_eq!(
            list_view(&[experiment()]),
            "\
NAME    STATUS   TRAININGS   CREATED                DESCRIPTION
mnist   ACTIVE   3           2023-11-14T22:13:20Z   digits, with a description long enough …
"
        );
    }

    #[test]
    fn detail_view_shows_every_field() {
        let view = detail_view(&experiment());
        assert!(view.contains("Tags:         team=vision\n"), "{view}");
        assert!(view.contains("Reason:       -\n"), "{view}");
        assert!(view.contains("Trainings:    3\n"), "{view}");
    }
}
