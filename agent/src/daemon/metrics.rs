//! The node's metrics, sampled every heartbeat interval and kept in memory (the latest
//! sample travels with each heartbeat; the scheduler shows it in `node get`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_proto::v1::{ContainerUsage, GpuMetrics, NodeMetrics, XidEvent};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::reconcile::Key;
use crate::gpu::{GpuReport, GpuSource, GpuWatch};
use crate::inventory::{HostProbe, SysinfoHost, node_metrics};
use crate::runtime::{ContainerRuntime, LabelSelector};

const MIB: u64 = 1024 * 1024;

/// How often Docker stats are taken: each costs the engine two samples a second apart.
pub const CONTAINER_STATS_EVERY: Duration = Duration::from_secs(10);

pub struct Sampler {
    pub host: SysinfoHost,
    pub gpus: Arc<dyn GpuSource>,
    /// Health over time of the GPUs the node registered with.
    pub gpu_watch: GpuWatch,
    /// "nvml", "fake", "none", or why NVML is unavailable.
    pub gpu_source: String,
    /// Number of Gantry containers the agent runs now.
    pub containers: Arc<dyn Fn() -> u32 + Send + Sync>,
    /// The latest Docker stats of the node's containers.
    pub usage: watch::Receiver<Vec<ContainerUsage>>,
}

impl Sampler {
    fn sample(&mut self) -> NodeMetrics {
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let host = self.host.sample().ok();
        let load = host.as_ref().map(node_metrics);
        // XIDs first: they are taken whether or not the sample works.
        let xids = self.gpus.take_xids();
        let report = self.gpu_watch.observe(self.gpus.health(), xids, at_ms);
        let (gpus, xid_events) = gpu_metrics(report);
        NodeMetrics {
            at_ms,
            cpu_pct: load
                .as_ref()
                .map(|l| f64::from(l.cpu_usage_pct) * l.per_cpu_usage_pct.len() as f64)
                .unwrap_or(0.0),
            memory_used_mib: host.as_ref().map(|h| h.memory_used_bytes / MIB).unwrap_or(0),
            disk_free_mib: host.as_ref().map(|h| h.disk_available_bytes / MIB).unwrap_or(0),
            containers: (self.containers)(),
            gpus,
            gpu_source: self.gpu_source.clone(),
            agent_rss_kib: own_rss_kib(),
            container_usage: self.usage.borrow().clone(),
            xid_events,
        }
    }
}

/// The GPU part of a heartbeat.
fn gpu_metrics(report: GpuReport) -> (Vec<GpuMetrics>, Vec<XidEvent>) {
    let last_xid =
        |uuid: &str| report.events.iter().rev().find(|e| e.uuid == uuid).map_or(0, |e| e.code.min(u64::from(u32::MAX)));
    let gpus = report
        .gpus
        .iter()
        .map(|g| GpuMetrics {
            uuid: g.health.uuid.clone(),
            utilization_pct: g.health.utilization_pct.unwrap_or(0),
            memory_used_mib: g.health.memory_used_mib,
            temperature_c: g.health.temperature_c.unwrap_or(0),
            ecc_errors: g.health.ecc_errors.unwrap_or(0),
            last_xid: last_xid(&g.health.uuid) as u32,
            unhealthy_reason: g.unhealthy.clone().unwrap_or_default(),
        })
        .collect();
    let events = report
        .events
        .into_iter()
        .map(|e| XidEvent {
            at_ms: e.at_ms,
            gpu_uuid: e.uuid,
            xid: e.code.min(u64::from(u32::MAX)) as u32,
            meaning: e.meaning.to_string(),
        })
        .collect();
    (gpus, events)
}

/// Samples every `every` into the returned watch until cancelled.
pub fn start(mut sampler: Sampler, every: Duration, cancel: CancellationToken) -> watch::Receiver<NodeMetrics> {
    let (tx, rx) = watch::channel(sampler.sample());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            // Reading /proc blocks briefly; keep it off the async workers.
            let (s, m) = match tokio::task::spawn_blocking(move || {
                let m = sampler.sample();
                (sampler, m)
            })
            .await
            {
                Ok(v) => v,
                Err(_) => return,
            };
            sampler = s;
            let _ = tx.send(m);
        }
    });
    rx
}

/// Resident memory of this process, from /proc (0 where unavailable).
pub fn own_rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

/// Samples Docker stats of the containers matching `selector` every `every`, all
/// containers concurrently, into the returned watch.
pub fn container_usage(
    runtime: Arc<dyn ContainerRuntime>,
    selector: LabelSelector,
    every: Duration,
    cancel: CancellationToken,
) -> watch::Receiver<Vec<ContainerUsage>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        loop {
            let containers = runtime.list(&selector).await.unwrap_or_default();
            let samples = containers.iter().filter(|c| c.state.is_active()).map(|c| {
                let runtime = runtime.clone();
                async move {
                    let stats = runtime.stats(&c.id).await.ok()?;
                    let key = Key::of_container(c)?;
                    Some(ContainerUsage {
                        workload_id: key.workload_id,
                        rank: key.rank,
                        cpu_millis: stats.cpu_millis,
                        memory_bytes: stats.memory_bytes,
                        memory_limit_bytes: stats.memory_limit_bytes,
                    })
                }
            });
            let usage: Vec<ContainerUsage> = futures::future::join_all(samples).await.into_iter().flatten().collect();
            let _ = tx.send(usage);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
    rx
}
