//! `gantryctl instance-type`: the catalog of resource shapes trainings request.

use clap::{Args, Subcommand};
use gantry_proto::v1::catalog_service_client::CatalogServiceClient;
use gantry_proto::v1::{
    DeleteInstanceTypeRequest, InstanceType, ListInstanceTypesRequest, ListInstanceTypesResponse,
    PutInstanceTypeRequest,
};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::format::{cpu, mib};
use crate::output::table::Table;
use crate::parse;

#[derive(Debug, Subcommand)]
pub enum InstanceTypeCommand {
    /// Create or replace an instance type
    Put(PutArgs),
    /// List instance types
    List(ReadArgs),
    /// Delete an instance type
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub name: String,
    /// CPU cores per instance (0.5 or 500m = half a core)
    #[arg(long, value_name = "CORES", value_parser = parse::cpu_millis)]
    pub cpu: u64,
    /// Memory per instance: 16Gi, 512Mi (MiB/GiB also accepted); a plain number is MiB
    #[arg(long, value_name = "SIZE", value_parser = parse::memory_mib)]
    pub memory: u64,
    /// GPUs per instance
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub gpus: u32,
    /// GPU model (core type), e.g. A100-80GB; required with --gpus
    #[arg(long, value_name = "MODEL")]
    pub gpu_model: Option<String>,
}

pub async fn run(ctx: &Context, cmd: InstanceTypeCommand) -> anyhow::Result<()> {
    match cmd {
        InstanceTypeCommand::Put(args) => {
            let request = PutInstanceTypeRequest {
                instance_type: Some(InstanceType {
                    name: args.name,
                    cpu_millis: args.cpu,
                    memory_mib: args.memory,
                    gpu_count: args.gpus,
                    gpu_model: args.gpu_model.unwrap_or_default(),
                    core_type: String::new(),
                }),
            };
            let saved = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { CatalogServiceClient::new(ch).put_instance_type(request).await }
                })
                .await?;
            emit(ctx.format, &saved, |it| list_view(std::slice::from_ref(it)))
        }
        InstanceTypeCommand::List(read) => {
            let request = ListInstanceTypesRequest { read: read.options() };
            let list = ctx
                .conn
                .call(|ch| async move { CatalogServiceClient::new(ch).list_instance_types(request).await })
                .await?;
            emit(ctx.format, &list, |l: &ListInstanceTypesResponse| list_view(&l.instance_types))
        }
        InstanceTypeCommand::Delete { name } => {
            let request = DeleteInstanceTypeRequest { name: name.clone() };
            let deleted = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { CatalogServiceClient::new(ch).delete_instance_type(request).await }
                })
                .await?;
            emit(ctx.format, &deleted, |_| format!("instance type \"{name}\" deleted\n"))
        }
    }
}

fn list_view(types: &[InstanceType]) -> String {
    let mut table = Table::new(["NAME", "CPU", "MEMORY", "GPUS", "CORE TYPE"]);
    for it in types {
        let gpus = if it.gpu_count == 0 { "0".to_string() } else { format!("{} x {}", it.gpu_count, it.gpu_model) };
        table.row([it.name.clone(), cpu(it.cpu_millis), mib(it.memory_mib), gpus, it.core_type.clone()]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_view_shows_human_sizes() {
        let types = [
            InstanceType {
                name: "m1.small".into(),
                cpu_millis: 500,
                memory_mib: 512,
                core_type: "CPU".into(),
                ..Default::default()
            },
            InstanceType {
                name: "g1.a100x2".into(),
                cpu_millis: 16000,
                memory_mib: 128 * 1024,
                gpu_count: 2,
                gpu_model: "A100-80GB".into(),
                core_type: "A100-80GB".into(),
            },
        ];
        assert_eq!(
            list_view(&types),
            "\
NAME        CPU   MEMORY   GPUS            CORE TYPE
m1.small    0.5   512Mi    0               CPU
g1.a100x2   16    128Gi    2 x A100-80GB   A100-80GB
"
        );
    }
}
