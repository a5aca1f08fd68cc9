//! `gantryctl model`: artifacts registered for serving, made from a COMPLETE training or
//! given as an external path.

use clap::{ArgGroup, Args, Subcommand};
use gantry_proto::v1::model_service_client::ModelServiceClient;
use gantry_proto::v1::{
    CreateModelRequest, DeleteModelRequest, GetModelRequest, ListModelsRequest, ListModelsResponse, Model,
    UpdateModelRequest, model_source,
};

use super::Context;
use super::experiment::{tags, tags_text};
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::format::timestamp;
use crate::output::table::{Table, fields, truncate};
use crate::parse::{self, Pair};
use crate::request_id::new_request_id;

/// Longest description shown in the list before it is cut.
const DESCRIPTION_WIDTH: usize = 30;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Register a model from a COMPLETE training (--from-training) or an artifact path
    Create(CreateArgs),
    /// List the project's models
    List(ReadArgs),
    /// Show one model
    Get {
        name: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Change a model's name, description or tags
    Update(UpdateArgs),
    /// Delete a model (no endpoint may use it)
    Delete { name: String },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("artifact").required(true).args(["artifact_path", "from_training"])))]
pub struct CreateArgs {
    /// Model name; for PyTorch it must be the PyTorch model name (`{name}.pt` in the
    /// artifact directory)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Free text (at most 255 characters)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    /// A KEY=VALUE tag; repeat for more (at most 10)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub tags: Vec<Pair>,
    /// TENSORFLOW, PYTORCH, ONNX or SCIKIT_LEARN (any case)
    #[arg(long, value_name = "FRAMEWORK")]
    pub framework: String,
    /// The framework's version (e.g. 2.1.0)
    #[arg(long, value_name = "VERSION")]
    pub framework_version: String,
    /// Directory holding the artifact: obs://, nas:// or file:///
    #[arg(long, value_name = "PATH")]
    pub artifact_path: Option<String>,
    /// Name of a COMPLETE training of the project: its output path is the artifact
    #[arg(long, value_name = "TRAINING")]
    pub from_training: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The model to change
    pub name: String,
    #[arg(long, value_name = "NAME")]
    pub new_name: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Replace all tags with these KEY=VALUE tags; repeat for more
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair, conflicts_with = "clear_tags")]
    pub tags: Vec<Pair>,
    /// Remove every tag
    #[arg(long)]
    pub clear_tags: bool,
}

impl CreateArgs {
    fn request(self, project: String) -> CreateModelRequest {
        CreateModelRequest {
            project,
            name: self.name,
            description: self.description,
            tags: tags(&self.tags),
            framework: self.framework,
            framework_version: self.framework_version,
            artifact_path: self.artifact_path.unwrap_or_default(),
            from_training: self.from_training.unwrap_or_default(),
            request_id: new_request_id(),
        }
    }
}

impl UpdateArgs {
    fn request(self, project: String) -> UpdateModelRequest {
        let set_tags = self.clear_tags || !self.tags.is_empty();
        UpdateModelRequest {
            project,
            name: self.name,
            new_name: self.new_name,
            description: self.description,
            tags: tags(&self.tags),
            set_tags,
        }
    }
}

pub async fn run(ctx: &Context, cmd: ModelCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        ModelCommand::Create(args) => {
            let request = args.request(project);
            let created = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ModelServiceClient::new(ch).create_model(request).await }
                })
                .await?;
            emit(ctx.format, &created, |m| format!("model \"{}\" created: {}\n", m.name, m.artifact_path))
        }
        ModelCommand::List(read) => {
            let request = ListModelsRequest { project, read: read.options() };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ModelServiceClient::new(ch).list_models(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListModelsResponse| list_view(&l.models))
        }
        ModelCommand::Get { name, read } => {
            let request = GetModelRequest { project, name, read: read.options() };
            let model = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ModelServiceClient::new(ch).get_model(request).await }
                })
                .await?;
            emit(ctx.format, &model, detail_view)
        }
        ModelCommand::Update(args) => {
            let request = args.request(project);
            let updated = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ModelServiceClient::new(ch).update_model(request).await }
                })
                .await?;
            emit(ctx.format, &updated, |m| format!("model \"{}\" updated\n", m.name))
        }
        ModelCommand::Delete { name } => {
            let request = DeleteModelRequest { project, name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ModelServiceClient::new(ch).delete_model(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("model \"{name}\" deleted\n"))
        }
    }
}

/// The source training's name and id, or `-` for an external artifact.
fn training_of(m: &Model) -> (String, String) {
    match m.source.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(model_source::Kind::Training(t)) => (t.training_name.clone(), t.training_id.clone()),
        _ => ("-".into(), "-".into()),
    }
}

/// The guide's list: name, description, tags, artifact path, training name and id,
/// framework.
fn list_view(models: &[Model]) -> String {
    let mut table =
        Table::new(["NAME", "DESCRIPTION", "TAGS", "ARTIFACT PATH", "TRAINING NAME", "TRAINING ID", "FRAMEWORK"]);
    for m in models {
        let (training, training_id) = training_of(m);
        table.row([
            m.name.clone(),
            truncate(&m.description, DESCRIPTION_WIDTH),
            if m.tags.is_empty() { "-".into() } else { tags_text(&m.tags) },
            m.artifact_path.clone(),
            training,
            training_id,
            format!("{} {}", m.framework, m.framework_version),
        ]);
    }
    table.render()
}

fn detail_view(m: &Model) -> String {
    let (training, training_id) = training_of(m);
    fields(&[
        ("Name", m.name.clone()),
        ("ID", m.id.clone()),
        ("Project", m.project.clone()),
        ("Description", m.description.clone()),
        ("Tags", tags_text(&m.tags)),
        ("Framework", format!("{} {}", m.framework, m.framework_version)),
        ("Artifact path", m.artifact_path.clone()),
        ("Training", training),
        ("Training ID", training_id),
        ("Endpoints", m.used_by_endpoints.join(", ")),
        ("Created", timestamp(m.created_at_ms)),
        ("Updated", timestamp(m.updated_at_ms)),
    ])
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use gantry_proto::v1::{ModelSource, Tag, TrainingSource};

    use super::*;

    fn model() -> Model {
        Model {
            id: "mdl-1".into(),
            project: "default".into(),
            name: "mnist".into(),
            description: "digits".into(),
            tags: vec![Tag { key: "team".into(), value: "vision".into() }],
            framework: "PYTORCH".into(),
            framework_version: "2.1".into(),
            artifact_path: "file:///srv/out/mnist".into(),
            source: Some(ModelSource {
                kind: Some(model_source::Kind::Training(TrainingSource {
                    training_id: "trn-7".into(),
                    training_name: "train-mnist".into(),
                })),
            }),
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_000_000,
            used_by_endpoints: vec![],
        }
    }

    #[test]
    fn list_view_has_the_guides_columns() {
        let external = Model { name: "ext".into(), source: None, tags: vec![], ..model() };
        assert_eq!(
            list_view(&[model(), external]),
            "\
NAME    DESCRIPTION   TAGS          ARTIFACT PATH           TRAINING NAME   TRAINING ID   FRAMEWORK
mnist   digits        team=vision   file:///srv/out/mnist   train-mnist     trn-7         PYTORCH 2.1
ext     digits        -             file:///srv/out/mnist   -               -             PYTORCH 2.1
"
        );
    }

    #[test]
    fn detail_view_names_the_source() {
        let view = detail_view(&model());
        assert!(view.contains("train-mnist"), "{view}");
        assert!(view.contains("trn-7"), "{view}");
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: ModelCommand,
    }

    #[test]
    fn create_takes_a_path_or_a_training_but_not_both() {
        let base = ["x", "create", "--name", "m", "--framework", "onnx", "--framework-version", "1"];
        assert!(Cli::try_parse_from(base).is_err(), "one source is required");
        let both = [&base[..], &["--artifact-path", "file:///a", "--from-training", "t"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
        let Ok(Cli { cmd: ModelCommand::Create(args) }) =
            Cli::try_parse_from([&base[..], &["--from-training", "t", "--tag", "k=v"]].concat())
        else {
            panic!("parses")
        };
        let req = args.request("p".into());
        assert_eq!((req.from_training.as_str(), req.artifact_path.as_str(), req.tags.len()), ("t", "", 1));
        assert!(!req.request_id.is_empty());
    }

    #[test]
    fn update_sets_tags_only_when_asked() {
        let parse = |extra: &[&str]| match Cli::try_parse_from([&["x", "update", "m"][..], extra].concat()) {
            Ok(Cli { cmd: ModelCommand::Update(args) }) => args.request("p".into()),
            other => panic!("{other:?}"),
        };
        assert!(!parse(&["--description", "d"]).set_tags);
        let cleared = parse(&["--clear-tags"]);
        assert!(cleared.set_tags && cleared.tags.is_empty());
        let tagged = parse(&["--tag", "a=b", "--new-name", "n"]);
        assert_eq!((tagged.set_tags, tagged.tags.len(), tagged.new_name.as_deref()), (true, 1, Some("n")));
        assert!(Cli::try_parse_from(["x", "update", "m", "--tag", "a=b", "--clear-tags"]).is_err());
    }
}
