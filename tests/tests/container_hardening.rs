//! Workload containers are confined (issue 8, section 3), seen end to end: a training
//! created through the scheduler and run by a real agent on the machine's Docker
//! engine checks its own confinement from inside, the engine's `docker inspect`
//! agrees, a second training on the node cannot reach it, and the workload network
//! goes away with the last container.

use std::time::Duration;

use gantry_agent::runtime::{ContainerRuntime, LabelSelector, labels, workload_network_name};
use gantry_proto::v1::project_service_client::ProjectServiceClient;
use gantry_proto::v1::{self as pb, SetStorageGrantsRequest, StorageGrants};
use gantry_tests::nodes::{NodeKit, wait_for};
use gantry_tests::{ADMIN_TOKEN, Authorization, SandboxOptions, TEAM_A};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

const RUN: Duration = Duration::from_secs(120);

/// Probes its confinement, writes what it found as its model, then waits for `release`
/// in its `CTL` dataset (so the test can inspect the running container) and exits 0.
const PROBE_SCRIPT: &str = r#"
import json, os, socket, subprocess, threading, time
# Something a neighbour could reach if networks were shared.
server = socket.socket()
server.bind(("0.0.0.0", 8000))
server.listen(4)
threading.Thread(target=lambda: [server.accept() for _ in range(4)], daemon=True).start()
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
try:
    with open("/gantry-probe", "w") as f:
        f.write("x")
    root_writable = True
except OSError:
    root_writable = False
home = os.environ.get("HOME", "")
with open(os.path.join(home, "probe"), "w") as f:
    f.write("home is writable")
with open("/tmp/probe", "w") as f:
    f.write("tmp is writable")
report = {
    "id_u": subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip(),
    "root_writable": root_writable,
    "docker_sock": os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock"),
    "cap_eff": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "home": home,
}
with open(os.path.join(os.environ["EM_CHECKPOINT_DIR"], "step.txt"), "w") as f:
    f.write("1")
with open(os.path.join(os.environ["EM_TENSORBOARD_LOG_DIR"], "events"), "w") as f:
    f.write("e")
with open(os.path.join(os.environ["EM_MODEL_DIR"], "hardening.json"), "w") as f:
    json.dump(report, f)
print("probed", json.dumps(report), flush=True)
print("listening", flush=True)
release = os.path.join(os.environ["EM_DATASET_CTL"], "release")
for _ in range(1200):
    if os.path.exists(release):
        break
    time.sleep(0.1)
print("done", flush=True)
"#;

/// Tries to reach the probe training by its hostname and at its address (`--target`);
/// writes what happened.
const NEIGHBOUR_SCRIPT: &str = r#"
import argparse, json, os, socket
args = argparse.ArgumentParser()
args.add_argument("--target")
target = args.parse_args().target
try:
    name = "resolved " + socket.gethostbyname("probe-0")
except OSError as e:
    name = "unresolved: " + str(e)
try:
    socket.create_connection((target, 8000), timeout=3).close()
    address = "connected"
except OSError as e:
    address = "unreachable: " + str(e)
with open(os.path.join(os.environ["EM_MODEL_DIR"], "neighbour.json"), "w") as f:
    json.dump({"name": name, "address": address}, f)
print(name, address, flush=True)
"#;

/// Grants team-a the kit's storage directory (trainings outside a project's grants are
/// refused at create), through the operator's API.
async fn grant_kit_storage(kit: &NodeKit) -> anyhow::Result<()> {
    let tls = gantry_pki::client_tls_ca_only(kit.sandbox().ca_cert(), "localhost")?;
    let channel = Endpoint::from_shared(format!("https://{}", kit.sandbox().api_addr()))?
        .tls_config(tls)?
        .timeout(Duration::from_secs(30))
        .connect()
        .await?;
    let mut projects = ProjectServiceClient::new(InterceptedService::new(channel, Authorization::bearer(ADMIN_TOKEN)?));
    let root = kit.url("");
    let grants = StorageGrants { read: vec![root.clone()], write: vec![root] };
    projects.set_storage_grants(SetStorageGrantsRequest { project: TEAM_A.into(), grants: Some(grants) }).await?;
    Ok(())
}

fn dataset(name: &str, path: String) -> pb::Dataset {
    pb::Dataset { name: name.into(), path }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_runs_confined_on_its_own_network_and_still_writes_its_model() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    grant_kit_storage(&kit).await?;
    let algo = kit.algorithm("probe", &[("train.py", PROBE_SCRIPT), ("neighbour.py", NEIGHBOUR_SCRIPT)])?;
    let ctl = kit.dir("ctl");
    let mut spec = kit.training("probe", &algo, "train.py");
    spec.datasets = vec![dataset("ctl", kit.url("ctl"))];
    spec.checkpoint_output_path = kit.url("ckpt/probe");
    let probe = kit.create(spec).await?;

    // While it runs: what the engine applied.
    let running = kit.wait_status("probe", "RUNNING", RUN).await?;
    let container = wait_for(RUN, "the probe container listed", || async {
        let listed = kit.containers_of(&probe.id).await?;
        listed.into_iter().next().ok_or_else(|| anyhow::anyhow!("not listed yet"))
    })
    .await?;
    let applied = match kit.docker.inspect_hardening(&container.id).await {
        Ok(a) => a,
        Err(e) => anyhow::bail!("{e}; the training: {:?} ({running:?})", kit.get("probe").await?.status_reason),
    };
    let network = workload_network_name(&kit.cluster, &probe.id);
    assert!(applied.init);
    assert_eq!(applied.security_opt, ["no-new-privileges:true"]);
    assert_eq!(applied.cap_drop, ["ALL"]);
    assert!(applied.cap_add.is_empty(), "{:?}", applied.cap_add);
    assert_eq!(applied.pids_limit, Some(4096));
    assert_eq!(applied.user, "1000:1000");
    assert!(applied.read_only_rootfs);
    assert!(!applied.privileged);
    assert_eq!(applied.network_mode, network);
    assert_eq!(
        applied.networks,
        std::slice::from_ref(&network),
        "its own network, neither host nor the default bridge"
    );
    assert!(!applied.mount_sources.iter().any(|m| m.contains("docker")), "{:?}", applied.mount_sources);

    // A second training on the same node can neither resolve the first nor reach it at
    // its address.
    wait_for(RUN, "the probe listening", || async {
        anyhow::ensure!(kit.logs("probe", false).await?.contains("listening\n"));
        Ok(())
    })
    .await?;
    let inspect = kit.docker.client().inspect_container(container.id.as_str(), None).await?;
    let address = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get(&network).and_then(|e| e.ip_address.clone()))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the probe has no address on {network}"))?;
    let mut neighbour_spec = kit.training("neighbour", &algo, "neighbour.py");
    neighbour_spec.hyperparameters = vec![pb::KeyValue { key: "target".into(), value: address.clone() }];
    let neighbour = kit.create(neighbour_spec).await?;
    kit.wait_status("neighbour", "COMPLETE", RUN).await?;
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kit.dir("out/neighbour").join("neighbour.json"))?)?;
    assert!(seen["name"].as_str().unwrap_or_default().starts_with("unresolved"), "{seen}");
    assert!(seen["address"].as_str().unwrap_or_default().starts_with("unreachable"), "{address}: {seen}");
    assert_ne!(network, workload_network_name(&kit.cluster, &neighbour.id));

    std::fs::write(ctl.join("release"), "")?;
    kit.wait_status("probe", "COMPLETE", RUN).await?;

    // What it saw from inside, saved as its model and uploaded by the agent.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kit.dir("out/probe").join("hardening.json"))?)?;
    assert_eq!(report["id_u"], "1000", "not root: {report}");
    assert_eq!(report["root_writable"], false, "the root filesystem is read-only: {report}");
    assert_eq!(report["docker_sock"], false, "no engine socket: {report}");
    assert_eq!(report["cap_eff"], "0000000000000000", "no capabilities: {report}");
    assert_eq!(report["no_new_privs"], "1", "{report}");
    assert_eq!(report["home"], "/gantry/home");
    assert_eq!(std::fs::read_to_string(kit.dir("ckpt/probe").join("step.txt"))?, "1");

    // The workload networks go with their last container.
    let mine = LabelSelector::new().with(labels::CLUSTER, &kit.cluster);
    wait_for(RUN, "containers and networks removed", || async {
        let left = kit.containers().await?;
        anyhow::ensure!(left.is_empty(), "containers left: {left:?}");
        let networks = kit.docker.list_networks(&mine).await?;
        anyhow::ensure!(networks.is_empty(), "networks left: {networks:?}");
        Ok(())
    })
    .await?;
    kit.finish().await
}

/// Rank 0 listens on `MASTER_PORT`; rank 1 finds it by `MASTER_ADDR` (a name on the
/// workload network) and sends a greeting, which rank 0 saves as its model.
const GANG_SCRIPT: &str = r#"
import os, socket, time
rank, master, port = int(os.environ["RANK"]), os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(60)
    conn, _ = srv.accept()
    greeting = conn.recv(100).decode()
    with open(os.path.join(os.environ["EM_MODEL_DIR"], "greeting.txt"), "w") as f:
        f.write(greeting)
    print("rank 0 got", greeting, flush=True)
else:
    for _ in range(600):
        try:
            with socket.create_connection((master, port), timeout=2) as c:
                c.sendall(f"hello from rank {rank} via {master}".encode())
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit(f"rank {rank} never reached {master}:{port}")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_on_one_node_finds_its_master_by_name_on_its_own_network() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    grant_kit_storage(&kit).await?;
    let algo = kit.algorithm("gang", &[("train.py", GANG_SCRIPT)])?;
    let mut spec = kit.training("gang", &algo, "train.py");
    spec.instance_count = 2;
    kit.create(spec).await?;
    kit.wait_status("gang", "COMPLETE", RUN).await?;
    // On the host's network MASTER_ADDR would be the node's address: the name proves
    // the ranks met on the workload's own network.
    let greeting = std::fs::read_to_string(kit.dir("out/gang").join("greeting.txt"))?;
    assert_eq!(greeting, "hello from rank 1 via gang-0");
    let mine = LabelSelector::new().with(labels::CLUSTER, &kit.cluster);
    wait_for(RUN, "the gang's network removed with its last container", || async {
        let networks = kit.docker.list_networks(&mine).await?;
        anyhow::ensure!(networks.is_empty(), "networks left: {networks:?}");
        Ok(())
    })
    .await?;
    kit.finish().await
}
