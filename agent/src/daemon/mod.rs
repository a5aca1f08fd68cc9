//! The agent daemon: joins the cluster, holds a session with every scheduler replica,
//! and reconciles this node's containers to its assignments.
//!
//! ```text
//!   identity::join ──► Link (mTLS, one channel per replica) ◄── renewal (new cert at 2/3)
//!        │
//!        ├─ session × replicas ──► Desired (newest assignment set) ◄─ heartbeats/metrics up
//!        │                                   │
//!        └─ reconcile loop: plan(desired, workers, containers) ──► Start/Stop/Release/Abandon/Remove…
//!              │ (confirm::round: a linearizable read before acting on an absence;   │
//!              │  acted: the index acted on, persisted, so a restart never goes back) │
//!                                                 worker per container ┴─► runtime + log store + reports
//!                                     (an endpoint stage instance: serving::run_instance, its pods)
//! ```

mod acted;
pub mod config;
mod confirm;
mod desired;
mod identity;
mod link;
mod live_log;
mod logs;
mod metrics;
pub mod reconcile;
mod renewal;
pub mod serving;
mod session;
pub mod storage;
pub mod wheels;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry_proto::convert;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use acted::ActedIndex;
pub use config::AgentConfig;
use confirm::{Latest, LinkLatest};
use desired::Desired;
use reconcile::{Action, Finished, Key, WorkerView};
use worker::{Control, Ended, WorkerEnv};

use crate::gpu::{self, FakeGpus, GpuConfig, GpuSource};
use crate::inventory::{HostProbe, SysinfoHost, node_inventory};
use crate::runtime::{ContainerRuntime, DockerRuntime, LabelSelector, labels};

/// Reconciles at least this often, so a missed event (a container removed by hand) is
/// repaired.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

struct Worker {
    control: watch::Sender<Control>,
    /// An endpoint stage instance's controller: each newer version of its assignment
    /// (its pod set), once the loop acted on the set it came in.
    serving: Option<watch::Sender<serving::Held>>,
}

/// What the reconcile loop needs to start either kind of worker.
struct Starters {
    training: Arc<WorkerEnv>,
    serving: Arc<serving::ServingEnv>,
}

/// Runs the agent until `cancel` fires. Calls `ready` once the node is registered.
pub async fn run(config: AgentConfig, cancel: CancellationToken, ready: impl FnOnce()) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)?;
    let acted = ActedIndex::open(&config.state_dir)?;
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(DockerRuntime::connect(&config.docker).await?);
    let (gpus, gpu_source) = gpu_source(&config.gpu);
    let mut host = SysinfoHost::new(&config.state_dir)?;
    let sample = host.sample()?;
    let known_gpus = gpus.inventory().unwrap_or_default();
    let gpu_watch = gpu::GpuWatch::new(known_gpus.clone());
    let inventory = node_inventory(&sample, known_gpus, &config.resources)?;
    let inventory = convert::inventory_to_wire(&inventory);

    let (link, identity) = join_with_retry(&config, inventory, &cancel).await?;
    if let Some(identity) = identity.filter(|_| config.tls.renew) {
        tokio::spawn(renewal::run(config.clone(), identity, link.clone(), cancel.clone()));
    }
    let node_id = config.node_name.clone();
    tracing::info!(node = %node_id, gpus = %gpu_source, "joined the cluster");

    let running = Arc::new(AtomicU32::new(0));
    let count = running.clone();
    let selector = LabelSelector::new().with(labels::CLUSTER, &config.cluster).with(labels::NODE, &node_id);
    let usage =
        metrics::container_usage(runtime.clone(), selector.clone(), metrics::CONTAINER_STATS_EVERY, cancel.clone());
    let metrics = metrics::start(
        metrics::Sampler {
            host,
            gpus,
            gpu_watch,
            gpu_source,
            containers: Arc::new(move || count.load(Ordering::Relaxed)),
            usage,
        },
        config.heartbeat_interval,
        cancel.clone(),
    );
    let env = Arc::new(WorkerEnv {
        runtime: runtime.clone(),
        reporter: worker::Reporter { link: link.clone(), node_id: node_id.clone() },
        logs: logs::LogRegistry::default(),
        cluster: config.cluster.clone(),
        node_id: node_id.clone(),
        region: config.region.clone(),
        storage: storage::Storage {
            nas: config.storage.nas.clone(),
            deny: storage::DenyList::new(
                &config.state_dir,
                &storage::deny::docker_socket(config.docker.socket.as_deref()),
                &config.storage.deny,
            ),
        },
        pip: config.requirements.clone(),
        state_dir: config.state_dir.clone(),
        log_limits: config.logs.limits(),
        stop_grace: config.stop_grace,
        hardening: config.docker.hardening.clone(),
    });
    let serving_env = Arc::new(serving::ServingEnv {
        runtime: runtime.clone(),
        storage: env.storage.clone(),
        cluster: config.cluster.clone(),
        node_id: node_id.clone(),
        publish_ip: config.serving.publish_ip(&config.address),
        command: config.serving.command.clone(),
        hardening: config.docker.hardening.clone(),
        probe_interval: config.serving.probe_interval,
        reports: Arc::new(serving::LinkReports { link: link.clone(), node_id: node_id.clone() }),
        latest: Arc::new(LinkLatest { link: link.clone(), node_id: node_id.clone() }),
    });
    tracing::info!(publish_ip = %serving_env.publish_ip, "serving pods are published on this address");
    let desired = Desired::restored(acted.get());
    let session_ctx = Arc::new(session::SessionCtx {
        node_id: node_id.clone(),
        desired: desired.clone(),
        metrics,
        heartbeat_interval: config.heartbeat_interval,
        env: env.clone(),
    });
    for (replica, url) in config.schedulers.iter().enumerate() {
        tokio::spawn(session::run(session_ctx.clone(), link.clone(), replica, url.clone(), cancel.clone()));
    }
    // Networks of workloads whose last container was removed just before an earlier
    // agent died; a network still in use is kept.
    match runtime.remove_unused_networks(&selector).await {
        Ok(removed) if !removed.is_empty() => tracing::info!(?removed, "removed unused workload networks"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "listing workload networks failed"),
    }
    ready();
    let latest = LinkLatest { link: link.clone(), node_id: node_id.clone() };
    let starters = Starters { training: env, serving: serving_env };
    reconcile_loop(starters, Reconciling { desired, acted, latest: Box::new(latest) }, selector, running, cancel).await;
    Ok(())
}

/// NVML when configured and present; without a driver the agent still runs, with no
/// GPUs and the reason in its metrics.
fn gpu_source(config: &GpuConfig) -> (Arc<dyn GpuSource>, String) {
    let name = match config {
        GpuConfig::Nvml => "nvml",
        GpuConfig::Fake { .. } => "fake",
        GpuConfig::None => "none",
    };
    match gpu::from_config(config) {
        Ok(source) => (Arc::from(source), name.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "no NVML: this node reports no GPUs");
            (Arc::new(FakeGpus::new(Vec::new())), format!("no NVML: {e}"))
        }
    }
}

async fn join_with_retry(
    config: &AgentConfig,
    inventory: gantry_proto::v1::NodeInventory,
    cancel: &CancellationToken,
) -> anyhow::Result<(link::Link, Option<identity::Identity>)> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match identity::join(config, inventory.clone()).await {
            Ok(joined) => return Ok(joined),
            Err(e) => {
                // A refused token or a bad certificate will not fix itself: say so.
                if let Some(status) = e.downcast_ref::<tonic::Status>()
                    && !link::retryable(status)
                {
                    return Err(anyhow::anyhow!("registration refused: {}", status.message()));
                }
                tracing::warn!(error = format!("{e:#}"), "cannot register yet; retrying");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("cancelled before joining"),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What the reconcile loop acts on, and the record of how far it has acted.
struct Reconciling {
    desired: Desired,
    acted: ActedIndex,
    latest: Box<dyn Latest>,
}

async fn reconcile_loop(
    starters: Starters,
    mut r: Reconciling,
    selector: LabelSelector,
    running: Arc<AtomicU32>,
    cancel: CancellationToken,
) {
    let mut desired_rx = r.desired.subscribe();
    let mut workers: BTreeMap<Key, Worker> = BTreeMap::new();
    let mut tasks: JoinSet<(Key, Ended)> = JoinSet::new();
    let mut finished = Finished::default();
    let env = starters.training.clone();
    loop {
        let current = desired_rx.borrow_and_update().clone();
        if let Some(set) = &current {
            match env.runtime.list(&selector).await {
                Ok(containers) => {
                    let views = workers
                        .iter()
                        .map(|(k, w)| {
                            let control = *w.control.borrow();
                            let view = WorkerView {
                                stopping: control != Control::Run,
                                releasing: control == Control::Release,
                            };
                            (k.clone(), view)
                        })
                        .collect();
                    // Keys the scheduler no longer lists cannot come back: forget them.
                    let listed = |k: &Key| set.1.iter().any(|a| Key::of(a) == *k);
                    finished.done.retain(listed);
                    finished.released.retain(listed);
                    let round = confirm::round(set, &views, &finished, &containers, r.latest.as_ref()).await;
                    // The set the round's actions follow from.
                    let basis = round.confirmed.clone().unwrap_or_else(|| set.clone());
                    if let Some((index, items)) = round.confirmed {
                        r.desired.offer(index, items);
                    }
                    // Durable before acting: a restart must not go back behind it.
                    match r.acted.advance(round.index) {
                        Ok(()) => {
                            for action in round.actions {
                                apply(&starters, basis.0, action, &mut workers, &mut tasks).await;
                            }
                            update_instances(&basis, &workers);
                        }
                        Err(e) => tracing::error!(error = %e, "cannot record the assignment index; not acting"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing containers failed"),
            }
        }
        running.store(workers.len() as u32, Ordering::Relaxed);
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = desired_rx.changed() => if changed.is_err() { break },
            Some(joined) = tasks.join_next() => {
                if let Ok((key, ended)) = joined {
                    workers.remove(&key);
                    env.logs.remove(&key);
                    match ended {
                        Ended::Done => finished.done.insert(key),
                        Ended::Released => finished.released.insert(key),
                    };
                }
            }
            _ = tokio::time::sleep(RESYNC_EVERY) => {}
        }
    }
    // Containers keep running across an agent restart; the next start adopts them.
    tasks.abort_all();
}

/// Hands each instance controller its assignment as of `set` (which the loop acted on).
fn update_instances(set: &confirm::AssignmentSet, workers: &BTreeMap<Key, Worker>) {
    for a in set.1.iter().filter(|a| a.serving.is_some()) {
        if let Some(tx) = workers.get(&Key::of(a)).and_then(|w| w.serving.as_ref()) {
            tx.send_if_modified(|held| {
                let newer = set.0 > held.0 && held.1 != *a;
                if newer {
                    *held = (set.0, a.clone());
                }
                newer
            });
        }
    }
}

async fn apply(
    starters: &Starters,
    index: u64,
    action: Action,
    workers: &mut BTreeMap<Key, Worker>,
    tasks: &mut JoinSet<(Key, Ended)>,
) {
    let env = &starters.training;
    match action {
        Action::Start { assignment, existing } => {
            let key = Key::of(&assignment);
            let initial = if assignment.release {
                Control::Release
            } else if assignment.stop {
                Control::Stop
            } else {
                Control::Run
            };
            let (control, rx) = watch::channel(initial);
            let task_key = key.clone();
            if assignment.serving.is_some() {
                // Its pods are found by their labels; `existing` is one of them at most.
                let (tx, held) = watch::channel((index, assignment));
                let env = starters.serving.clone();
                tasks.spawn(async move { (task_key, serving::run_instance(env, held, rx).await) });
                workers.insert(key, Worker { control, serving: Some(tx) });
            } else {
                let env = env.clone();
                tasks.spawn(async move { (task_key, worker::run(env, assignment, existing, rx).await) });
                workers.insert(key, Worker { control, serving: None });
            }
        }
        Action::Release(key) => {
            if let Some(w) = workers.get(&key) {
                let _ = w.control.send(Control::Release);
            }
        }
        Action::Stop(key) => {
            if let Some(w) = workers.get(&key) {
                let _ = w.control.send(Control::Stop);
            }
        }
        Action::Abandon(key) => {
            if let Some(w) = workers.get(&key) {
                let _ = w.control.send(Control::Abandon);
            }
        }
        Action::RemoveLeftover(c) => {
            tracing::info!(container = %c.name, "removing the leftover container of a finished rank");
            if let Err(e) = env.runtime.remove(&c.id).await {
                tracing::warn!(container = %c.name, error = %e, "removing leftover failed");
            }
        }
        Action::RemoveOrphan(c) => {
            tracing::info!(container = %c.name, "removing a container no workload owns");
            if let Err(e) = env.runtime.remove(&c.id).await {
                tracing::warn!(container = %c.name, error = %e, "removing orphan failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{ServingInstance, ServingPod, WorkAssignment};

    use super::*;

    fn instance(pods: &[&str]) -> WorkAssignment {
        let pods = pods.iter().map(|p| ServingPod { pod_id: (*p).into(), ..Default::default() }).collect();
        WorkAssignment {
            workload_id: "w1".into(),
            serving: Some(ServingInstance { pods, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn an_instance_controller_gets_newer_pod_sets_only() {
        let (control, _control_rx) = watch::channel(Control::Run);
        let (tx, mut rx) = watch::channel((5, instance(&["p1"])));
        let workers = BTreeMap::from([(Key::of(&instance(&[])), Worker { control, serving: Some(tx) })]);
        update_instances(&(4, vec![instance(&["p2"])]), &workers);
        assert!(!rx.has_changed().unwrap(), "an older set");
        update_instances(&(6, vec![instance(&["p1"])]), &workers);
        assert!(!rx.has_changed().unwrap(), "nothing new");
        update_instances(&(7, vec![instance(&["p1", "p2"])]), &workers);
        let (index, a) = rx.borrow_and_update().clone();
        assert_eq!((index, a.serving.unwrap().pods.len()), (7, 2));
    }
}
