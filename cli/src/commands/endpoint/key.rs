//! `gantryctl endpoint key`: the API keys callers present to the gateway.

use clap::Subcommand;
use gantry_proto::v1::{CreateApiKeyRequest, DeleteApiKeyRequest, ListApiKeysRequest, ListApiKeysResponse};

use super::{client, view};
use crate::commands::Context;
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; its secret is printed once and never again
    Create {
        endpoint: String,
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
    },
    /// List an endpoint's API keys (without secrets)
    List { endpoint: String },
    /// Delete an API key: calls with it are refused from then on
    Delete { endpoint: String, id: String },
}

pub async fn run(ctx: &Context, cmd: KeyCommand) -> anyhow::Result<()> {
    let project = ctx.project.clone();
    match cmd {
        KeyCommand::Create { endpoint, description } => {
            let request = CreateApiKeyRequest { project, endpoint, description };
            let key = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).create_api_key(request).await }
                })
                .await?;
            emit(ctx.format, &key, |k| format!("API key {} created. Secret (shown only now):\n{}\n", k.id, k.secret))
        }
        KeyCommand::List { endpoint } => {
            let request = ListApiKeysRequest { project, endpoint };
            let list = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).list_api_keys(request).await }
                })
                .await?;
            emit(ctx.format, &list, |l: &ListApiKeysResponse| view::key_list(&l.keys))
        }
        KeyCommand::Delete { endpoint, id } => {
            let request = DeleteApiKeyRequest { project, endpoint, id: id.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { client(ch).delete_api_key(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("API key {id} deleted\n"))
        }
    }
}
