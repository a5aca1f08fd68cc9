//! The [`ContainerRuntime`] operations of [`FakeRuntime`].

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::broadcast::error::RecvError;

use super::{FakeContainer, FakeExit, FakeRuntime, SIGKILL_EXIT, applied, emit, finish, network_name};
use crate::runtime::ContainerRuntime;
use crate::runtime::error::RuntimeError;
use crate::runtime::labels::LabelSelector;
use crate::runtime::spec::{ContainerSpec, GpuMode};
use crate::runtime::types::{
    AppliedHardening, ContainerEvent, ContainerEventKind, ContainerId, ContainerInfo, ContainerState, ContainerStats,
    Limits, LogLine, LogStream, NetworkInfo,
};

/// What a log follower does next.
enum Next {
    Line(LogLine),
    End,
    Wait,
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerId, RuntimeError> {
        spec.validate()?;
        let id = {
            let mut state = self.lock();
            if state.images.as_ref().is_some_and(|images| !images.contains(&spec.image)) {
                return Err(RuntimeError::ImageMissing(spec.image.clone()));
            }
            if state.resolve(&spec.name).is_some() {
                return Err(RuntimeError::NameConflict(spec.name.clone()));
            }
            // As the engine: a host port bound by a running container is not bound
            // again (an unspecified address overlaps every address).
            if let Some(taken) = spec.network.published().iter().find(|p| state.port_taken(p)) {
                return Err(RuntimeError::Engine {
                    op: "start",
                    message: format!(
                        "Bind for {}:{} failed: port is already allocated",
                        taken.host_ip, taken.host_port
                    ),
                });
            }
            if let Some(network) = network_name(spec) {
                state.networks.entry(network.to_string()).or_insert_with(|| spec.network_labels());
            }
            state.next_id += 1;
            let id = format!("fake{:012}", state.next_id);
            let script = state.scripts.get(&spec.name).unwrap_or(&state.default_script).clone();
            let mut logs = Vec::new();
            for (stream, lines) in [(LogStream::Stdout, &script.stdout), (LogStream::Stderr, &script.stderr)] {
                for line in lines {
                    logs.push(LogLine { stream, line: line.clone(), ts_ms: Some(state.tick()) });
                }
            }
            let exit = script.exit.clone();
            state.containers.insert(
                id.clone(),
                FakeContainer {
                    id: ContainerId(id.clone()),
                    spec: spec.clone(),
                    script,
                    state: ContainerState::Running,
                    exit_code: None,
                    logs,
                    stats: None,
                },
            );
            emit(&mut state, &self.events, &id, ContainerEventKind::Start);
            if let FakeExit::Code(code) = exit {
                finish(&mut state, &self.events, &id, code, false);
            }
            id
        };
        self.notify();
        Ok(ContainerId(id))
    }

    async fn stop(&self, id: &ContainerId, _grace: Duration) -> Result<(), RuntimeError> {
        self.mutate(id.as_str(), |state, id| {
            let code = state.containers.get(id).map_or(SIGKILL_EXIT, |c| c.script.stop_exit_code);
            finish(state, &self.events, id, code, false);
        })
    }

    async fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        match self.mutate(id.as_str(), |state, id| {
            finish(state, &self.events, id, SIGKILL_EXIT, false);
            let removed = state.containers.remove(id);
            if let Some(network) = removed.as_ref().and_then(|c| network_name(&c.spec))
                && state.attached(network) == 0
            {
                state.networks.remove(network);
            }
        }) {
            Err(RuntimeError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let state = self.lock();
        Ok(state
            .containers
            .values()
            .filter(|c| selector.matches(&c.spec.effective_labels()))
            .map(|c| ContainerInfo {
                id: c.id.clone(),
                name: c.spec.name.clone(),
                labels: c.spec.effective_labels(),
                state: c.state,
                exit_code: c.exit_code,
            })
            .collect())
    }

    async fn wait(&self, id: &ContainerId) -> Result<i64, RuntimeError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            {
                let state = self.lock();
                let key = state.resolve(id.as_str()).ok_or_else(|| RuntimeError::NotFound(id.0.clone()))?;
                let c = &state.containers[&key];
                if !c.state.is_active() {
                    return Ok(c.exit_code.unwrap_or(0));
                }
            }
            if changed.changed().await.is_err() {
                return Err(RuntimeError::Engine { op: "wait", message: "runtime dropped".into() });
            }
        }
    }

    fn logs(&self, id: &ContainerId, follow: bool) -> BoxStream<'static, Result<LogLine, RuntimeError>> {
        let Some(key) = self.lock().resolve(id.as_str()) else {
            return stream::iter([Err(RuntimeError::NotFound(id.0.clone()))]).boxed();
        };
        let runtime = self.clone();
        let changed = self.changed.subscribe();
        stream::unfold((runtime, changed, 0usize), move |(runtime, mut changed, cursor)| {
            let key = key.clone();
            async move {
                loop {
                    changed.borrow_and_update();
                    let next = {
                        let state = runtime.lock();
                        match state.containers.get(&key) {
                            None => Next::End,
                            Some(c) if cursor < c.logs.len() => Next::Line(c.logs[cursor].clone()),
                            Some(c) if !follow || !c.state.is_active() => Next::End,
                            Some(_) => Next::Wait,
                        }
                    };
                    match next {
                        Next::Line(line) => return Some((Ok(line), (runtime, changed, cursor + 1))),
                        Next::End => return None,
                        Next::Wait => {
                            if changed.changed().await.is_err() {
                                return None;
                            }
                        }
                    }
                }
            }
        })
        .boxed()
    }

    fn events(&self, selector: &LabelSelector) -> BoxStream<'static, Result<ContainerEvent, RuntimeError>> {
        let receiver = self.events.subscribe();
        let selector = selector.clone();
        stream::unfold(receiver, move |mut receiver| {
            let selector = selector.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) if selector.matches(&event.labels) => return Some((Ok(event), receiver)),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(missed)) => {
                            let message = format!("missed {missed} events; list containers to resync");
                            return Some((Err(RuntimeError::Engine { op: "events", message }), receiver));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }

    async fn stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        let state = self.lock();
        let key = state.resolve(id.as_str()).ok_or_else(|| RuntimeError::NotFound(id.0.clone()))?;
        let c = &state.containers[&key];
        Ok(c.stats.unwrap_or(ContainerStats {
            cpu_millis: 0,
            memory_bytes: 0,
            memory_limit_bytes: u64::try_from(c.spec.memory_bytes).unwrap_or(0),
        }))
    }

    async fn inspect_limits(&self, id: &ContainerId) -> Result<Limits, RuntimeError> {
        let state = self.lock();
        let key = state.resolve(id.as_str()).ok_or_else(|| RuntimeError::NotFound(id.0.clone()))?;
        let spec = &state.containers[&key].spec;
        Ok(Limits {
            nano_cpus: spec.nano_cpus,
            memory_bytes: spec.memory_bytes,
            gpu_device_ids: match self.gpu_mode {
                GpuMode::Nvidia => spec.gpu_uuids.clone(),
                GpuMode::FakeLabelsOnly => Vec::new(),
            },
        })
    }

    async fn inspect_hardening(&self, id: &ContainerId) -> Result<AppliedHardening, RuntimeError> {
        let state = self.lock();
        let key = state.resolve(id.as_str()).ok_or_else(|| RuntimeError::NotFound(id.0.clone()))?;
        Ok(applied(&state.containers[&key].spec))
    }

    async fn list_networks(&self, selector: &LabelSelector) -> Result<Vec<NetworkInfo>, RuntimeError> {
        let state = self.lock();
        Ok(state
            .networks
            .iter()
            .filter(|(_, labels)| selector.matches(labels))
            .map(|(name, labels)| NetworkInfo {
                name: name.clone(),
                labels: labels.clone(),
                containers: state.attached(name),
            })
            .collect())
    }

    async fn remove_unused_networks(&self, selector: &LabelSelector) -> Result<Vec<String>, RuntimeError> {
        let mut state = self.lock();
        let unused: Vec<String> = state
            .networks
            .iter()
            .filter(|(name, labels)| selector.matches(labels) && state.attached(name) == 0)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &unused {
            state.networks.remove(name);
        }
        Ok(unused)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::runtime::fake::FakeScript;

    fn spec(name: &str) -> ContainerSpec {
        let mut s = ContainerSpec::new(name, "img", vec!["x".into()]);
        s.labels.insert("org.gantry.workload".into(), "w1".into());
        s
    }

    #[tokio::test]
    async fn scripted_exit_codes_and_output() {
        let rt = FakeRuntime::new();
        rt.script("c-a", FakeScript::exits(3, &["one", "two"]));
        let id = rt.create_and_start(&spec("c-a")).await.unwrap();
        assert_eq!(rt.wait(&id).await.unwrap(), 3);
        let lines: Vec<String> = rt.logs(&id, true).map(|l| l.unwrap().line).collect().await;
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(rt.create_and_start(&spec("c-a")).await, Err(RuntimeError::NameConflict("c-a".into())));
    }

    #[tokio::test]
    async fn a_host_port_is_published_once_while_its_container_runs() {
        use crate::runtime::{Network, PublishedPort};
        let published = |name: &str, ip: &str| {
            let mut s = spec(name);
            s.labels.insert("org.gantry.cluster".into(), "c".into());
            let port = PublishedPort { host_ip: ip.parse().unwrap(), host_port: 31000, container_port: 8080 };
            s.network = Network::Published { name: "gantry-c-w1".into(), ports: vec![port] };
            s
        };
        let rt = FakeRuntime::new();
        let id = rt.create_and_start(&published("p-a", "127.0.0.1")).await.unwrap();
        let again = rt.create_and_start(&published("p-b", "0.0.0.0")).await;
        assert!(matches!(again, Err(RuntimeError::Engine { .. })), "{again:?}");
        assert!(rt.create_and_start(&published("p-c", "127.0.0.2")).await.is_ok(), "another address is free");
        assert_eq!(rt.inspect_hardening(&id).await.unwrap().network_mode, "gantry-c-w1");
        rt.remove(&id).await.unwrap();
        assert!(rt.create_and_start(&published("p-b", "127.0.0.1")).await.is_ok(), "released with its container");
    }

    #[tokio::test]
    async fn followers_and_waiters_see_later_changes() {
        let rt = FakeRuntime::new();
        let id = rt.create_and_start(&spec("c-b")).await.unwrap();
        let mut events = rt.events(&LabelSelector::new().with("org.gantry.workload", "w1"));
        let follower = tokio::spawn(rt.logs(&id, true).map(|l| l.unwrap().line).collect::<Vec<_>>());
        let waiter = tokio::spawn({
            let rt = rt.clone();
            let id = id.clone();
            async move { rt.wait(&id).await }
        });
        rt.print("c-b", LogStream::Stdout, "late").unwrap();
        rt.oom_kill("c-b").unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 137);
        assert_eq!(follower.await.unwrap(), ["late"]);
        assert_eq!(events.next().await.unwrap().unwrap().kind, ContainerEventKind::Oom);
        assert_eq!(events.next().await.unwrap().unwrap().kind, ContainerEventKind::Die { exit_code: Some(137) });
    }

    #[tokio::test]
    async fn missing_images_and_containers() {
        let rt = FakeRuntime::new().with_images(&["present"]);
        assert_eq!(rt.create_and_start(&spec("c-c")).await, Err(RuntimeError::ImageMissing("img".into())));
        assert_eq!(rt.wait(&"nope".into()).await, Err(RuntimeError::NotFound("nope".into())));
        assert_eq!(rt.remove(&"nope".into()).await, Ok(()));
        assert!(rt.specs().is_empty());
    }
}
