//! Gangs across nodes and sick GPUs, on real `gantry-agent` processes and the machine's
//! Docker engine (fake GPU inventories). All agents of a test run on this one machine,
//! so gangs on "several nodes" really share one host network: the strictest case for
//! their ports.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_agent::runtime::{ContainerState, labels};
use gantry_proto::v1::{self as pb, GetNodeRequest};
use gantry_tests::SandboxOptions;
use gantry_tests::nodes::{NodeKit, PYTHON_IMAGE, wait_for};

const RUN: Duration = Duration::from_secs(120);

/// One rank of a gang on the hosts' network: binds `MASTER_PORT` (rank 0) and its own
/// `TF_CONFIG` worker port, holds them until the test releases it, then every rank
/// reports to rank 0 with its gang's name (`--me`): a rank of another gang reaching
/// this master is an error, as is any port already taken.
const GANG_SCRIPT: &str = r#"
import json, os, socket, sys, time
me = sys.argv[sys.argv.index("--me") + 1]
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
master = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
workers = json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"]
release = os.path.join(os.environ["EM_DATASET_CTL"], "release")
deadline = time.time() + 240

def listen(port):
    s = socket.socket()
    s.bind(("0.0.0.0", port))
    s.listen(16)
    return s

server = listen(master[1]) if rank == 0 else None
worker = listen(int(workers[rank].rsplit(":", 1)[1]))
print(f"{me} rank {rank} listening on {master[1]} and {workers[rank]}", flush=True)
while not os.path.exists(release):
    if time.time() > deadline:
        sys.exit("never released")
    time.sleep(0.1)
if rank == 0:
    met = set()
    while len(met) < world - 1:
        conn, _ = server.accept()
        conn.settimeout(10)
        try:
            msg = conn.recv(64).decode()
        except OSError:
            msg = ""
        name, _, r = msg.partition(":")
        if msg and name != me:
            sys.exit(f"rank {r} of {name} reached the master of {me}")
        if name == me:
            met.add(r)
            conn.sendall(b"ok")
        conn.close()
    print(f"{me}: all {world} ranks met", flush=True)
else:
    while True:
        try:
            with socket.create_connection(master, timeout=5) as c:
                c.settimeout(10)
                c.sendall(f"{me}:{rank}".encode())
                if c.recv(2) == b"ok":
                    break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("the master never answered")
        time.sleep(0.2)
    print(f"{me} rank {rank} met its master", flush=True)
"#;

/// Runs until `release` appears in its `CTL` dataset.
const WAIT_SCRIPT: &str = r#"
import os, time
release = os.path.join(os.environ["EM_DATASET_CTL"], "release")
for _ in range(6000):
    if os.path.exists(release):
        break
    time.sleep(0.05)
"#;

async fn catalog(kit: &NodeKit) -> anyhow::Result<()> {
    let mut admin = kit.admin();
    let types = [
        pb::InstanceType { name: "cpu-tiny".into(), cpu_millis: 250, memory_mib: 256, ..Default::default() },
        pb::InstanceType {
            name: "t4x1".into(),
            cpu_millis: 250,
            memory_mib: 256,
            gpu_count: 1,
            gpu_model: "T4".into(),
            core_type: String::new(),
        },
    ];
    for it in types {
        admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it) }).await?;
    }
    let image = pb::Image {
        name: "python311-gpu".into(),
        reference: PYTHON_IMAGE.into(),
        core_type: "GPU".into(),
        framework: "PYTHON".into(),
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    admin.catalog.put_image(pb::PutImageRequest { image: Some(image) }).await?;
    Ok(())
}

fn dataset(name: &str, path: String) -> pb::Dataset {
    pb::Dataset { name: name.into(), path }
}

/// Regression (issue 9): gangs on several nodes used the fixed ports 29500 and 2222 on
/// the hosts' network, so a second gang (or a second rank on one host) failed to bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gangs_sharing_nodes_get_their_own_ports_and_both_complete() -> anyhow::Result<()> {
    // A range of its own, so parallel tests and the machine's services stay clear of it.
    let first = 40_000 + (rand::random::<u16>() % 200) * 100;
    let range = gantry_domain::PortRange { first, last: first + 99 };
    let mut kit = NodeKit::start(SandboxOptions { rendezvous_ports: range, ..SandboxOptions::default() }).await?;
    // Two 250m ranks fit a node: a gang of 3 spans nodes, and two such gangs on three
    // nodes share at least one.
    let resources = "[resources]\ncpu_millis = 500\nmemory_mib = 1024\n";
    for node in ["gang-a", "gang-b", "gang-c"] {
        kit.add_agent(node, resources).await?;
    }
    catalog(&kit).await?;
    let algo = kit.algorithm("gang", &[("gang.py", GANG_SCRIPT)])?;
    let ctl = kit.dir("ctl/gang");
    let mut ids = BTreeMap::new();
    for name in ["gang-one", "gang-two"] {
        let mut spec = kit.training(name, &algo, "gang.py");
        spec.instance_type = "cpu-tiny".into();
        spec.instance_count = 3;
        spec.hyperparameters = vec![pb::KeyValue { key: "me".into(), value: name.into() }];
        spec.datasets = vec![dataset("ctl", kit.url("ctl/gang"))];
        ids.insert(name, kit.create(spec).await?.id);
    }
    for name in ["gang-one", "gang-two"] {
        let t = kit.wait_status(name, "RUNNING", RUN).await?;
        let nodes: std::collections::BTreeSet<&str> = t.assignments.iter().map(|a| a.node_id.as_str()).collect();
        assert!(nodes.len() > 1, "{name} spans nodes: {nodes:?}");
    }

    // Every rank of both gangs holds its ports at the same time before either ends.
    let ports = wait_for(RUN, "six ranks listening on their ports", || {
        let ids = ids.clone();
        let kit = &kit;
        async move {
            let mut master_ports = BTreeMap::new();
            let mut listening = 0;
            for (name, id) in &ids {
                let containers = kit.containers_of(id).await?;
                anyhow::ensure!(containers.len() == 3, "{name}: {} containers", containers.len());
                for c in &containers {
                    anyhow::ensure!(c.state == ContainerState::Running, "{name}: {} is {:?}", c.name, c.state);
                    let inspect = kit.docker.client().inspect_container(&c.name, None).await?;
                    let env: BTreeMap<String, String> = inspect
                        .config
                        .and_then(|c| c.env)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                        .collect();
                    let rank: usize = c.labels[labels::RANK].parse()?;
                    let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"])?;
                    let worker = tf["cluster"]["worker"][rank].as_str().unwrap_or_default().to_string();
                    // Listening: a connection is accepted into the backlog.
                    tokio::net::TcpStream::connect(&worker).await.map_err(|e| anyhow::anyhow!("{worker}: {e}"))?;
                    listening += 1;
                    master_ports.insert(*name, env["MASTER_PORT"].parse::<u16>()?);
                }
            }
            anyhow::ensure!(listening == 6);
            Ok(master_ports)
        }
    })
    .await?;
    std::fs::write(ctl.join("release"), "")?;
    for name in ["gang-one", "gang-two"] {
        kit.wait_status(name, "COMPLETE", RUN).await?;
    }
    assert_ne!(ports["gang-one"], ports["gang-two"]);
    for p in ports.values() {
        assert!((range.first..=range.last).contains(p), "{p} outside {range}");
    }
    kit.finish().await
}

fn fake_gpus(gpus: &[(&str, &str)]) -> String {
    let gpus: Vec<String> = gpus
        .iter()
        .map(|(uuid, extra)| format!("{{ uuid = \"{uuid}\", model = \"T4\", memory_mib = 16384{extra} }}"))
        .collect();
    format!("[docker]\ngpu_mode = \"fake_labels_only\"\n\n[gpu]\nsource = \"fake\"\nfake = [{}]\n", gpus.join(", "))
}

/// Regression (issue 9): a sick GPU was invisible (one bad GPU hid all of them, XIDs
/// were dropped) and placement handed it out like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_gpus_are_shown_with_their_xids_and_never_get_work() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let (good, fell_off, broken) =
        (format!("GPU-ok-{suffix}"), format!("GPU-xid-{suffix}"), format!("GPU-bad-{suffix}"));
    let gpus = fake_gpus(&[
        (good.as_str(), ""),
        (fell_off.as_str(), ", xids = [13, 79]"),
        (broken.as_str(), ", unhealthy = \"nvml temperature failed: GPU is lost\""),
    ]);
    kit.add_agent("sick-gpus", &gpus).await?;
    catalog(&kit).await?;

    let node = wait_for(RUN, "two unhealthy GPUs recorded", || {
        let mut admin = kit.admin();
        async move {
            let n = admin.nodes.get_node(GetNodeRequest { id: "sick-gpus".into(), read: None }).await?.into_inner();
            anyhow::ensure!(n.unhealthy_gpus.len() == 2, "unhealthy: {:?}", n.unhealthy_gpus);
            Ok(n)
        }
    })
    .await?;
    let reasons: BTreeMap<&str, &str> =
        node.unhealthy_gpus.iter().map(|u| (u.uuid.as_str(), u.reason.as_str())).collect();
    assert_eq!(reasons[fell_off.as_str()], "xid 79: GPU has fallen off the bus");
    assert_eq!(reasons[broken.as_str()], "nvml temperature failed: GPU is lost");
    assert_eq!(node.free.map(|f| f.gpus), Some(1), "only the healthy GPU is free");
    let events = node.health.map(|h| h.xid_events).unwrap_or_default();
    let codes: Vec<(u32, &str)> = events.iter().map(|e| (e.xid, e.meaning.as_str())).collect();
    assert_eq!(codes, [(13, "graphics engine exception"), (79, "GPU has fallen off the bus")]);
    assert!(events.iter().all(|e| e.gpu_uuid == fell_off && e.at_ms > 0));

    // Two 1-GPU trainings: the first gets the healthy GPU, the second waits for one.
    let algo = kit.algorithm("gpu-wait", &[("wait.py", WAIT_SCRIPT)])?;
    let ctl = kit.dir("ctl/gpu");
    for name in ["gpu-first", "gpu-second"] {
        let mut spec = kit.training(name, &algo, "wait.py");
        spec.instance_type = "t4x1".into();
        spec.image = "python311-gpu".into();
        spec.datasets = vec![dataset("ctl", kit.url("ctl/gpu"))];
        kit.create(spec).await?;
        if name == "gpu-first" {
            let t = kit.wait_status(name, "RUNNING", RUN).await?;
            assert_eq!(t.assignments[0].gpu_uuids, std::slice::from_ref(&good));
        }
    }
    let pending = wait_for(RUN, "the second training explained as pending", || async {
        let t = kit.get("gpu-second").await?;
        anyhow::ensure!(t.status == "CREATE REQUESTED" && t.status_reason.contains("GPU"), "{t:?}");
        Ok(t)
    })
    .await?;
    assert!(pending.assignments.is_empty());
    std::fs::write(ctl.join("release"), "")?;
    kit.wait_status("gpu-first", "COMPLETE", RUN).await?;
    // Its GPU is free again: the second one runs on it, never on a sick one.
    let t = kit.wait_status("gpu-second", "COMPLETE", RUN).await?;
    assert_eq!(t.assignments[0].gpu_uuids, std::slice::from_ref(&good));
    kit.finish().await
}
