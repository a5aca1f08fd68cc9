//! `gantryctl node`: the machines agents registered, their capacity and what runs there.

use clap::Subcommand;
use gantry_proto::v1::node_service_client::NodeServiceClient;
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_proto::v1::{
    AdmitNodeRequest, ContainerUsage, GetNodeRequest, Gpu, GpuMetrics, ListNodesRequest, ListNodesResponse, Node,
    NodeMetrics, RevokeNodeRequest, XidEvent,
};

use super::Context;
use crate::cli::ReadArgs;
use crate::output::emit;
use crate::output::format::{ago, cpu, mib, timestamp, yes_no};
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
    /// Refuse the node's certificates at once (cluster token only); its trainings end
    /// as for a lost node
    Revoke {
        id: String,
        /// Why (shown as the node's and its trainings' reason)
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Let a revoked node join again, once, with the join token (cluster token only)
    Admit { id: String },
}

pub async fn run(ctx: &Context, cmd: NodeCommand) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::List(read) => {
            let request = ListNodesRequest { read: read.options() };
            let list = ctx.conn.call(|ch| async move { NodeServiceClient::new(ch).list_nodes(request).await }).await?;
            emit(ctx.format, &list, |l: &ListNodesResponse| list_view(&l.nodes, now_ms()))
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
            emit(ctx.format, &node, |n| detail_view(n, now_ms()))
        }
        NodeCommand::Revoke { id, reason } => {
            let request = RevokeNodeRequest { id, reason };
            let node = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { NodeServiceClient::new(ch).revoke_node(request).await }
                })
                .await?;
            emit(ctx.format, &node, |n| {
                format!("node {} revoked: its certificates are refused and it is {}\n", n.id, n.status)
            })
        }
        NodeCommand::Admit { id } => {
            let request = AdmitNodeRequest { id };
            let node = ctx
                .conn
                .call(|ch| {
                    let request = request.clone();
                    async move { NodeServiceClient::new(ch).admit_node(request).await }
                })
                .await?;
            emit(ctx.format, &node, |n| {
                format!("node {} may join again once with the join token (its old certificates stay refused)\n", n.id)
            })
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

/// The metrics of a node whose agent is connected to the answering replica. A
/// disconnected agent's last metrics are shown only by `get`, beside their time: in the
/// list they would pass for current.
fn live_metrics(n: &Node) -> Option<&NodeMetrics> {
    n.health.as_ref().filter(|h| h.connected).and_then(|h| h.metrics.as_ref())
}

/// CPU use as a share of the node's cores (the wire counts 100 per busy core).
fn cpu_share(m: &NodeMetrics, cpu_millis: u64) -> String {
    if cpu_millis == 0 {
        return String::new();
    }
    format!("{:.0}%", m.cpu_pct * 1000.0 / cpu_millis as f64)
}

/// `now_ms` is the local clock, against which heartbeat ages are computed.
fn list_view(nodes: &[Node], now_ms: u64) -> String {
    let mut table = Table::new([
        "ID",
        "HOSTNAME",
        "STATUS",
        "HEARTBEAT",
        "CPU FREE/TOTAL",
        "CPU%",
        "MEMORY FREE/TOTAL",
        "MEM USED",
        "GPUS FREE/TOTAL",
        "UNHEALTHY GPUS",
        "WORKLOADS",
    ]);
    for n in nodes {
        let c = capacity(n);
        let heartbeat = match &n.health {
            Some(h) if h.connected => ago(h.last_heartbeat_ms, now_ms),
            _ => "-".to_string(),
        };
        let cpu_millis = n.inventory.as_ref().map_or(0, |inv| inv.cpu_millis);
        let (cpu_used, memory_used) = match live_metrics(n) {
            Some(m) => (cpu_share(m, cpu_millis), mib(m.memory_used_mib)),
            None => ("-".to_string(), "-".to_string()),
        };
        table.row([
            n.id.clone(),
            n.hostname.clone(),
            n.status.clone(),
            heartbeat,
            c.cpu,
            cpu_used,
            c.memory,
            memory_used,
            c.gpus,
            n.unhealthy_gpus.len().to_string(),
            n.workloads.len().to_string(),
        ]);
    }
    table.render()
}

/// `now_ms` is the local clock, against which heartbeat ages are computed.
fn detail_view(n: &Node, now_ms: u64) -> String {
    let c = capacity(n);
    let inv = n.inventory.clone().unwrap_or_default();
    let health = n.health.clone().unwrap_or_default();
    let mut pairs = vec![
        ("ID", n.id.clone()),
        ("Hostname", n.hostname.clone()),
        ("Address", n.address.clone()),
        ("Status", n.status.clone()),
        ("Status changed", timestamp(n.status_changed_at_ms)),
        ("Registered", timestamp(n.registered_at_ms)),
        ("CPU free/total", c.cpu),
        ("Memory free/total", c.memory),
        ("GPUs free/total", c.gpus),
        ("Unhealthy GPUs", n.unhealthy_gpus.len().to_string()),
        ("Disk", mib(inv.disk_mib)),
        ("Workloads", n.workloads.join(", ")),
        ("Agent connected", n.health.as_ref().map(|h| yes_no(h.connected)).unwrap_or_default()),
        ("Last heartbeat", moment(health.last_heartbeat_ms, now_ms)),
    ];
    if let Some(m) = &health.metrics {
        let share = cpu_share(m, inv.cpu_millis);
        let cpu_used = format!("{:.1} cores", m.cpu_pct / 100.0);
        pairs.extend([
            ("Metrics at", moment(m.at_ms, now_ms)),
            ("CPU used", if share.is_empty() { cpu_used } else { format!("{cpu_used} ({share})") }),
            ("Memory used", mib(m.memory_used_mib)),
            ("Disk free", mib(m.disk_free_mib)),
            ("Containers", m.containers.to_string()),
            ("GPU source", m.gpu_source.clone()),
            ("Agent memory", mib(m.agent_rss_kib / 1024)),
        ]);
    }
    let mut out = fields(&pairs);
    let gpu_metrics = health.metrics.as_ref().map_or(&[][..], |m| m.gpus.as_slice());
    if !inv.gpus.is_empty() || !gpu_metrics.is_empty() {
        out.push('\n');
        out.push_str(&gpu_table(n, &inv.gpus, gpu_metrics));
    }
    let usage = health.metrics.as_ref().map_or(&[][..], |m| m.container_usage.as_slice());
    if !usage.is_empty() {
        out.push('\n');
        out.push_str(&usage_table(usage));
    }
    if !health.xid_events.is_empty() {
        out.push('\n');
        out.push_str(&xid_table(&health.xid_events));
    }
    out
}

/// The node's recent XID errors, oldest first.
fn xid_table(events: &[XidEvent]) -> String {
    let mut table = Table::new(vec!["XID AT", "GPU UUID", "XID", "MEANING"]);
    for e in events {
        table.row(vec![timestamp(e.at_ms), e.gpu_uuid.clone(), e.xid.to_string(), e.meaning.clone()]);
    }
    table.render()
}

/// Docker stats of the node's containers, as the agent last sampled them.
fn usage_table(usage: &[ContainerUsage]) -> String {
    let mut table = Table::new(vec!["WORKLOAD", "RANK", "CPU", "MEMORY", "MEMORY LIMIT"]);
    for u in usage {
        table.row(vec![
            u.workload_id.clone(),
            u.rank.to_string(),
            cpu(u.cpu_millis),
            mib(u.memory_bytes / (1024 * 1024)),
            mib(u.memory_limit_bytes / (1024 * 1024)),
        ]);
    }
    table.render()
}

/// One row per GPU: the inventory's, then any the metrics name that the inventory does
/// not. The usage columns appear only when the agent reported GPU metrics. HEALTH is
/// what placement goes by (the replicated record), else the agent's latest report.
fn gpu_table(n: &Node, inventory: &[Gpu], metrics: &[GpuMetrics]) -> String {
    let mut headers = vec!["GPU UUID", "MODEL", "MEMORY", "ALLOCATED", "HEALTH"];
    if !metrics.is_empty() {
        headers.extend(["UTIL", "MEM USED", "TEMP", "ECC ERRORS", "LAST XID"]);
    }
    let mut table = Table::new(headers);
    let usage = |uuid: &str| -> Vec<String> {
        match metrics.iter().find(|m| m.uuid == uuid) {
            Some(m) => vec![
                format!("{}%", m.utilization_pct),
                mib(m.memory_used_mib),
                format!("{}C", m.temperature_c),
                m.ecc_errors.to_string(),
                if m.last_xid == 0 { "-".to_string() } else { m.last_xid.to_string() },
            ],
            None => Vec::new(),
        }
    };
    let health = |uuid: &str| -> String {
        let recorded = n.unhealthy_gpus.iter().find(|u| u.uuid == uuid).map(|u| u.reason.as_str());
        let reported = metrics.iter().find(|m| m.uuid == uuid).map(|m| m.unhealthy_reason.as_str());
        match recorded.or(reported).filter(|r| !r.is_empty()) {
            Some(why) => format!("unhealthy: {why}"),
            None => "ok".to_string(),
        }
    };
    for g in inventory {
        let mut row = vec![
            g.uuid.clone(),
            g.model.clone(),
            mib(g.memory_mib),
            yes_no(n.allocated_gpus.contains(&g.uuid)),
            health(&g.uuid),
        ];
        row.extend(usage(&g.uuid));
        table.row(row);
    }
    for m in metrics.iter().filter(|m| !inventory.iter().any(|g| g.uuid == m.uuid)) {
        let mut row = vec![m.uuid.clone(), String::new(), String::new(), String::new(), health(&m.uuid)];
        row.extend(usage(&m.uuid));
        table.row(row);
    }
    table.render()
}

/// A moment as its time and its age: `2023-11-14T22:13:20Z (2s ago)`; empty for 0.
fn moment(ms: u64, now_ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    format!("{} ({})", timestamp(ms), ago(ms, now_ms))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{NodeHealth, NodeInventory, NodeResources, UnhealthyGpu};

    use super::*;

    /// The local clock in these tests: 5 s after the node's last heartbeat.
    const NOW_MS: u64 = 1_700_000_125_000;

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
            health: Some(NodeHealth {
                connected: true,
                last_heartbeat_ms: 1_700_000_120_000,
                metrics: Some(NodeMetrics {
                    at_ms: 1_700_000_120_000,
                    cpu_pct: 480.0,
                    memory_used_mib: 40 * 1024,
                    disk_free_mib: 900 * 1024,
                    containers: 1,
                    gpus: vec![GpuMetrics {
                        uuid: "GPU-1".into(),
                        utilization_pct: 87,
                        memory_used_mib: 30 * 1024,
                        temperature_c: 64,
                        ecc_errors: 0,
                        last_xid: 79,
                        unhealthy_reason: "xid 79: GPU has fallen off the bus".into(),
                    }],
                    gpu_source: "nvml".into(),
                    agent_rss_kib: 48 * 1024,
                    container_usage: vec![ContainerUsage {
                        workload_id: "w-mnist".into(),
                        rank: 0,
                        cpu_millis: 3500,
                        memory_bytes: 2 << 30,
                        memory_limit_bytes: 8 << 30,
                    }],
                    xid_events: vec![],
                }),
                xid_events: vec![XidEvent {
                    at_ms: 1_700_000_110_000,
                    gpu_uuid: "GPU-1".into(),
                    xid: 79,
                    meaning: "GPU has fallen off the bus".into(),
                }],
            }),
            unhealthy_gpus: vec![UnhealthyGpu {
                uuid: "GPU-1".into(),
                reason: "xid 79: GPU has fallen off the bus".into(),
                since_ms: 1_700_000_110_000,
            }],
        }
    }

    #[test]
    fn revoke_and_admit_take_a_node_name() {
        use clap::Parser as _;
        let parse = |argv: &[&str]| crate::cli::Cli::try_parse_from(argv).map(|cli| format!("{:?}", cli.command));
        let revoke = parse(&["gantryctl", "node", "revoke", "gpu-01", "--reason", "key leaked"]);
        assert!(revoke.as_deref().is_ok_and(|c| c.contains("Revoke") && c.contains("key leaked")), "{revoke:?}");
        let admit = parse(&["gantryctl", "node", "admit", "gpu-01"]);
        assert!(admit.as_deref().is_ok_and(|c| c.contains("Admit") && c.contains("gpu-01")), "{admit:?}");
        assert!(parse(&["gantryctl", "node", "revoke"]).is_err(), "a name is required");
    }

    #[test]
    fn list_view_shows_free_over_total_and_live_usage() {
        let cpu_only = Node {
            id: "n2".into(),
            hostname: "cpu-01".into(),
            status: "DOWN".into(),
            inventory: Some(NodeInventory { cpu_millis: 8000, memory_mib: 16 * 1024, ..Default::default() }),
            health: Some(NodeHealth {
                connected: false,
                last_heartbeat_ms: 1_700_000_000_000,
                metrics: Some(NodeMetrics { cpu_pct: 100.0, ..Default::default() }),
                xid_events: vec![],
            }),
            ..Default::default()
        };
        let old_server = Node { id: "n3".into(), ..Default::default() };
        assert_eq!(
            list_view(&[node(), cpu_only, old_server], NOW_MS),
            "\
ID   HOSTNAME   STATUS   HEARTBEAT   CPU FREE/TOTAL   CPU%   MEMORY FREE/TOTAL   MEM USED   GPUS FREE/TOTAL   UNHEALTHY GPUS   WORKLOADS
n1   gpu-01     READY    5s ago      24/32            15%    192Gi/256Gi         40Gi       1/2 A100-80GB     1                1
n2   cpu-01     DOWN     -           0/8              -      0Mi/16Gi            -          0                 0                0
n3                       -           0/0              -      0Mi/0Mi             -          0                 0                0
"
        );
    }

    #[test]
    fn detail_view_shows_health_and_gpu_usage() {
        let view = detail_view(&node(), NOW_MS);
        assert!(view.starts_with("ID:                 n1\n"), "{view}");
        assert!(view.contains("Registered:         2023-11-14T22:13:20Z\n"), "{view}");
        assert!(view.contains("Agent connected:    yes\n"), "{view}");
        assert!(view.contains("Last heartbeat:     2023-11-14T22:15:20Z (5s ago)\n"), "{view}");
        assert!(view.contains("CPU used:           4.8 cores (15%)\n"), "{view}");
        assert!(view.contains("Memory used:        40Gi\n"), "{view}");
        assert!(view.contains("GPU source:         nvml\n"), "{view}");
        assert!(view.contains("Agent memory:       48Mi\n"), "{view}");
        assert!(view.contains("Unhealthy GPUs:     1\n"), "{view}");
        assert!(
            view.ends_with(
                "\
GPU UUID   MODEL       MEMORY   ALLOCATED   HEALTH                                          UTIL   MEM USED   TEMP   ECC ERRORS   LAST XID
GPU-0      A100-80GB   80Gi     no          ok
GPU-1      A100-80GB   80Gi     yes         unhealthy: xid 79: GPU has fallen off the bus   87%    30Gi       64C    0            79

WORKLOAD   RANK   CPU   MEMORY   MEMORY LIMIT
w-mnist    0      3.5   2Gi      8Gi

XID AT                 GPU UUID   XID   MEANING
2023-11-14T22:15:10Z   GPU-1      79    GPU has fallen off the bus
"
            ),
            "{view}"
        );
    }

    #[test]
    fn detail_view_without_health_keeps_the_inventory_table() {
        let view = detail_view(&Node { health: None, ..node() }, NOW_MS);
        assert!(view.contains("Agent connected:    -\n"), "{view}");
        assert!(view.contains("Last heartbeat:     -\n"), "{view}");
        assert!(!view.contains("CPU used"), "{view}");
        assert!(
            view.ends_with(
                "\
GPU UUID   MODEL       MEMORY   ALLOCATED   HEALTH
GPU-0      A100-80GB   80Gi     no          ok
GPU-1      A100-80GB   80Gi     yes         unhealthy: xid 79: GPU has fallen off the bus
"
            ),
            "{view}"
        );
    }
}
