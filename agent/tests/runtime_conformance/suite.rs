//! The behaviour every runtime must show. Each test gets a [`Harness`] that knows how
//! to make "a container that prints these lines and exits with this code" and "a
//! container that runs until stopped" on its runtime.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gantry_agent::runtime::{
    ContainerEventKind, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, GantryLabels, GpuMode,
    LabelSelector, LogStream, RuntimeError, labels,
};

/// Generous: the engine may be slow on a loaded 2-core CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub trait Harness: Sync {
    fn runtime(&self) -> &dyn ContainerRuntime;
    /// A unique container name ending in `suffix`.
    fn name(&self, suffix: &str) -> String;
    /// The cluster id of this test's containers.
    fn cluster(&self) -> &str;
    /// Prints `lines` on stdout, then exits with `code`.
    fn exiting(&self, name: &str, lines: &[&str], code: i64) -> ContainerSpec;
    /// Runs until stopped.
    fn long_running(&self, name: &str) -> ContainerSpec;
    fn gpu_mode(&self) -> GpuMode;
}

pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn labelled(h: &dyn Harness, mut spec: ContainerSpec, node: &str, rank: u32) -> ContainerSpec {
    spec.labels = GantryLabels { cluster: h.cluster().into(), node: node.into(), workload: "w1".into(), rank }.to_map();
    spec
}

pub async fn exit_codes_are_results(h: &dyn Harness) {
    let rt = h.runtime();
    let ok = rt.create_and_start(&h.exiting(&h.name("ok"), &[], 0)).await.unwrap();
    let failed = rt.create_and_start(&h.exiting(&h.name("three"), &[], 3)).await.unwrap();
    assert_eq!(within("wait 0", rt.wait(&ok)).await, Ok(0));
    assert_eq!(within("wait 3", rt.wait(&failed)).await, Ok(3));
    assert_eq!(within("wait again", rt.wait(&failed)).await, Ok(3), "waiting on an exited container returns at once");
    let listed = rt.list(&LabelSelector::new()).await.unwrap();
    let info = listed.iter().find(|c| c.id == failed).expect("exited containers are listed");
    assert_eq!((info.state, info.exit_code), (ContainerState::Exited, Some(3)));
    rt.remove(&ok).await.unwrap();
    rt.remove(&failed).await.unwrap();
}

pub async fn logs_arrive_in_order(h: &dyn Harness) {
    let rt = h.runtime();
    let lines: Vec<String> = (1..=20).map(|i| format!("line {i} of 20")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let id = rt.create_and_start(&h.exiting(&h.name("logs"), &refs, 0)).await.unwrap();
    // Following a container that exits ends the stream.
    let followed: Vec<_> = within("follow logs", rt.logs(&id, true).try_collect::<Vec<_>>()).await.unwrap();
    assert_eq!(followed.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), refs);
    assert!(followed.iter().all(|l| l.stream == LogStream::Stdout));
    let ts: Vec<u64> = followed.iter().map(|l| l.ts_ms.expect("timestamped")).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps never go back: {ts:?}");
    let again: Vec<_> = within("logs", rt.logs(&id, false).try_collect::<Vec<_>>()).await.unwrap();
    assert_eq!(again, followed);
    rt.remove(&id).await.unwrap();
}

pub async fn stop_then_remove_leaves_nothing(h: &dyn Harness) {
    let rt = h.runtime();
    let name = h.name("stop");
    let spec = labelled(h, h.long_running(&name), "n1", 0);
    let id = rt.create_and_start(&spec).await.unwrap();
    let mine = LabelSelector::new().with(labels::CLUSTER, h.cluster());
    let listed = rt.list(&mine).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].state, listed[0].exit_code, listed[0].name.as_str()),
        (ContainerState::Running, None, name.as_str())
    );

    within("stop", rt.stop(&id, Duration::from_secs(10))).await.unwrap();
    within("wait after stop", rt.wait(&id)).await.unwrap();
    assert_eq!(rt.list(&mine).await.unwrap()[0].state, ContainerState::Exited);
    within("stop again", rt.stop(&id, Duration::from_secs(1))).await.expect("stopping an exited container succeeds");

    rt.remove(&id).await.unwrap();
    assert!(rt.list(&mine).await.unwrap().is_empty(), "container gone after remove");
    rt.remove(&id).await.expect("remove is idempotent");
    assert_eq!(rt.stop(&id, Duration::from_secs(1)).await, Err(RuntimeError::NotFound(id.0.clone())));

    // Removing a running container kills it.
    let id = rt.create_and_start(&labelled(h, h.long_running(&h.name("rm-running")), "n1", 0)).await.unwrap();
    within("remove running", rt.remove(&id)).await.unwrap();
    assert!(rt.list(&mine).await.unwrap().is_empty());
}

pub async fn labels_select_containers(h: &dyn Harness) {
    let rt = h.runtime();
    let a = rt.create_and_start(&labelled(h, h.long_running(&h.name("a")), "n1", 0)).await.unwrap();
    let b = rt.create_and_start(&labelled(h, h.long_running(&h.name("b")), "n1", 1)).await.unwrap();
    let c = rt.create_and_start(&labelled(h, h.exiting(&h.name("c"), &[], 0), "n2", 0)).await.unwrap();
    let mut gpu_spec = labelled(h, h.long_running(&h.name("g")), "n3", 0);
    gpu_spec.gpu_uuids = vec!["GPU-aaaa".into(), "GPU-bbbb".into()];
    let g = rt.create_and_start(&gpu_spec).await.unwrap();

    let cluster = LabelSelector::new().with(labels::CLUSTER, h.cluster());
    let ids = |list: Vec<gantry_agent::runtime::ContainerInfo>| {
        let mut ids: Vec<ContainerId> = list.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let mut all = vec![a.clone(), b.clone(), c.clone(), g.clone()];
    all.sort();
    assert_eq!(ids(rt.list(&cluster).await.unwrap()), all);
    let mut n1 = vec![a.clone(), b.clone()];
    n1.sort();
    assert_eq!(ids(rt.list(&cluster.clone().with(labels::NODE, "n1")).await.unwrap()), n1);
    assert_eq!(
        ids(rt.list(&cluster.clone().with(labels::NODE, "n1").with(labels::RANK, "1")).await.unwrap()),
        std::slice::from_ref(&b)
    );
    assert!(rt.list(&cluster.clone().with(labels::NODE, "elsewhere")).await.unwrap().is_empty());

    let listed = rt.list(&cluster.clone().with(labels::NODE, "n3")).await.unwrap();
    assert_eq!(listed[0].labels[labels::GPUS], "GPU-aaaa,GPU-bbbb", "the GPU label records ownership");
    assert_eq!(listed[0].labels[labels::WORKLOAD], "w1");

    for id in [a, b, c, g] {
        rt.remove(&id).await.unwrap();
    }
}

pub async fn limits_are_applied(h: &dyn Harness) {
    let rt = h.runtime();
    let mut spec = h.long_running(&h.name("limits")).with_resources(500, 64);
    spec.gpu_uuids = vec!["GPU-1234".into()];
    let id = rt.create_and_start(&spec).await.unwrap();
    let limits = rt.inspect_limits(&id).await.unwrap();
    assert_eq!(limits.nano_cpus, 500_000_000);
    assert_eq!(limits.memory_bytes, 64 * 1024 * 1024);
    let expected_gpus: Vec<String> = match h.gpu_mode() {
        GpuMode::Nvidia => vec!["GPU-1234".into()],
        GpuMode::FakeLabelsOnly => vec![],
    };
    assert_eq!(limits.gpu_device_ids, expected_gpus);
    let stats = within("stats", rt.stats(&id)).await.unwrap();
    assert_eq!(stats.memory_limit_bytes, 64 * 1024 * 1024, "the kernel enforces the memory limit");
    assert!(stats.cpu_millis <= 1000, "an idle container uses little CPU: {stats:?}");

    let unlimited = rt.create_and_start(&h.long_running(&h.name("unlimited"))).await.unwrap();
    let limits = rt.inspect_limits(&unlimited).await.unwrap();
    assert_eq!((limits.nano_cpus, limits.memory_bytes, limits.gpu_device_ids.len()), (0, 0, 0));
    rt.remove(&id).await.unwrap();
    rt.remove(&unlimited).await.unwrap();
}

pub async fn events_report_start_and_die(h: &dyn Harness) {
    let rt = h.runtime();
    let mut events = rt.events(&LabelSelector::new().with(labels::CLUSTER, h.cluster()));
    // Created after subscribing: the events must not be missed.
    let id = rt.create_and_start(&labelled(h, h.exiting(&h.name("events"), &["bye"], 7), "n1", 0)).await.unwrap();
    let mut other = h.exiting(&h.name("unlabelled"), &[], 0);
    other.labels.insert(labels::CLUSTER.into(), "another-cluster".into());
    let other = rt.create_and_start(&other).await.unwrap();

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let event = within("events", events.next()).await.expect("stream open").expect("event");
        assert_eq!(event.id, id, "only this cluster's containers");
        assert_eq!(event.labels[labels::CLUSTER], h.cluster());
        assert!(event.time_ms > 0);
        kinds.push(event.kind);
    }
    assert_eq!(kinds, [ContainerEventKind::Start, ContainerEventKind::Die { exit_code: Some(7) }]);
    rt.remove(&id).await.unwrap();
    rt.remove(&other).await.unwrap();
}

pub async fn names_are_unique(h: &dyn Harness) {
    let rt = h.runtime();
    let spec = h.long_running(&h.name("dup"));
    let id = rt.create_and_start(&spec).await.unwrap();
    assert_eq!(rt.create_and_start(&spec).await, Err(RuntimeError::NameConflict(spec.name.clone())));
    // Ids and names are interchangeable.
    assert_eq!(
        rt.inspect_limits(&ContainerId(spec.name.clone())).await.unwrap(),
        rt.inspect_limits(&id).await.unwrap()
    );
    rt.remove(&ContainerId(spec.name.clone())).await.unwrap();
    let id = rt.create_and_start(&spec).await.expect("the name is free again after remove");
    rt.remove(&id).await.unwrap();
}

pub async fn missing_image_and_container_are_distinct_errors(h: &dyn Harness) {
    let rt = h.runtime();
    let mut spec = h.exiting(&h.name("noimage"), &[], 0);
    spec.image = "gantry-test/does-not-exist:never".into();
    assert_eq!(rt.create_and_start(&spec).await, Err(RuntimeError::ImageMissing(spec.image.clone())));
    assert!(rt.list(&LabelSelector::new()).await.unwrap().iter().all(|c| c.name != spec.name), "nothing left behind");

    let ghost = ContainerId(h.name("ghost"));
    assert_eq!(rt.wait(&ghost).await, Err(RuntimeError::NotFound(ghost.0.clone())));
    assert_eq!(rt.inspect_limits(&ghost).await, Err(RuntimeError::NotFound(ghost.0.clone())));
    assert_eq!(rt.stats(&ghost).await, Err(RuntimeError::NotFound(ghost.0.clone())));
    let logs: Vec<_> = rt.logs(&ghost, false).collect().await;
    assert_eq!(logs, [Err(RuntimeError::NotFound(ghost.0.clone()))]);

    let mut invalid = h.exiting("-bad name", &[], 0);
    invalid.name = "-bad name".into();
    assert!(matches!(rt.create_and_start(&invalid).await, Err(RuntimeError::InvalidSpec(_))));
}
