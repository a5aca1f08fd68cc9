//! One worker per assigned container: it starts (or adopts) the container, follows its
//! output into the log store (or to live followers only, with log management off),
//! and turns its end into a report.
//!
//! ```text
//!   prepare ─► create_and_start ─► report RUNNING ─► wait ─┬─ exit 0 ─► UPLOADING ─► copy outputs ─► SUCCEEDED
//!      │                                                   ├─ exit n ─► FAILED (exit code, last log lines)
//!      └─ error ─► FAILED (reason)                          ├─ Stop ───► stop container ─► STOPPED
//!                                                          ├─ Abandon ► remove container (no report)
//!                                                          └─ Release ► remove container ─► GONE
//! ```
//!
//! Release comes once the workload has ended (its own end or another rank's): the
//! scheduler holds the rank's GPUs until GONE is durable, so a container still alive
//! (a gang peer, a node that came back) is never sharing a device with the next one.
//!
//! The container is removed only after its end was acknowledged: an agent killed in
//! between finds the exited container on restart and reports it again (reports are
//! idempotent on the scheduler), so no outcome is lost.

mod logpump;
mod output;
mod prepare;
mod report;
mod writable;

use std::path::PathBuf;
use std::sync::Arc;

use gantry_proto::v1::WorkAssignment;
use tokio::sync::watch;

use prepare::{Outputs, Prepared, Site};
use report::Reported;
pub use report::Reporter;

use super::logs::LogRegistry;
use super::reconcile::Key;
use super::storage::{Storage, copy_tree};
use super::wheels::PipConfig;
use crate::contract::{EXIT_ENTRY_POINT_MISSING, EXIT_REQUIREMENTS_FAILED};
use crate::logstore::LogLimits;
use crate::runtime::{
    ContainerId, ContainerInfo, ContainerRuntime, ContainerState, LabelSelector, RuntimeError, labels,
};
use output::Output;

/// What the reconciler wants of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    Stop,
    Abandon,
    /// The workload has ended: remove the container and report the rank GONE.
    Release,
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its container's life is over (reported, or moot).
    Done,
    /// Its released rank's container is gone and the scheduler knows it.
    Released,
}

/// Lines of output quoted in a failure reason.
const REASON_LINES: usize = 20;

/// What every worker of this agent shares.
pub struct WorkerEnv {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub reporter: Reporter,
    pub logs: LogRegistry,
    pub cluster: String,
    pub node_id: String,
    pub region: String,
    pub storage: Storage,
    pub pip: PipConfig,
    pub state_dir: PathBuf,
    pub log_limits: LogLimits,
    pub stop_grace: std::time::Duration,
    /// How training containers are confined (`[docker.hardening]`).
    pub hardening: crate::runtime::HardeningConfig,
}

impl WorkerEnv {
    fn work_dir(&self, key: &Key) -> PathBuf {
        self.state_dir.join("work").join(&key.workload_id).join(key.rank.to_string())
    }

    fn site(&self, key: &Key) -> Site<'_> {
        Site {
            cluster: &self.cluster,
            node_id: &self.node_id,
            region: &self.region,
            storage: &self.storage,
            pip: &self.pip,
            work_dir: self.work_dir(key),
            tensorboard_dir: self.state_dir.join("tensorboard").join(&key.workload_id).join(key.rank.to_string()),
            hardening: &self.hardening,
        }
    }

    pub fn log_dir(&self, workload_id: &str, rank: u32) -> PathBuf {
        self.state_dir.join("logs").join(workload_id).join(rank.to_string())
    }
}

/// Runs one container's life, and its release once asked for. Returns when its end was
/// reported (or is moot).
pub async fn run(
    env: Arc<WorkerEnv>,
    a: WorkAssignment,
    existing: Option<ContainerInfo>,
    mut control: watch::Receiver<Control>,
) -> Ended {
    if *control.borrow() != Control::Release {
        run_container(&env, &a, existing, control.clone()).await;
        if *control.borrow() != Control::Release {
            return Ended::Done;
        }
    }
    release(&env, &Key::of(&a), &mut control).await
}

/// Removes every container of the released rank, then reports it GONE. `Done` when
/// either failed: the reconciler starts a release again on its next round.
async fn release(env: &WorkerEnv, key: &Key, control: &mut watch::Receiver<Control>) -> Ended {
    let selector = LabelSelector::new()
        .with(labels::CLUSTER, &env.cluster)
        .with(labels::NODE, &env.node_id)
        .with(labels::WORKLOAD, &key.workload_id)
        .with(labels::RANK, &key.rank.to_string());
    let containers = match env.runtime.list(&selector).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(workload = %key.workload_id, rank = key.rank, error = %e, "listing a released rank failed");
            return Ended::Done;
        }
    };
    for c in containers {
        tracing::info!(container = %c.name, "workload ended; removing its container");
        if let Err(e) = env.runtime.remove(&c.id).await {
            tracing::warn!(container = %c.name, error = %e, "removing a released container failed; retrying later");
            return Ended::Done;
        }
    }
    let _ = std::fs::remove_dir_all(env.work_dir(key));
    match env.reporter.report(&key.workload_id, key.rank, "GONE", String::new(), control).await {
        Reported::Acknowledged | Reported::Gone => Ended::Released,
        Reported::Abandoned => Ended::Done,
    }
}

async fn run_container(
    env: &Arc<WorkerEnv>,
    a: &WorkAssignment,
    existing: Option<ContainerInfo>,
    mut control: watch::Receiver<Control>,
) {
    let key = Key::of(a);
    let store = match Output::open(env, a) {
        Ok(s) => s,
        Err(e) => {
            let reason = format!("cannot keep the logs on node {}: {e}", env.node_id);
            env.reporter.report(&a.workload_id, a.rank, "FAILED", reason, &mut control).await;
            return;
        }
    };
    env.logs.insert(&key, store.source());
    // A container created but never started (the agent died between the two) has no
    // run to adopt, and the engine would report it as exited 0: start afresh.
    let existing = match existing {
        Some(c) if c.state == ContainerState::Created => {
            tracing::info!(container = %c.name, "removing a container that was never started");
            remove(env, &c.id).await;
            None
        }
        other => other,
    };
    let (id, skip, outputs) = match existing {
        Some(c) => {
            tracing::info!(container = %c.name, state = ?c.state, "adopting container");
            let skip = store.lines_kept();
            (c.id, skip, None)
        }
        None => {
            if *control.borrow() != Control::Run {
                finish_log(Some(store));
                if *control.borrow() == Control::Stop {
                    env.reporter.report(&a.workload_id, a.rank, "STOPPED", String::new(), &mut control).await;
                }
                return;
            }
            match start(env, a, &key).await {
                Ok((id, prepared)) => (id, 0, Some(prepared.outputs)),
                Err(reason) => {
                    let mut store = store;
                    let _ = store.append(vec![format!("gantry: {reason}")]);
                    finish_log(Some(store));
                    tracing::warn!(workload = %a.workload_id, rank = a.rank, %reason, "container could not start");
                    env.reporter.report(&a.workload_id, a.rank, "FAILED", reason, &mut control).await;
                    return;
                }
            }
        }
    };
    let pump = tokio::spawn(logpump::pump(env.runtime.clone(), id.clone(), store, skip));
    if env.reporter.report(&a.workload_id, a.rank, "RUNNING", String::new(), &mut control).await == Reported::Abandoned
    {
        abandon(env, &id, pump).await;
        return;
    }
    let outcome = tokio::select! {
        exit = env.runtime.wait(&id) => Some(exit),
        _ = wait_for_control(&mut control) => None,
    };
    let wanted = *control.borrow();
    match (outcome, wanted) {
        (None, Control::Abandon | Control::Release) => {
            abandon(env, &id, pump).await;
            return;
        }
        (None, _) => {
            // Stop: SIGTERM, then SIGKILL after the grace period.
            if let Err(e) = env.runtime.stop(&id, env.stop_grace).await {
                tracing::warn!(container = %id, error = %e, "stop failed");
            }
            finish_log(pump.await.ok());
            if env.reporter.report(&a.workload_id, a.rank, "STOPPED", String::new(), &mut control).await
                != Reported::Abandoned
            {
                remove(env, &id).await;
            }
        }
        (Some(exit), _) => {
            let store = pump.await.ok();
            let tail = store.as_ref().map(|s| s.last_lines(REASON_LINES)).unwrap_or_default();
            finish_log(store);
            let (phase, reason) = match exit {
                Ok(0) => upload(env, a, &key, outputs, &mut control).await,
                Ok(code) => ("FAILED", failure_reason(code, &tail)),
                Err(e) => ("FAILED", format!("lost track of the container: {e}")),
            };
            if env.reporter.report(&a.workload_id, a.rank, phase, reason, &mut control).await != Reported::Abandoned {
                remove(env, &id).await;
            }
        }
    }
    let _ = std::fs::remove_dir_all(env.work_dir(&key));
}

async fn start(env: &WorkerEnv, a: &WorkAssignment, key: &Key) -> Result<(ContainerId, Prepared), String> {
    let site = env.site(key);
    let prepared = prepare::prepare(a, &site).await?;
    for w in &prepared.warnings {
        tracing::warn!(workload = %a.workload_id, "{w}");
    }
    // A container of this name left from a crash between create and start.
    let _ = env.runtime.remove(&ContainerId(prepared.spec.name.clone())).await;
    let id = env.runtime.create_and_start(&prepared.spec).await.map_err(|e| match e {
        RuntimeError::ImageMissing(image) => format!(
            "image {image} is not present on node {}: there is no registry, build it on the node \
             (deploy/images/build.sh)",
            env.node_id
        ),
        other => format!("starting the container: {other}"),
    })?;
    Ok((id, prepared))
}

/// After a clean exit: copy the model (and checkpoints) to the output paths. Rank 0
/// owns the outputs of a gang (the other ranks hold replicas of the same model).
async fn upload(
    env: &WorkerEnv,
    a: &WorkAssignment,
    key: &Key,
    outputs: Option<Outputs>,
    control: &mut watch::Receiver<Control>,
) -> (&'static str, String) {
    if a.rank != 0 {
        return ("SUCCEEDED", String::new());
    }
    if env.reporter.report(&a.workload_id, a.rank, "UPLOADING", String::new(), control).await != Reported::Acknowledged
    {
        return ("SUCCEEDED", String::new());
    }
    let outputs = match outputs {
        Some(p) => p,
        // Adopted after a restart: the directories follow from the assignment again.
        None => match prepare::outputs(a, &env.site(key)) {
            Ok(o) => o,
            Err(reason) => return ("FAILED", reason),
        },
    };
    let storage = env.storage.clone();
    let copy = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        // Opened again, without following links: the output root may have changed
        // since the run started.
        let mut files = 0;
        let pairs = std::iter::once((&outputs.model, &outputs.output))
            .chain(outputs.checkpoint_output.as_ref().map(|c| (&outputs.checkpoint, c)));
        for (from, to) in pairs {
            let dest = storage.create_dir(to).map_err(|e| e.to_string())?;
            let copied =
                copy_tree(from, &dest.fd).map_err(|e| format!("{}: copying to {}: {e}", to.field, to.shown))?;
            if !copied.skipped.is_empty() {
                tracing::warn!(
                    output = %to.shown,
                    skipped = ?copied.skipped,
                    "not copied: only regular files and directories leave a container"
                );
            }
            files += copied.files;
        }
        Ok(files)
    })
    .await;
    match copy {
        Ok(Ok(files)) => {
            tracing::info!(workload = %a.workload_id, files, "outputs uploaded");
            ("SUCCEEDED", String::new())
        }
        Ok(Err(reason)) => ("FAILED", reason),
        Err(e) => ("FAILED", format!("copying outputs: {e}")),
    }
}

/// FAIL TRAIN's reason: the exit code, what it means when Gantry knows, and the end of
/// the output.
fn failure_reason(code: i64, tail: &[String]) -> String {
    let meaning = match code {
        EXIT_REQUIREMENTS_FAILED => " (requirements.txt could not be installed)",
        EXIT_ENTRY_POINT_MISSING => " (entry point not found)",
        137 => " (killed: SIGKILL, e.g. out of memory)",
        143 => " (terminated: SIGTERM)",
        _ => "",
    };
    if tail.is_empty() {
        format!("exit code {code}{meaning}")
    } else {
        format!("exit code {code}{meaning}; last output:\n{}", tail.join("\n"))
    }
}

async fn wait_for_control(control: &mut watch::Receiver<Control>) {
    loop {
        if *control.borrow_and_update() != Control::Run {
            return;
        }
        if control.changed().await.is_err() {
            // The agent is shutting down: leave the container running for the next start.
            std::future::pending::<()>().await;
        }
    }
}

async fn abandon(env: &WorkerEnv, id: &ContainerId, pump: tokio::task::JoinHandle<Output>) {
    tracing::info!(container = %id, "workload no longer assigned here; removing its container");
    remove(env, id).await;
    finish_log(pump.await.ok());
}

async fn remove(env: &WorkerEnv, id: &ContainerId) {
    if let Err(e) = env.runtime.remove(id).await {
        tracing::warn!(container = %id, error = %e, "remove failed; the reconciler will retry");
    }
}

fn finish_log(output: Option<Output>) {
    if let Some(o) = output {
        o.finish();
    }
}
