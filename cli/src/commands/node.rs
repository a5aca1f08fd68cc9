//! `gantryctl node`: the machines agents registered, their capacity and what runs there.

use clap::Subcommand;
use gantry_proto::v1::node_service_client::NodeServiceClient;
use gantry_proto::v1::{GetNodeRequest, ListNodesRequest, ListNodesResponse, Node};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::format::{cpu, mib, timestamp, yes_no};
use crate::output::table::{Table, fields};

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes with free and total resources
    List(ReadArgs),
    /// Show one node, its GPUs and workloads
    Get {
        id: String,
        #[command(flatten)]
        read: ReadArgs,
    },
}

pub async fn run(ctx: &Context, cmd: NodeCommand) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::List(read) => {
            let request = ListNodesRequest { read: read.options() };
            let list = ctx.conn.call(|ch| async move { NodeServiceClient::new(ch).list_nodes(request).await }).await?;
            emit(ctx.format, &list, |l: &ListNodesResponse| list_view(&l.nodes))
        }
        NodeCommand::Get { id, read } => {
            let request = GetNodeRequest { id, read: read.options() };
            let node = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { NodeServiceClient::new(ch).get_node(request).await }
                })
                .await?;
            emit(ctx.format, &node, detail_view)
        }
    }
}

/// Free and total of each resource. Totals come from the inventory, free from the
/// scheduler's bookkeeping; a node without either shows zeros rather than failing.
struct Capacity {
    cpu: String,
    memory: String,
    gpus: String,
}

fn capacity(n: &Node) -> Capacity {
    let inv = n.inventory.clone().unwrap_or_default();
    let free = n.free.unwrap_or_default();
    let mut models: Vec<&str> = inv.gpus.iter().map(|g| g.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let gpus = match inv.gpus.len() {
        0 => "0".to_string(),
        total => format!("{}/{} {}", free.gpus, total, models.join(",")),
    };
    Capacity {
        cpu: format!("{}/{}", cpu(free.cpu_millis), cpu(inv.cpu_millis)),
        memory: format!("{}/{}", mib(free.memory_mib), mib(inv.memory_mib)),
        gpus,
    }
}

fn list_view(nodes: &[Node]) -> String {
    let mut table =
        Table::new(["ID", "HOSTNAME", "STATUS", "CPU FREE/TOTAL", "MEMORY FREE/TOTAL", "GPUS FREE/TOTAL", "WORKLOADS"]);
    for n in nodes {
        let c = capacity(n);
        table.row([
            n.id.clone(),
            n.hostname.clone(),
            n.status.clone(),
            c.cpu,
            c.memory,
            c.gpus,
            n.workloads.len().to_string(),
        ]);
    }
    table.render()
}

fn detail_view(n: &Node) -> String {
    let c = capacity(n);
    let inv = n.inventory.clone().unwrap_or_default();
    let mut out = fields(&[
        ("ID", n.id.clone()),
        ("Hostname", n.hostname.clone()),
        ("Address", n.address.clone()),
        ("Status", n.status.clone()),
        ("Status changed", timestamp(n.status_changed_at_ms)),
        ("Registered", timestamp(n.registered_at_ms)),
        ("CPU free/total", c.cpu),
        ("Memory free/total", c.memory),
        ("GPUs free/total", c.gpus),
        ("Disk", mib(inv.disk_mib)),
        ("Workloads", n.workloads.join(", ")),
    ]);
    if !inv.gpus.is_empty() {
        let mut gpus = Table::new(["GPU UUID", "MODEL", "MEMORY", "ALLOCATED"]);
        for g in &inv.gpus {
            gpus.row([g.uuid.clone(), g.model.clone(), mib(g.memory_mib), yes_no(n.allocated_gpus.contains(&g.uuid))]);
        }
        out.push('\n');
        out.push_str(&gpus.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{Gpu, NodeInventory, NodeResources};

    use super::*;

    fn node() -> Node {
        let gpu = |i| Gpu { uuid: format!("GPU-{i}"), model: "A100-80GB".into(), memory_mib: 80 * 1024 };
        Node {
            id: "n1".into(),
            hostname: "gpu-01".into(),
            address: "10.0.0.5:7444".into(),
            inventory: Some(NodeInventory {
                cpu_millis: 32000,
                memory_mib: 256 * 1024,
                disk_mib: 1024 * 1024,
                gpus: vec![gpu(0), gpu(1)],
            }),
            status: "READY".into(),
            allocated: Some(NodeResources { cpu_millis: 8000, memory_mib: 64 * 1024, gpus: 1 }),
            free: Some(NodeResources { cpu_millis: 24000, memory_mib: 192 * 1024, gpus: 1 }),
            allocated_gpus: vec!["GPU-1".into()],
            registered_at_ms: 1_700_000_000_000,
            status_changed_at_ms: 1_700_000_060_000,
            workloads: vec!["w-mnist".into()],
        }
    }

    #[test]
    fn list_view_shows_free_over_total() {
        let cpu_only = Node {
            id: "n2".into(),
            hostname: "cpu-01".into(),
            status: "DOWN".into(),
            inventory: Some(NodeInventory { cpu_millis: 8000, memory_mib: 16 * 1024, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(
            list_view(&[node(), cpu_only]),
            "\
ID   HOSTNAME   STATUS   CPU FREE/TOTAL   MEMORY FREE/TOTAL   GPUS FREE/TOTAL   WORKLOADS
n1   gpu-01     READY    24/32            192Gi/256Gi         1/2 A100-80GB     1
n2   cpu-01     DOWN     0/8              0Mi/16Gi            0                 0
"
        );
    }

    #[test]
    fn detail_view_marks_allocated_gpus() {
        let view = detail_view(&node());
        assert!(view.starts_with("ID:                 n1\n"), "{view}");
        assert!(view.contains("Registered:         2023-11-14T22:13:20Z\n"), "{view}");
        assert!(
            view.ends_with(
                "\
GPU UUID   MODEL       MEMORY   ALLOCATED
GPU-0      A100-80GB   80Gi     no
GPU-1      A100-80GB   80Gi     yes
"
            ),
            "{view}"
        );
    }
}
