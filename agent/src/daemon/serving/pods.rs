//! Performs one round's [`PodAction`]s and records what became of each pod.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use gantry_proto::v1::{ServingPod, WorkAssignment};

use super::{ServingEnv, artifact, confirmed_unlisted, probe};
use crate::runtime::{ContainerId, ContainerInfo, LogStream, RuntimeError};
use crate::serving::plan::{PodAction, PodMemory, backoff};
use crate::serving::{PodSite, pod_spec, probe_ip};

pub(super) async fn execute(
    env: &ServingEnv,
    a: &WorkAssignment,
    index: u64,
    pods: &[ServingPod],
    actions: Vec<PodAction>,
    memory: &mut BTreeMap<String, PodMemory>,
) {
    let mut unlisted = Vec::new();
    let mut probes = Vec::new();
    for action in actions {
        match action {
            PodAction::Create(pod) => create(env, a, &pod, memory.entry(pod.pod_id.clone()).or_default()).await,
            PodAction::Probe { pod_id, host_port } => probes.push((pod_id, host_port)),
            PodAction::Fail { pod_id, container } => {
                let reason = exit_reason(env, &container).await;
                let pod = pods.iter().find(|p| p.pod_id == pod_id);
                let path = pod.map(|p| p.artifact_path.as_str()).unwrap_or_default();
                tracing::warn!(pod = %pod_id, %reason, "the model server cannot load its artifact");
                let m = memory.entry(pod_id).or_default();
                m.failed = Some(format!("artifact_path {path}: {reason}"));
                m.ready = false;
                remove(env, &container).await;
            }
            PodAction::Restart { pod_id, container } => {
                let m = memory.entry(pod_id.clone()).or_default();
                let delay = backoff(m.restarts);
                m.restarts = m.restarts.saturating_add(1);
                m.not_before = Some(Instant::now() + delay);
                m.ready = false;
                m.last_error = Some(match container.exit_code {
                    Some(code) => format!("the model server exited with code {code}; restarting"),
                    None => "the model server's container did not run; restarting".to_string(),
                });
                tracing::info!(pod = %pod_id, container = %container.name, ?delay, "pod died; restarting after a backoff");
                remove(env, &container).await;
            }
            PodAction::RemoveFailed(c) => remove(env, &c).await,
            PodAction::RemoveUnlisted(c) => unlisted.push(c),
        }
    }
    if !unlisted.is_empty() {
        for c in confirmed_unlisted(env, a, index, unlisted).await {
            tracing::info!(container = %c.name, "pod no longer assigned; removing it");
            remove(env, &c).await;
        }
    }
    let ip = probe_ip(env.publish_ip);
    let timeout = env.probe_interval.min(std::time::Duration::from_secs(1));
    let answers = futures::future::join_all(probes.into_iter().map(|(pod_id, port)| async move {
        let ready = match u16::try_from(port) {
            Ok(port) => probe::ready(ip, port, timeout).await,
            Err(_) => false,
        };
        (pod_id, ready)
    }))
    .await;
    for (pod_id, ready) in answers {
        let m = memory.entry(pod_id.clone()).or_default();
        if ready != m.ready {
            tracing::info!(pod = %pod_id, ready, "pod readiness changed");
        }
        m.ready = ready;
        if ready {
            m.restarts = 0;
            m.last_error = None;
        }
    }
}

/// Starts `pod`'s container, or records why it cannot.
async fn create(env: &ServingEnv, a: &WorkAssignment, pod: &ServingPod, m: &mut PodMemory) {
    m.ready = false;
    let model_dir = match artifact::resolve(&env.storage, a, pod, &env.node_id) {
        Ok(dir) => dir,
        Err(reason) => {
            tracing::warn!(pod = %pod.pod_id, %reason, "pod cannot start");
            m.failed = Some(reason);
            return;
        }
    };
    let site = PodSite {
        cluster: &env.cluster,
        node_id: &env.node_id,
        workload_id: &a.workload_id,
        rank: a.rank,
        gpu_uuids: &a.gpu_uuids,
        publish_ip: env.publish_ip,
        command: &env.command,
        hardening: &env.hardening,
    };
    let spec = pod_spec(pod, &model_dir, &site);
    // A container of this name left from a crash between create and start.
    let _ = env.runtime.remove(&ContainerId(spec.name.clone())).await;
    match env.runtime.create_and_start(&spec).await {
        Ok(_) => {
            tracing::info!(pod = %pod.pod_id, container = %spec.name, host_port = pod.host_port, "pod started");
            m.last_error = None;
        }
        // Neither fixes itself by retrying: there is no registry, and the spec is the
        // scheduler's.
        Err(RuntimeError::ImageMissing(image)) => {
            m.failed = Some(format!(
                "image {image} is not present on node {}: there is no registry, build it on the node \
                 (deploy/images/build.sh)",
                env.node_id
            ));
        }
        Err(RuntimeError::InvalidSpec(why)) => m.failed = Some(format!("pod {}: {why}", pod.pod_id)),
        Err(e) => {
            let delay = backoff(m.restarts);
            m.restarts = m.restarts.saturating_add(1);
            m.not_before = Some(Instant::now() + delay);
            m.last_error = Some(format!("starting the pod: {e}"));
            tracing::warn!(pod = %pod.pod_id, error = %e, ?delay, "pod could not start; retrying after a backoff");
        }
    }
}

/// The reason a model server gave for its exit: its last line on stderr (the serving
/// contract), else its last line at all.
async fn exit_reason(env: &ServingEnv, c: &ContainerInfo) -> String {
    let lines: Vec<_> = env.runtime.logs(&c.id, false).filter_map(|l| async move { l.ok() }).collect().await;
    let last = |stderr_only: bool| {
        lines
            .iter()
            .rev()
            .filter(|l| !stderr_only || l.stream == LogStream::Stderr)
            .map(|l| l.line.trim())
            .find(|l| !l.is_empty())
    };
    match last(true).or_else(|| last(false)) {
        Some(line) => line.to_string(),
        None => format!("the model server exited with code {} without a reason", c.exit_code.unwrap_or_default()),
    }
}

async fn remove(env: &ServingEnv, c: &ContainerInfo) {
    if let Err(e) = env.runtime.remove(&c.id).await {
        tracing::warn!(container = %c.name, error = %e, "removing a pod failed; retrying next round");
    }
}
