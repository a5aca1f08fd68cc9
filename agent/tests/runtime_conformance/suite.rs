//! The behaviour every runtime must show. Each test gets a [`Harness`] that knows how
//! to make "a container that prints these lines and exits with this code" and "a
//! container that runs until stopped" on its runtime.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gantry_agent::runtime::{
    BindMount, ContainerEventKind, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, GantryLabels, GpuMode,
    Hardening, LabelSelector, LogStream, Network, RuntimeError, TmpfsMount, UserId, labels, workload_network_name,
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

/// A long-running container of workload `workload` on that workload's own network,
/// confined as a training is.
fn hardened(h: &dyn Harness, name: &str, workload: &str, rank: u32) -> ContainerSpec {
    let mut spec = h.long_running(name);
    spec.labels =
        GantryLabels { cluster: h.cluster().into(), node: "n1".into(), workload: workload.into(), rank }.to_map();
    spec.network = Network::Workload {
        name: workload_network_name(h.cluster(), workload),
        aliases: vec![format!("{workload}-{rank}")],
    };
    spec.hardening = Hardening {
        user: Some(UserId { uid: 1000, gid: 1000 }),
        read_only_rootfs: true,
        tmpfs: vec![TmpfsMount { container_path: "/tmp".into(), size_bytes: 1 << 20, mode: 0o1777, owner: None }],
        pids_limit: 100,
        cap_add: Vec::new(),
    };
    spec
}

fn networks_of(h: &dyn Harness) -> LabelSelector {
    LabelSelector::new().with(labels::CLUSTER, h.cluster())
}

pub async fn hardening_is_applied(h: &dyn Harness) {
    let rt = h.runtime();
    let spec = hardened(h, &h.name("hardened"), "wh", 0);
    let id = rt.create_and_start(&spec).await.unwrap();
    let applied = rt.inspect_hardening(&id).await.unwrap();
    assert!(applied.init, "an init process reaps zombies");
    assert_eq!(applied.security_opt, ["no-new-privileges:true"]);
    assert_eq!(applied.cap_drop, ["ALL"]);
    assert!(applied.cap_add.is_empty(), "{:?}", applied.cap_add);
    assert_eq!(applied.pids_limit, Some(100));
    assert_eq!(applied.user, "1000:1000");
    assert!(applied.read_only_rootfs);
    assert!(!applied.privileged);
    assert_eq!((applied.pid_mode.as_str(), applied.ipc_mode.as_str()), ("", "private"));
    let network = workload_network_name(h.cluster(), "wh");
    assert_eq!(applied.network_mode, network);
    assert_eq!(
        applied.networks,
        std::slice::from_ref(&network),
        "its own network, neither host nor the default bridge"
    );
    assert_eq!(applied.tmpfs, ["/tmp"]);
    assert!(!applied.mount_sources.iter().any(|m| m.contains("docker")), "{:?}", applied.mount_sources);
    rt.remove(&id).await.unwrap();
}

pub async fn a_workload_network_lives_as_long_as_its_containers(h: &dyn Harness) {
    let rt = h.runtime();
    let first = rt.create_and_start(&hardened(h, &h.name("net-0"), "wn", 0)).await.unwrap();
    let second = rt.create_and_start(&hardened(h, &h.name("net-1"), "wn", 1)).await.unwrap();
    let listed = rt.list_networks(&networks_of(h)).await.unwrap();
    assert_eq!(listed.len(), 1, "one network per workload group: {listed:?}");
    assert_eq!((listed[0].name.as_str(), listed[0].containers), (workload_network_name(h.cluster(), "wn").as_str(), 2));
    assert_eq!(listed[0].labels.get(labels::WORKLOAD).map(String::as_str), Some("wn"));
    assert!(!listed[0].labels.contains_key(labels::RANK), "the network is the group's, not a rank's");

    rt.remove(&first).await.unwrap();
    assert_eq!(rt.list_networks(&networks_of(h)).await.unwrap().len(), 1, "kept while a container uses it");
    assert_eq!(rt.remove_unused_networks(&networks_of(h)).await.unwrap(), Vec::<String>::new());
    rt.remove(&second).await.unwrap();
    assert_eq!(rt.list_networks(&networks_of(h)).await.unwrap(), [], "removed with the last container");
    rt.remove(&second).await.unwrap();
    assert_eq!(rt.remove_unused_networks(&networks_of(h)).await.unwrap(), Vec::<String>::new(), "idempotent");
}

pub async fn a_docker_socket_mount_is_refused_before_anything_exists(h: &dyn Harness) {
    let rt = h.runtime();
    for host_path in ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/"] {
        let name = h.name("sock");
        let mut spec = hardened(h, &name, "ws", 0);
        spec.mounts =
            vec![BindMount { host_path: host_path.into(), container_path: "/engine".into(), read_only: true }];
        match rt.create_and_start(&spec).await {
            Err(RuntimeError::InvalidSpec(msg)) => assert!(msg.contains(host_path), "{msg}"),
            other => panic!("{host_path}: {other:?}"),
        }
        let exists = rt.list(&LabelSelector::new()).await.unwrap().into_iter().any(|c| c.name == name);
        assert!(!exists, "no container was created for {host_path}");
    }
    assert_eq!(rt.list_networks(&networks_of(h)).await.unwrap(), [], "no network was created either");
}
