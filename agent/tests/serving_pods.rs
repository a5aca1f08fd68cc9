//! The serving pod controller against this machine's real Docker engine, without a
//! scheduler: its reports and its linearizable reads are recorded or scripted here.
//!
//! Uses `gantry/python:3.11` (deploy/images/build.sh) running a tiny HTTP server from
//! the artifact directory (the agent's `[serving] command` points at it), unique
//! cluster and workload names, and removes every container and network it made.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gantry_agent::daemon::serving::{
    AssignmentSet, Control, Ended, Held, InstanceReports, Latest, ServingEnv, Storage, run_instance,
};
use gantry_agent::runtime::{
    ContainerInfo, ContainerRuntime, DockerConfig, DockerRuntime, GpuMode, HardeningConfig, LabelSelector, labels,
};
use gantry_proto::v1::{PodState, ServingInstance, ServingPod, StorageGrants, WorkAssignment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const IMAGE: &str = "gantry/python:3.11";
const DEADLINE: Duration = Duration::from_secs(90);

const SERVER: &str = r#"import http.server, os
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["GANTRY_PORT"])), Ready).serve_forever()
"#;

const MISSING: &str = r#"import sys
print("loading", flush=True)
print("no model file in /mnt/models (expected model.onnx)", file=sys.stderr)
sys.exit(3)
"#;

/// What the controller told the "scheduler".
#[derive(Default)]
struct Recorder {
    pods: watch::Sender<BTreeMap<String, PodState>>,
    phases: Mutex<Vec<String>>,
}

#[async_trait]
impl InstanceReports for Recorder {
    async fn pods(&self, _workload_id: &str, pods: Vec<PodState>) -> Result<(), tonic::Status> {
        self.pods.send_replace(pods.into_iter().map(|p| (p.pod_id.clone(), p)).collect());
        Ok(())
    }

    async fn phase(&self, _workload_id: &str, _rank: u32, phase: &str) -> Result<(), tonic::Status> {
        self.phases.lock().unwrap().push(phase.to_string());
        Ok(())
    }
}

/// The "leader's" answer to a linearizable read, and how often it was asked.
#[derive(Default)]
struct Scripted {
    set: Mutex<AssignmentSet>,
    reads: watch::Sender<u32>,
}

#[async_trait]
impl Latest for Scripted {
    async fn latest(&self) -> Result<AssignmentSet, tonic::Status> {
        let set = self.set.lock().unwrap().clone();
        self.reads.send_modify(|n| *n += 1);
        Ok(set)
    }
}

struct Fixture {
    runtime: DockerRuntime,
    cluster: String,
    workload: String,
    _dir: tempfile::TempDir,
    root: PathBuf,
    other: PathBuf,
}

impl Fixture {
    fn selector(&self) -> LabelSelector {
        LabelSelector::new().with(labels::CLUSTER, &self.cluster)
    }

    async fn pods(&self) -> Vec<ContainerInfo> {
        self.runtime.list(&self.selector()).await.unwrap()
    }

    async fn container_of(&self, pod_id: &str) -> Option<ContainerInfo> {
        self.pods().await.into_iter().find(|c| c.labels.get(labels::POD).map(String::as_str) == Some(pod_id))
    }

    async fn cleanup(&self) {
        for c in self.runtime.list(&self.selector()).await.unwrap_or_default() {
            let _ = self.runtime.remove(&c.id).await;
        }
        let _ = self.runtime.remove_unused_networks(&self.selector()).await;
    }
}

/// A directory readable by the pods' user (1000), holding `server.py`.
fn artifact(dir: &Path, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("server.py"), script).unwrap();
    for p in [dir.to_path_buf(), dir.join("server.py")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn free_port() -> u32 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    u32::from(listener.local_addr().unwrap().port())
}

fn pod(id: &str, path: &str) -> ServingPod {
    ServingPod {
        pod_id: id.into(),
        resource_id: "r1".into(),
        model: "m1".into(),
        framework: "SCIKIT_LEARN".into(),
        artifact_path: path.into(),
        image: IMAGE.into(),
        host_port: free_port(),
        cpu_millis: 500,
        memory_mib: 128,
    }
}

fn instance(f: &Fixture, pods: Vec<ServingPod>) -> WorkAssignment {
    WorkAssignment {
        workload_id: f.workload.clone(),
        rank: 0,
        project: "team-a".into(),
        cpu_millis: 2000,
        memory_mib: 1024,
        grants: Some(StorageGrants { read: vec![format!("file://{}", f.root.display())], write: vec![] }),
        serving: Some(ServingInstance { endpoint_id: "e1".into(), stage_id: "s1".into(), pods }),
        ..Default::default()
    }
}

async fn http_status(port: u32, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).unwrap())).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out.lines().next().unwrap_or_default().to_string())
}

/// Waits until the recorded pod states satisfy `ok`.
async fn until_pods(rec: &Recorder, what: &str, ok: impl Fn(&BTreeMap<String, PodState>) -> bool) {
    let mut rx = rec.pods.subscribe();
    let waited = tokio::time::timeout(DEADLINE, rx.wait_for(|p| ok(p))).await;
    assert!(waited.is_ok(), "{what}: timed out; last report {:?}", *rec.pods.borrow());
}

/// Polls `check` (every 100 ms) until it holds.
async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serving_pods_run_hardened_publish_restart_fail_and_go() {
    let config = DockerConfig { gpu_mode: GpuMode::FakeLabelsOnly, ..Default::default() };
    let runtime = DockerRuntime::connect(&config).await.expect("connecting to the local Docker engine");
    assert!(
        runtime.client().inspect_image(IMAGE).await.is_ok(),
        "{IMAGE} is missing: build it with deploy/images/build.sh"
    );
    let id: u32 = rand::random();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("models");
    let other = dir.path().join("ungranted");
    let f = Fixture {
        runtime: runtime.clone(),
        cluster: format!("test-{id:08x}"),
        workload: format!("inst-{id:08x}"),
        _dir: dir,
        root: root.clone(),
        other: other.clone(),
    };
    artifact(&root.join("good"), SERVER);
    artifact(&root.join("empty"), MISSING);
    artifact(&f.other.join("m"), SERVER);
    symlink("/etc", root.join("evil")).unwrap();

    let f = Arc::new(f);
    let outcome = tokio::spawn(steps(f.clone(), runtime)).await;
    // Whatever happened, nothing of the test stays on the engine.
    f.cleanup().await;
    assert!(f.pods().await.is_empty());
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn steps(f: Arc<Fixture>, runtime: DockerRuntime) {
    let rec = Arc::new(Recorder::default());
    let latest = Arc::new(Scripted::default());
    let env = Arc::new(ServingEnv {
        runtime: Arc::new(runtime.clone()),
        storage: Storage::default(),
        cluster: f.cluster.clone(),
        node_id: "n1".into(),
        publish_ip: "127.0.0.1".parse::<IpAddr>().unwrap(),
        command: vec!["python3".into(), "/mnt/models/server.py".into()],
        hardening: HardeningConfig::default(),
        probe_interval: Duration::from_millis(200),
        reports: rec.clone(),
        latest: latest.clone(),
    });
    let good = pod("p1", &format!("file://{}/good", f.root.display()));
    let a1 = instance(&f, vec![good.clone()]);
    let (held_tx, held) = watch::channel::<Held>((1, a1));
    let (control_tx, control) = watch::channel(Control::Run);
    let task = tokio::spawn(run_instance(env, held, control));

    // Started, hardened, on its own network, published and ready.
    until_pods(&rec, "p1 ready", |p| p.get("p1").is_some_and(|s| s.ready)).await;
    let c1 = f.container_of("p1").await.expect("p1's container");
    let applied = runtime.inspect_hardening(&c1.id).await.unwrap();
    assert!(applied.init);
    assert_eq!(applied.security_opt, ["no-new-privileges:true"]);
    assert_eq!(applied.cap_drop, ["ALL"]);
    assert!(applied.cap_add.is_empty());
    assert!(applied.pids_limit.is_some());
    assert_eq!(applied.user, "1000:1000", "never root");
    assert!(applied.read_only_rootfs);
    assert!(applied.tmpfs.contains(&"/tmp".to_string()));
    assert_eq!(applied.network_mode, format!("gantry-{}-{}", f.cluster, f.workload), "never the default bridge");
    assert_eq!(applied.mount_sources, [f.root.join("good").display().to_string()]);
    let limits = runtime.inspect_limits(&c1.id).await.unwrap();
    assert_eq!((limits.nano_cpus, limits.memory_bytes), (500_000_000, 128 << 20));
    let status = http_status(good.host_port, "/v2/health/ready").await.unwrap();
    assert!(status.starts_with("HTTP/1.") && status.contains(" 200"), "{status}");

    // Killed: replaced by a new container, ready again.
    runtime
        .client()
        .kill_container(c1.id.as_str(), None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .unwrap();
    until_pods(&rec, "p1 not ready after the kill", |p| p.get("p1").is_some_and(|s| !s.ready)).await;
    until_pods(&rec, "p1 ready again", |p| p.get("p1").is_some_and(|s| s.ready && !s.failed)).await;
    let c2 = f.container_of("p1").await.expect("p1's new container");
    assert_ne!(c2.id, c1.id, "a new container");

    // Artifacts that must never be mounted, and one the server cannot load.
    let attacks = [
        pod("link", &format!("file://{}/evil", f.root.display())),
        pod("dotdot", &format!("file://{}/good/../../../../etc", f.root.display())),
        pod("ungranted", &format!("file://{}/m", f.other.display())),
    ];
    let missing = pod("p5", &format!("file://{}/empty", f.root.display()));
    let mut pods = vec![good.clone(), missing.clone()];
    pods.extend(attacks.iter().cloned());
    held_tx.send_replace((2, instance(&f, pods)));
    let names: Vec<String> = attacks.iter().map(|p| p.pod_id.clone()).collect();
    until_pods(&rec, "attacks and the missing artifact failed", |p| {
        names.iter().chain([&missing.pod_id]).all(|n| p.get(n).is_some_and(|s| s.failed))
    })
    .await;
    let states = rec.pods.borrow().clone();
    for n in &names {
        assert!(states[n].reason.contains("artifact_path"), "{n}: {}", states[n].reason);
        assert!(!states[n].ready);
    }
    let reason = &states["p5"].reason;
    assert!(reason.contains("no model file in /mnt/models (expected model.onnx)"), "{reason}");
    assert!(reason.contains("artifact_path"), "{reason}");
    until("p5's container removed", || async { f.container_of("p5").await.is_none() }).await;
    for n in &names {
        assert!(f.container_of(n).await.is_none(), "{n}: a container was created");
    }
    assert!(states["p1"].ready, "the good pod is unaffected");

    // p1 leaves the set, but a lagging answer still lists it: kept until confirmed.
    held_tx.send_replace((3, instance(&f, vec![missing.clone()])));
    *latest.set.lock().unwrap() = (3, vec![instance(&f, vec![good.clone(), missing.clone()])]);
    let mut reads = latest.reads.subscribe();
    let before = *reads.borrow_and_update();
    tokio::time::timeout(DEADLINE, reads.wait_for(|n| *n >= before + 2)).await.expect("confirmation reads").unwrap();
    assert!(f.container_of("p1").await.is_some(), "removed on an unconfirmed absence");
    *latest.set.lock().unwrap() = (3, vec![instance(&f, vec![missing.clone()])]);
    until("p1 removed once confirmed", || async { f.container_of("p1").await.is_none() }).await;

    // Released: every pod goes, GONE is reported, the network goes with its last pod.
    held_tx.send_replace((4, instance(&f, vec![good.clone()])));
    *latest.set.lock().unwrap() = (4, vec![instance(&f, vec![good.clone()])]);
    until("p1 back", || async { f.container_of("p1").await.is_some() }).await;
    control_tx.send_replace(Control::Release);
    let ended = tokio::time::timeout(DEADLINE, task).await.expect("the controller ends").unwrap();
    assert_eq!(ended, Ended::Released);
    assert_eq!(*rec.phases.lock().unwrap(), ["GONE"]);
    assert!(f.pods().await.is_empty(), "pods left after the release");
    let networks = runtime.list_networks(&f.selector()).await.unwrap();
    assert!(networks.is_empty(), "{networks:?}");
}
