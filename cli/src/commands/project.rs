//! `gantryctl project`: the storage each project may use (operators; reading a
//! project's own grants needs only its token).
//!
//! `grant` and `revoke` edit the current set (read, change, replace): two operators
//! editing one project at the same moment can lose one edit, as with any
//! read-modify-write; `grants` shows what is in force.

use clap::{Args, Subcommand};
use gantry_proto::v1::project_service_client::ProjectServiceClient;
use gantry_proto::v1::{
    GetStorageGrantsRequest, ListStorageGrantsRequest, ListStorageGrantsResponse, ProjectGrants,
    SetStorageGrantsRequest, StorageGrants,
};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::table::Table;

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Show a project's storage grants (default: the current project)
    Grants {
        project: Option<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Let a project read or write more storage roots (file:///… or nas://ID:/…)
    Grant(EditArgs),
    /// Take storage roots away from a project
    Revoke(EditArgs),
    /// Every project that has storage grants
    List(ReadArgs),
}

#[derive(Debug, Args)]
pub struct EditArgs {
    pub project: String,
    /// A root the project may read (algorithms, datasets, input checkpoints, models); repeatable
    #[arg(long, value_name = "ROOT")]
    pub read: Vec<String>,
    /// A root the project may write (outputs, checkpoints, notebook NAS mounts); implies read; repeatable
    #[arg(long, value_name = "ROOT")]
    pub write: Vec<String>,
}

/// `current` with `edit`'s roots added (`grant`) or removed (`revoke`), in order and
/// without duplicates.
fn edited(current: StorageGrants, edit: &EditArgs, grant: bool) -> StorageGrants {
    let apply = |mut roots: Vec<String>, change: &[String]| {
        if grant {
            for r in change {
                if !roots.contains(r) {
                    roots.push(r.clone());
                }
            }
        } else {
            roots.retain(|r| !change.contains(r));
        }
        roots
    };
    StorageGrants { read: apply(current.read, &edit.read), write: apply(current.write, &edit.write) }
}

async fn get(ctx: &Context, project: String, read: ReadArgs) -> anyhow::Result<ProjectGrants> {
    let request = GetStorageGrantsRequest { project, read: read.options() };
    ctx.conn
        .call(|ch| {
            let request = request.clone();
            async move { ProjectServiceClient::new(ch).get_storage_grants(request).await }
        })
        .await
}

pub async fn run(ctx: &Context, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Grants { project, read } => {
            let grants = get(ctx, project.unwrap_or_else(|| ctx.project.clone()), read).await?;
            emit(ctx.format, &grants, |g| grants_view(std::slice::from_ref(g)))
        }
        ProjectCommand::Grant(edit) | ProjectCommand::Revoke(edit) if edit.read.is_empty() && edit.write.is_empty() => {
            anyhow::bail!("give at least one --read or --write root")
        }
        cmd @ (ProjectCommand::Grant(_) | ProjectCommand::Revoke(_)) => {
            let (edit, grant) = match cmd {
                ProjectCommand::Grant(e) => (e, true),
                ProjectCommand::Revoke(e) => (e, false),
                _ => unreachable!("matched above"),
            };
            let current = get(ctx, edit.project.clone(), ReadArgs { stale: false }).await?;
            let grants = edited(current.grants.unwrap_or_default(), &edit, grant);
            let request = SetStorageGrantsRequest { project: edit.project.clone(), grants: Some(grants) };
            let saved = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { ProjectServiceClient::new(ch).set_storage_grants(request).await }
                })
                .await?;
            emit(ctx.format, &saved, |g| grants_view(std::slice::from_ref(g)))
        }
        ProjectCommand::List(read) => {
            let request = ListStorageGrantsRequest { read: read.options() };
            let list = ctx
                .conn
                .call(|ch| async move { ProjectServiceClient::new(ch).list_storage_grants(request).await })
                .await?;
            emit(ctx.format, &list, |l: &ListStorageGrantsResponse| grants_view(&l.projects))
        }
    }
}

/// One row per granted root.
fn grants_view(projects: &[ProjectGrants]) -> String {
    let mut table = Table::new(["PROJECT", "ACCESS", "ROOT"]);
    for p in projects {
        let g = p.grants.clone().unwrap_or_default();
        let rows = g.write.iter().map(|r| ("read-write", r)).chain(g.read.iter().map(|r| ("read", r)));
        for (access, root) in rows {
            table.row([p.project.clone(), access.to_string(), root.clone()]);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(read: &[&str], write: &[&str]) -> EditArgs {
        EditArgs {
            project: "a".into(),
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn grant_adds_once_and_revoke_removes() {
        let start = StorageGrants { read: vec!["file:///d".into()], write: vec![] };
        let more = edited(start, &edit(&["file:///d", "file:///e"], &["file:///o"]), true);
        assert_eq!(more.read, ["file:///d", "file:///e"]);
        assert_eq!(more.write, ["file:///o"]);
        let less = edited(more, &edit(&["file:///d"], &["file:///o"]), false);
        assert_eq!(less.read, ["file:///e"]);
        assert!(less.write.is_empty());
    }

    #[test]
    fn the_view_lists_each_root_with_its_access() {
        let p = ProjectGrants {
            project: "team-a".into(),
            grants: Some(StorageGrants { read: vec!["file:///data".into()], write: vec!["nas://n1:/out".into()] }),
        };
        assert_eq!(
            grants_view(&[p]),
            "\
PROJECT   ACCESS       ROOT
team-a    read-write   nas://n1:/out
team-a    read         file:///data
"
        );
    }
}
