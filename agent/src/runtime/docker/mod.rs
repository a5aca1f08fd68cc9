//! [`DockerRuntime`]: [`ContainerRuntime`] over the Docker Engine API (bollard, Unix
//! socket).
//!
//! The engine may be older than bollard's default API version (Debian's Docker 20.10
//! speaks 1.41), so [`DockerRuntime::connect`] negotiates the version once.

mod applied;
mod convert;
mod create_body;
mod networks;
mod timestamp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use tracing::{debug, warn};

use super::ContainerRuntime;
use super::error::RuntimeError;
use super::hardening::HardeningConfig;
use super::labels::LabelSelector;
use super::spec::{ContainerSpec, GpuMode};
use super::types::{
    AppliedHardening, ContainerEvent, ContainerId, ContainerInfo, ContainerState, ContainerStats, Limits, LogLine,
    NetworkInfo,
};

/// Seconds bollard waits for response headers. Streams (logs, events, wait) are not
/// bounded by it; `stop` answers only after the container stopped, so it gets its own.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// The `[docker]` section of the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Path of the engine's Unix socket; default: `DOCKER_HOST` if it is a
    /// `unix://` address, else `/var/run/docker.sock`.
    #[serde(default)]
    pub socket: Option<String>,
    /// How GPUs reach containers on this node.
    #[serde(default)]
    pub gpu_mode: GpuMode,
    /// How workloads are confined (user, root filesystem, PID limit).
    #[serde(default)]
    pub hardening: HardeningConfig,
}

/// The Docker engine of this node. Cheap to clone (the client is shared).
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    gpu_mode: GpuMode,
    /// Held while a workload network is created or removed, so two ranks of a group
    /// starting at once never create two networks of one name.
    network_lock: Arc<tokio::sync::Mutex<()>>,
}

impl DockerRuntime {
    /// Connects and negotiates the API version; fails at once if the socket is missing
    /// or the engine does not answer.
    pub async fn connect(config: &DockerConfig) -> Result<Self, RuntimeError> {
        let docker = match &config.socket {
            Some(path) => Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION),
            None => Docker::connect_with_unix_defaults(),
        }
        .map_err(|e| RuntimeError::Unreachable(e.to_string()))?;
        let docker = docker.negotiate_version().await.map_err(|e| RuntimeError::Unreachable(e.to_string()))?;
        Ok(DockerRuntime { docker, gpu_mode: config.gpu_mode, network_lock: Arc::default() })
    }

    pub fn gpu_mode(&self) -> GpuMode {
        self.gpu_mode
    }

    /// The underlying client, for engine operations outside [`ContainerRuntime`]
    /// (loading images).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    async fn ensure_network(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        if let Some(name) = spec.network.own_bridge() {
            let _guard = self.network_lock.lock().await;
            networks::ensure(&self.docker, name, spec.network_labels()).await?;
        }
        Ok(())
    }

    /// Creates and starts once; `Err(Ok(()))` when the container's network vanished
    /// under it (worth one more try), `Err(Err(_))` for any other failure.
    async fn try_create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerId, Result<(), RuntimeError>> {
        let retry_network = |e: &BollardError| spec.network.own_bridge().is_some() && networks::network_missing(e);
        let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let created =
            match self.docker.create_container(Some(options), create_body::create_body(spec, self.gpu_mode)).await {
                Ok(c) => c,
                Err(e) if retry_network(&e) => return Err(Ok(())),
                Err(e) => return Err(Err(convert::map_create_error(&spec.name, &spec.image, e))),
            };
        for warning in created.warnings.iter().filter(|w| !w.is_empty()) {
            warn!(container = %spec.name, warning = %warning, "docker warned on create");
        }
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let again = retry_network(&e);
            let err = convert::map_error("start", &spec.name, e);
            // A created-but-never-started container would hold the name and confuse
            // the next reconcile; the start error is what the caller needs to see.
            if let Err(cleanup) = self.remove(&ContainerId(created.id.clone())).await {
                warn!(container = %spec.name, error = %cleanup, "could not remove container after failed start");
            }
            return Err(if again { Ok(()) } else { Err(err) });
        }
        Ok(ContainerId(created.id))
    }

    /// Waits (bounded) until the engine no longer knows container `id`.
    async fn wait_gone(&self, id: &str) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(REQUEST_TIMEOUT_SECS);
        loop {
            match self.docker.inspect_container(id, None).await {
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
                Err(e) => return Err(convert::map_error("inspect", id, e)),
                Ok(_) if tokio::time::Instant::now() > deadline => {
                    return Err(RuntimeError::Engine { op: "remove", message: format!("{id} is still being removed") });
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The workload networks `id` is attached to (empty if it does not exist).
    async fn networks_of(&self, id: &str) -> Result<Vec<String>, RuntimeError> {
        match self.docker.inspect_container(id, None).await {
            Ok(inspect) => Ok(applied::networks(&inspect)),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(convert::map_error("inspect", id, e)),
        }
    }

    async fn exit_code_of(&self, id: &str) -> Result<Option<i64>, RuntimeError> {
        let inspect =
            self.docker.inspect_container(id, None).await.map_err(|e| convert::map_error("inspect", id, e))?;
        Ok(inspect.state.and_then(|s| s.exit_code))
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerId, RuntimeError> {
        spec.validate()?;
        // Twice at most: the group's network may be removed with its previous last
        // container between `ensure_network` and the start.
        for _ in 0..2 {
            self.ensure_network(spec).await?;
            match self.try_create_and_start(spec).await {
                Ok(id) => return Ok(id),
                Err(Ok(())) => debug!(container = %spec.name, "its network vanished; creating it again"),
                Err(Err(e)) => return Err(e),
            }
        }
        Err(RuntimeError::Engine { op: "create", message: format!("the network of {} keeps vanishing", spec.name) })
    }

    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        let secs = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        // The engine answers after the container stopped, up to `grace` later.
        let docker = self.docker.clone().with_timeout(grace + Duration::from_secs(REQUEST_TIMEOUT_SECS));
        // 304 (already stopped) counts as success in bollard.
        docker.stop_container(id.as_str(), Some(options)).await.map_err(|e| convert::map_error("stop", id.as_str(), e))
    }

    async fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let networks = self.networks_of(id.as_str()).await?;
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id.as_str(), Some(options)).await {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
            // Another caller (an agent killed mid-removal, a test's cleanup) is removing
            // it: the result is the same once it is gone, and only then is its network
            // unused.
            Err(BollardError::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                self.wait_gone(id.as_str()).await?;
            }
            Err(e) => return Err(convert::map_error("remove", id.as_str(), e)),
        }
        let _guard = self.network_lock.lock().await;
        for name in networks {
            networks::remove_if_unused(&self.docker, &name).await?;
        }
        Ok(())
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut builder = ListContainersOptionsBuilder::new().all(true);
        if !selector.0.is_empty() {
            builder = builder.filters(&HashMap::from([("label", selector.to_docker_filters())]));
        }
        let summaries =
            self.docker.list_containers(Some(builder.build())).await.map_err(|e| convert::map_error("list", "", e))?;
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            let Some(id) = s.id else { continue };
            let state = convert::summary_state(s.state);
            // The list has no exit codes; ask for them only where one exists.
            let exit_code = match state {
                ContainerState::Exited | ContainerState::Dead => match self.exit_code_of(&id).await {
                    Ok(code) => code,
                    Err(RuntimeError::NotFound(_)) => continue, // removed meanwhile
                    Err(e) => return Err(e),
                },
                _ => None,
            };
            let name =
                s.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
            out.push(ContainerInfo {
                id: ContainerId(id),
                name,
                labels: s.labels.unwrap_or_default().into_iter().collect(),
                state,
                exit_code,
            });
        }
        Ok(out)
    }

    async fn wait(&self, id: &ContainerId) -> Result<i64, RuntimeError> {
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut waits = self.docker.wait_container(id.as_str(), Some(options));
        match waits.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error; for us it is the result.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(convert::map_error("wait", id.as_str(), e)),
            None => {
                Err(RuntimeError::Engine { op: "wait", message: "the engine closed the wait without a result".into() })
            }
        }
    }

    fn logs(&self, id: &ContainerId, follow: bool) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        let options = LogsOptionsBuilder::new().follow(follow).stdout(true).stderr(true).timestamps(true).build();
        let target = id.0.clone();
        self.docker
            .logs(id.as_str(), Some(options))
            .map(move |frame| match frame {
                Ok(frame) => stream::iter(convert::log_lines(frame).into_iter().map(Ok).collect::<Vec<_>>()),
                Err(e) => stream::iter(vec![Err(convert::map_error("logs", &target, e))]),
            })
            .flatten()
            .boxed()
    }

    fn events(&self, selector: &LabelSelector) -> BoxStream<'static, Result<ContainerEvent, RuntimeError>> {
        let mut filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("event", vec!["start".to_string(), "die".to_string(), "oom".to_string()]),
        ]);
        if !selector.0.is_empty() {
            filters.insert("label", selector.to_docker_filters());
        }
        // The request goes out on the first poll; `since` = now makes the engine replay
        // what happened between this call and that poll, so "from now on" holds.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
        let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
        self.docker
            .events(Some(options))
            .map_err(|e| convert::map_error("events", "", e))
            .try_filter_map(|msg| futures::future::ready(Ok(convert::event(msg))))
            .boxed()
    }

    async fn stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        // Not one-shot: the engine then takes two samples, which CPU usage needs.
        let options = StatsOptionsBuilder::new().stream(false).one_shot(false).build();
        match self.docker.stats(id.as_str(), Some(options)).next().await {
            Some(Ok(s)) => Ok(convert::stats(&s)),
            Some(Err(e)) => Err(convert::map_error("stats", id.as_str(), e)),
            None => Err(RuntimeError::Engine { op: "stats", message: "the engine sent no sample".into() }),
        }
    }

    async fn inspect_limits(&self, id: &ContainerId) -> Result<Limits, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(id.as_str(), None)
            .await
            .map_err(|e| convert::map_error("inspect", id.as_str(), e))?;
        Ok(convert::limits(&inspect))
    }

    async fn inspect_hardening(&self, id: &ContainerId) -> Result<AppliedHardening, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(id.as_str(), None)
            .await
            .map_err(|e| convert::map_error("inspect", id.as_str(), e))?;
        Ok(applied::hardening(&inspect))
    }

    async fn list_networks(&self, selector: &LabelSelector) -> Result<Vec<NetworkInfo>, RuntimeError> {
        networks::list(&self.docker, selector).await
    }

    async fn remove_unused_networks(&self, selector: &LabelSelector) -> Result<Vec<String>, RuntimeError> {
        let _guard = self.network_lock.lock().await;
        networks::remove_unused(&self.docker, selector).await
    }
}
