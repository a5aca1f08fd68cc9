//! `gantryctl image`: the catalog of container images trainings run.

use clap::{Args, Subcommand};
use gantry_domain::{Framework, ImageCoreType};
use gantry_proto::v1::catalog_service_client::CatalogServiceClient;
use gantry_proto::v1::{DeleteImageRequest, Image, ListImagesRequest, ListImagesResponse, PutImageRequest};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::table::Table;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Create or replace an image
    Put(PutArgs),
    /// List images
    List(ReadArgs),
    /// Delete an image
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub name: String,
    /// What the agent runs, e.g. gantry/python:3.11 (built locally; there is no registry)
    #[arg(long, value_name = "IMAGE")]
    pub reference: String,
    /// CPU or GPU
    #[arg(long, value_name = "TYPE", value_parser = core_type)]
    pub core_type: String,
    /// TENSORFLOW, PYTORCH or PYTHON
    #[arg(long, value_name = "NAME", value_parser = framework)]
    pub framework: String,
    /// Framework version (may be empty for PYTHON)
    #[arg(long, value_name = "VERSION", default_value = "")]
    pub framework_version: String,
    /// Python version, e.g. 3.11
    #[arg(long, value_name = "VERSION")]
    pub python_version: String,
}

/// Checked here (not only by the server) so a typo is a usage error listing the choices;
/// sent in the canonical spelling.
fn core_type(s: &str) -> Result<String, String> {
    ImageCoreType::parse(s).map(|t| t.as_str().to_string()).ok_or_else(|| "must be CPU or GPU".to_string())
}

fn framework(s: &str) -> Result<String, String> {
    Framework::parse(s)
        .map(|f| f.as_str().to_string())
        .ok_or_else(|| "must be TENSORFLOW, PYTORCH or PYTHON".to_string())
}

pub async fn run(ctx: &Context, cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Put(args) => {
            let request = PutImageRequest {
                image: Some(Image {
                    name: args.name,
                    reference: args.reference,
                    core_type: args.core_type,
                    framework: args.framework,
                    framework_version: args.framework_version,
                    python_version: args.python_version,
                }),
            };
            let saved = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { CatalogServiceClient::new(ch).put_image(request).await }
                })
                .await?;
            emit(ctx.format, &saved, |img| list_view(std::slice::from_ref(img)))
        }
        ImageCommand::List(read) => {
            let request = ListImagesRequest { read: read.options() };
            let list =
                ctx.conn.call(|ch| async move { CatalogServiceClient::new(ch).list_images(request).await }).await?;
            emit(ctx.format, &list, |l: &ListImagesResponse| list_view(&l.images))
        }
        ImageCommand::Delete { name } => {
            let request = DeleteImageRequest { name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { CatalogServiceClient::new(ch).delete_image(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("image \"{name}\" deleted\n"))
        }
    }
}

fn list_view(images: &[Image]) -> String {
    let mut table = Table::new(["NAME", "REFERENCE", "CORE TYPE", "FRAMEWORK", "PYTHON"]);
    for img in images {
        let framework = if img.framework_version.is_empty() {
            img.framework.clone()
        } else {
            format!("{} {}", img.framework, img.framework_version)
        };
        table.row([
            img.name.clone(),
            img.reference.clone(),
            img.core_type.clone(),
            framework,
            img.python_version.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_type_and_framework_are_canonicalised() {
        assert_eq!(core_type("gpu"), Ok("GPU".to_string()));
        assert!(core_type("TPU").is_err());
        assert_eq!(framework("PyTorch"), Ok("PYTORCH".to_string()));
        assert!(framework("jax").is_err());
    }

    #[test]
    fn list_view_joins_framework_and_version() {
        let images = [
            Image {
                name: "python-cpu".into(),
                reference: "gantry/python:3.11".into(),
                core_type: "CPU".into(),
                framework: "PYTHON".into(),
                framework_version: String::new(),
                python_version: "3.11".into(),
            },
            Image {
                name: "torch-gpu".into(),
                reference: "gantry/torch:2.4-cuda".into(),
                core_type: "GPU".into(),
                framework: "PYTORCH".into(),
                framework_version: "2.4".into(),
                python_version: "3.11".into(),
            },
        ];
        assert_eq!(
            list_view(&images),
            "\
NAME         REFERENCE               CORE TYPE   FRAMEWORK     PYTHON
python-cpu   gantry/python:3.11      CPU         PYTHON        3.11
torch-gpu    gantry/torch:2.4-cuda   GPU         PYTORCH 2.4   3.11
"
        );
    }
}
