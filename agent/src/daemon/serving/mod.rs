//! The serving pods of an endpoint stage instance: one controller task per instance
//! assignment (`WorkAssignment.serving`), started and told to stop, abandon or release
//! by the reconcile loop like a training's worker, and handed each newer version of
//! its assignment (the pod set is level-triggered too).
//!
//! ```text
//!   every probe interval, or when the assignment or the control changes:
//!     list the instance's containers ─► serving::plan::plan (pure) ─► PodActions
//!        Create  : artifact (grants, no links) ─► pod_spec ─► create_and_start
//!        Probe   : GET {node address}:{host_port}/v2/health/ready
//!        Restart : remove, start again after a bounded backoff
//!        Fail    : exit 3 (artifact missing) ─► failed with the server's last line
//!        RemoveUnlisted : only once a linearizable read confirms the pod is gone
//!     pod states changed? ─► ReportPods (retried each round until acknowledged)
//!   Stop / Abandon / Release ─► remove every pod ─► STOPPED / nothing / GONE
//! ```
//!
//! What the controller acts on is what the reconcile loop acted on: it gets a set only
//! after the loop recorded that set's index ([`super::acted`]), and it removes an
//! unlisted pod only when a linearizable read at least as new agrees.

mod artifact;
mod pods;
mod probe;
mod report;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_proto::v1::{PodState, ServingPod, WorkAssignment};
use tokio::sync::watch;
use tonic::Code;

pub use super::confirm::{AssignmentSet, Latest};
use super::link::retryable;
pub use super::storage::Storage;
pub use super::worker::{Control, Ended};
use crate::runtime::{ContainerInfo, ContainerRuntime, HardeningConfig, LabelSelector, labels};
use crate::serving::plan::{self, PodMemory};
pub use report::{InstanceReports, LinkReports};

/// How often pods are probed (and the instance reconciled) by default.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What every instance controller of this agent shares.
pub struct ServingEnv {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub storage: Storage,
    pub cluster: String,
    pub node_id: String,
    /// The host address pods are published on ([`crate::serving::publish_ip`]).
    pub publish_ip: IpAddr,
    /// The model server's argv (`[serving] command`).
    pub command: Vec<String>,
    pub hardening: HardeningConfig,
    pub probe_interval: Duration,
    pub reports: Arc<dyn InstanceReports>,
    pub latest: Arc<dyn Latest>,
}

/// An instance's assignment and the raft index of the set it came in.
pub type Held = (u64, WorkAssignment);

/// Runs the pods of one instance until it is stopped, abandoned or released.
pub async fn run_instance(
    env: Arc<ServingEnv>,
    mut assignment: watch::Receiver<Held>,
    mut control: watch::Receiver<Control>,
) -> Ended {
    let mut memory: BTreeMap<String, PodMemory> = BTreeMap::new();
    let mut reported: Option<Vec<PodState>> = None;
    loop {
        let (index, a) = assignment.borrow_and_update().clone();
        let wanted = *control.borrow_and_update();
        if wanted != Control::Run {
            return end(&env, &a, &mut control).await;
        }
        let pods: Vec<ServingPod> = a.serving.as_ref().map(|s| s.pods.clone()).unwrap_or_default();
        match env.runtime.list(&instance_selector(&env, &a)).await {
            Ok(containers) => {
                let actions = plan::plan(&pods, &containers, &memory, Instant::now());
                pods::execute(&env, &a, index, &pods, actions, &mut memory).await;
            }
            Err(e) => tracing::warn!(workload = %a.workload_id, error = %e, "listing the instance's pods failed"),
        }
        memory.retain(|id, _| pods.iter().any(|p| &p.pod_id == id));
        let states = pod_states(&pods, &memory);
        if reported.as_ref() != Some(&states) {
            match env.reports.pods(&a.workload_id, states.clone()).await {
                Ok(()) => reported = Some(states),
                // The scheduler no longer has the instance: nobody waits for news.
                Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => reported = Some(states),
                Err(s) => tracing::warn!(workload = %a.workload_id, error = %s, "reporting pods failed; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(env.probe_interval) => {}
            changed = assignment.changed() => if changed.is_err() { std::future::pending::<()>().await },
            changed = control.changed() => if changed.is_err() { std::future::pending::<()>().await },
        }
    }
}

/// The containers of the instance on this node (its pods carry its workload and rank).
fn instance_selector(env: &ServingEnv, a: &WorkAssignment) -> LabelSelector {
    LabelSelector::new()
        .with(labels::CLUSTER, &env.cluster)
        .with(labels::NODE, &env.node_id)
        .with(labels::WORKLOAD, &a.workload_id)
        .with(labels::RANK, &a.rank.to_string())
}

/// What the scheduler hears of each listed pod.
pub fn pod_states(pods: &[ServingPod], memory: &BTreeMap<String, PodMemory>) -> Vec<PodState> {
    pods.iter()
        .map(|p| {
            let m = memory.get(&p.pod_id).cloned().unwrap_or_default();
            PodState {
                pod_id: p.pod_id.clone(),
                ready: m.ready && m.failed.is_none(),
                failed: m.failed.is_some(),
                reason: m.failed.or(m.last_error).unwrap_or_default(),
            }
        })
        .collect()
}

/// Removes every pod of the instance, then reports its end as the control asks.
async fn end(env: &ServingEnv, a: &WorkAssignment, control: &mut watch::Receiver<Control>) -> Ended {
    let containers = match env.runtime.list(&instance_selector(env, a)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(workload = %a.workload_id, error = %e, "listing an ending instance's pods failed");
            return Ended::Done;
        }
    };
    for c in &containers {
        tracing::info!(container = %c.name, "instance ending; removing its pod");
        if let Err(e) = env.runtime.remove(&c.id).await {
            // Done: the reconciler starts over (a release again) on its next round.
            tracing::warn!(container = %c.name, error = %e, "removing a pod failed; retrying later");
            return Ended::Done;
        }
    }
    let phase = match *control.borrow() {
        Control::Release => "GONE",
        Control::Stop => "STOPPED",
        Control::Abandon | Control::Run => return Ended::Done,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        if *control.borrow() == Control::Abandon {
            return Ended::Done;
        }
        match env.reports.phase(&a.workload_id, a.rank, phase).await {
            Ok(()) => break,
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => break,
            Err(s) if retryable(&s) => tracing::debug!(workload = %a.workload_id, phase, error = %s, "retrying"),
            Err(s) => tracing::error!(workload = %a.workload_id, phase, error = %s, "report refused; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = control.changed() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    if phase == "GONE" { Ended::Released } else { Ended::Done }
}

/// The pods of `containers` a linearizable read at least as new as `index` no longer
/// lists for this instance (the whole instance gone counts as none listed).
async fn confirmed_unlisted(
    env: &ServingEnv,
    a: &WorkAssignment,
    index: u64,
    containers: Vec<ContainerInfo>,
) -> Vec<ContainerInfo> {
    let (latest_index, items) = match env.latest.latest().await {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(workload = %a.workload_id, error = %e, "cannot confirm the pod set; removing nothing");
            return Vec::new();
        }
    };
    if latest_index < index {
        tracing::warn!(latest_index, index, "a linearizable read answered an older set; removing nothing");
        return Vec::new();
    }
    let listed: Vec<String> = items
        .iter()
        .filter(|i| i.workload_id == a.workload_id && i.rank == a.rank)
        .flat_map(|i| i.serving.iter().flat_map(|s| s.pods.iter().map(|p| p.pod_id.clone())))
        .collect();
    containers.into_iter().filter(|c| !plan::pod_of(c).is_some_and(|id| listed.iter().any(|l| l == id))).collect()
}
