//! Trainings on real nodes: a sandbox scheduler, real `gantry-agent` processes and the
//! machine's Docker engine running `gantry/python:3.11` (built by
//! `deploy/images/build.sh`). Every test uses its own cluster label and removes its
//! containers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_agent::runtime::{ContainerRuntime, ContainerState, labels};
use gantry_proto::v1::{self as pb, GetNodeRequest, KeyValue, StopTrainingRequest};
use gantry_tests::nodes::{NodeKit, wait_for};
use gantry_tests::{SandboxOptions, TEAM_A};

const RUN: Duration = Duration::from_secs(90);

/// Reports what it sees from inside the container, prints metrics and saves a model
/// and a checkpoint.
const CONTRACT_SCRIPT: &str = r#"
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("EM_") or k == "NVIDIA_VISIBLE_DEVICES"}
rows = open(os.path.join(os.environ["EM_DATASET_TRAIN"], "data.csv")).read().split()
start = open(os.path.join(os.environ["EM_CHECKPOINT_INPUT_DIR"], "step.txt")).read().strip()
for epoch in range(3):
    print(f"epoch={epoch} loss={1.0 / (epoch + 1):.3f}", flush=True)
report = {"argv": sys.argv[1:], "env": env, "rows": rows, "start": start, "cwd": os.getcwd()}
with open(os.path.join(os.environ["EM_MODEL_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
with open(os.path.join(os.environ["EM_CHECKPOINT_DIR"], "step.txt"), "w") as f:
    f.write("3")
print("done", flush=True)
"#;

/// Prints numbered lines until `release` appears in its `CTL` dataset.
const WAIT_SCRIPT: &str = r#"
import os, sys, time
release = os.path.join(os.environ.get("EM_DATASET_CTL", "/nonexistent"), "release")
i = 0
while not os.path.exists(release):
    print(f"line {i}", flush=True)
    i += 1
    time.sleep(0.05)
    if i > 20000:
        sys.exit(9)
for _ in range(3):
    print(f"line {i}", flush=True)
    i += 1
"#;

fn hp(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: value.into() }
}

fn dataset(name: &str, path: String) -> pb::Dataset {
    pb::Dataset { name: name.into(), path }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_completes_with_its_model_checkpoints_logs_and_the_easymaker_contract() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("contract", &[("train.py", CONTRACT_SCRIPT)])?;
    std::fs::write(kit.dir("data/train").join("data.csv"), "1\n2\n3\n")?;
    std::fs::write(kit.dir("ckpt/in").join("step.txt"), "7")?;
    let mut spec = kit.training("contract", &algo, "train.py");
    spec.hyperparameters = vec![hp("lr", "0.01"), hp("batch-size", "64"), hp("opt.name", "two words")];
    spec.datasets = vec![dataset("train", kit.url("data/train"))];
    spec.checkpoint_input_path = kit.url("ckpt/in");
    spec.checkpoint_output_path = kit.url("ckpt/out");
    let created = kit.create(spec).await?;
    let t = kit.wait_status("contract", "COMPLETE", RUN).await?;

    let statuses: Vec<&str> = t.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["CREATE REQUESTED", "CREATE IN PROGRESS", "RUNNING", "COMPLETE IN PROGRESS", "COMPLETE"],
        "the guide's lifecycle"
    );
    assert!(t.started_at_ms > 0 && t.ended_at_ms >= t.started_at_ms);

    // The model (with what the script saw) is at the output path, the checkpoint at
    // the checkpoint output path.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kit.dir("out/contract").join("report.json"))?)?;
    assert_eq!(report["argv"], serde_json::json!(["--lr", "0.01", "--batch-size", "64", "--opt.name", "two words"]));
    assert_eq!(report["rows"], serde_json::json!(["1", "2", "3"]));
    assert_eq!(report["start"], "7");
    assert_eq!(report["cwd"], "/gantry/source");
    let env = &report["env"];
    let expect = [
        ("EM_SOURCE_DIR", "/gantry/source"),
        ("EM_ENTRY_POINT", "train.py"),
        ("EM_DATASET_TRAIN", "/gantry/datasets/train"),
        ("EM_MODEL_DIR", "/gantry/model"),
        ("EM_CHECKPOINT_INPUT_DIR", "/gantry/checkpoints/input"),
        ("EM_CHECKPOINT_DIR", "/gantry/checkpoints/output"),
        ("EM_TENSORBOARD_LOG_DIR", "/gantry/tensorboard"),
        ("EM_REGION", "local"),
        ("EM_APPKEY", TEAM_A),
        ("EM_HP_LR", "0.01"),
        ("EM_HP_BATCH_SIZE", "64"),
        ("EM_HP_OPT_NAME", "two words"),
        ("NVIDIA_VISIBLE_DEVICES", "void"),
    ];
    for (var, want) in expect {
        assert_eq!(env[var], want, "{var}");
    }
    let hps: serde_json::Value = serde_json::from_str(env["EM_HPS"].as_str().unwrap_or_default())?;
    assert_eq!(hps, serde_json::json!({"lr": "0.01", "batch-size": "64", "opt.name": "two words"}));
    let datasets: serde_json::Value = serde_json::from_str(env["EM_DATASETS"].as_str().unwrap_or_default())?;
    assert_eq!(datasets, serde_json::json!({"train": "/gantry/datasets/train"}));
    assert_eq!(std::fs::read_to_string(kit.dir("ckpt/out").join("step.txt"))?, "3");

    // Logs outlive the container, which is gone once the end was reported.
    let logs = kit.logs("contract", false).await?;
    assert!(logs.contains("epoch=0 loss=1.000\nepoch=1 loss=0.500\nepoch=2 loss=0.333\n"), "logs: {logs}");
    assert_eq!(kit.logs("contract", true).await?, logs, "following a finished log returns it and ends");
    wait_for(RUN, "the container removed", || async {
        let left = kit.containers_of(&created.id).await?;
        anyhow::ensure!(left.is_empty(), "still there: {left:?}");
        Ok(())
    })
    .await?;
    kit.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_script_a_missing_entry_point_and_a_stop_end_as_the_guide_says() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm(
        "mixed",
        &[("fail.py", "import sys\nprint('bad things happened', flush=True)\nsys.exit(3)\n"), ("wait.py", WAIT_SCRIPT)],
    )?;
    kit.create(kit.training("fails", &algo, "fail.py")).await?;
    kit.create(kit.training("missing", &algo, "nope/train.py")).await?;
    let long = kit.create(kit.training("stopped", &algo, "wait.py")).await?;

    let failed = kit.wait_status("fails", "FAIL TRAIN", RUN).await?;
    assert!(failed.status_reason.starts_with("exit code 3"), "{}", failed.status_reason);
    assert!(failed.status_reason.contains("bad things happened"), "the last lines: {}", failed.status_reason);

    let missing = kit.wait_status("missing", "FAIL TRAIN", RUN).await?;
    assert!(missing.status_reason.contains("nope/train.py"), "names the file: {}", missing.status_reason);

    kit.wait_status("stopped", "RUNNING", RUN).await?;
    let stop = StopTrainingRequest { project: TEAM_A.into(), name: "stopped".into() };
    let stopping = kit.admin().trainings.stop_training(stop).await?.into_inner();
    assert_eq!(stopping.status, "STOP IN PROGRESS");
    kit.wait_status("stopped", "STOPPED", RUN).await?;
    wait_for(RUN, "the stopped container removed", || async {
        let left = kit.containers_of(&long.id).await?;
        anyhow::ensure!(left.is_empty(), "still there: {left:?}");
        Ok(())
    })
    .await?;
    kit.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maximum_training_time_ends_a_training() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("forever", &[("wait.py", WAIT_SCRIPT)])?;
    let mut spec = kit.training("deadline", &algo, "wait.py");
    spec.timeout_minutes = 1;
    let t = kit.create(spec).await?;
    kit.wait_status("deadline", "RUNNING", RUN).await?;
    let ended = kit.wait_status("deadline", "STOPPED", Duration::from_secs(150)).await?;
    assert!(
        ended.history.iter().any(|h| h.reason.contains("maximum training time of 1 minute(s) reached")),
        "{:?}",
        ended.history
    );
    let took = ended.ended_at_ms - ended.created_at_ms;
    assert!(took >= 60_000, "ended after {took} ms, before its minute");
    wait_for(RUN, "the container removed", || async {
        anyhow::ensure!(kit.containers_of(&t.id).await?.is_empty());
        Ok(())
    })
    .await?;
    kit.finish().await
}

/// Every line `line {i}` once, in order, from 0.
fn assert_numbered_lines(logs: &str) -> usize {
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("line ")).collect();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"), "line {i} lost, duplicated or reordered");
    }
    lines.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_training_adopts_its_container_and_the_training_completes() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let agent = kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("adopt", &[("wait.py", WAIT_SCRIPT)])?;
    let ctl = kit.dir("ctl/adopt");
    let mut spec = kit.training("adopt", &algo, "wait.py");
    spec.datasets = vec![dataset("ctl", kit.url("ctl/adopt"))];
    let t = kit.create(spec).await?;
    kit.wait_status("adopt", "RUNNING", RUN).await?;
    wait_for(RUN, "some output", || async {
        anyhow::ensure!(kit.logs("adopt", false).await?.contains("line 20\n"));
        Ok(())
    })
    .await?;

    kit.agent(agent).kill()?;
    let during = kit.containers_of(&t.id).await?;
    assert_eq!(during.len(), 1);
    assert_eq!(during[0].state, ContainerState::Running, "the training keeps running without its agent");
    kit.agent(agent).restart()?;
    kit.wait_node_connected("node-1", agent).await?;
    // Give the restarted agent a reconcile round, then check it adopted rather than
    // started a second container.
    wait_for(RUN, "the log to grow after the restart", || async {
        let logs = kit.logs("adopt", false).await?;
        anyhow::ensure!(assert_numbered_lines(&logs) > 60);
        Ok(())
    })
    .await?;
    let after = kit.containers_of(&t.id).await?;
    assert_eq!(after.len(), 1, "no duplicate container: {after:?}");
    assert_eq!(after[0].id, during[0].id);

    std::fs::write(ctl.join("release"), "")?;
    let done = kit.wait_status("adopt", "COMPLETE", RUN).await?;
    assert_eq!(done.history.iter().filter(|h| h.status == "RUNNING").count(), 1);
    let logs = kit.logs("adopt", false).await?;
    let n = assert_numbered_lines(&logs);
    assert!(n > 60, "{n} lines");
    kit.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_fails_its_training_and_cleans_up_when_it_returns() -> anyhow::Result<()> {
    let mut kit =
        NodeKit::start(SandboxOptions { node_down_after: Duration::from_secs(3), ..SandboxOptions::default() }).await?;
    let agent = kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("lost", &[("wait.py", WAIT_SCRIPT)])?;
    let t = kit.create(kit.training("lost", &algo, "wait.py")).await?;
    kit.wait_status("lost", "RUNNING", RUN).await?;
    kit.agent(agent).kill()?;
    let failed = kit.wait_status("lost", "FAIL TRAIN", RUN).await?;
    assert!(failed.status_reason.contains("node node-1 lost"), "{}", failed.status_reason);
    let node = kit.admin().nodes.get_node(GetNodeRequest { id: "node-1".into(), read: None }).await?.into_inner();
    assert_eq!(node.status, "DOWN");
    assert_eq!(kit.containers_of(&t.id).await?.len(), 1, "the container outlives its agent");

    kit.agent(agent).restart()?;
    kit.wait_node_connected("node-1", agent).await?;
    wait_for(RUN, "the stale container removed", || async {
        anyhow::ensure!(kit.containers_of(&t.id).await?.is_empty());
        Ok(())
    })
    .await?;
    kit.finish().await
}

const GPU_IMAGE: &str = "python311-gpu";

async fn gpu_catalog(kit: &NodeKit) -> anyhow::Result<()> {
    let mut admin = kit.admin();
    for (name, model) in [("t4x1", "T4"), ("a10x1", "A10")] {
        let it = pb::InstanceType {
            name: name.into(),
            cpu_millis: 250,
            memory_mib: 256,
            gpu_count: 1,
            gpu_model: model.into(),
            core_type: String::new(),
        };
        admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it) }).await?;
    }
    let tiny = pb::InstanceType { name: "cpu-tiny".into(), cpu_millis: 250, memory_mib: 256, ..Default::default() };
    admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(tiny) }).await?;
    let image = pb::Image {
        name: GPU_IMAGE.into(),
        reference: gantry_tests::nodes::PYTHON_IMAGE.into(),
        core_type: "GPU".into(),
        framework: "PYTHON".into(),
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    admin.catalog.put_image(pb::PutImageRequest { image: Some(image) }).await?;
    Ok(())
}

fn fake_gpus(prefix: &str, model: &str, n: usize) -> String {
    let gpus: Vec<String> =
        (0..n).map(|i| format!("{{ uuid = \"GPU-{prefix}-{i}\", model = \"{model}\", memory_mib = 16384 }}")).collect();
    format!("[docker]\ngpu_mode = \"fake_labels_only\"\n\n[gpu]\nsource = \"fake\"\nfake = [{}]\n", gpus.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_trainings_land_on_the_node_of_their_model_with_exactly_the_assigned_gpus() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("gpu-t4", &fake_gpus("t4", "T4", 2)).await?;
    kit.add_agent("gpu-a10", &fake_gpus("a10", "A10", 2)).await?;
    gpu_catalog(&kit).await?;
    let algo = kit.algorithm("gpu", &[("wait.py", WAIT_SCRIPT)])?;
    let ctl = kit.dir("ctl/gpu");
    let mut placed = BTreeMap::new();
    for (name, it, node) in [("on-t4", "t4x1", "gpu-t4"), ("on-a10", "a10x1", "gpu-a10")] {
        let mut spec = kit.training(name, &algo, "wait.py");
        spec.instance_type = it.into();
        spec.image = GPU_IMAGE.into();
        spec.datasets = vec![dataset("ctl", kit.url("ctl/gpu"))];
        kit.create(spec).await?;
        let t = kit.wait_status(name, "RUNNING", RUN).await?;
        assert_eq!(t.assignments.len(), 1);
        assert_eq!(t.assignments[0].node_id, node, "{name} on the node with its GPU model");
        assert_eq!(t.assignments[0].gpu_uuids.len(), 1);
        placed.insert(t.id.clone(), (node, t.assignments[0].gpu_uuids[0].clone()));
    }
    for (workload, (node, gpu)) in &placed {
        let containers = kit.containers_of(workload).await?;
        assert_eq!(containers.len(), 1);
        let c = &containers[0];
        assert_eq!(c.labels[labels::NODE], *node);
        assert_eq!(c.labels[labels::GPUS], *gpu, "exactly the assigned GPU");
        let inspect = kit.docker.client().inspect_container(&c.name, None).await?;
        let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
        assert!(env.contains(&format!("NVIDIA_VISIBLE_DEVICES={gpu}")), "{env:?}");
    }
    // Heartbeats carry the node's metrics, including Docker stats of its containers.
    let (workload, (node, _)) = placed.iter().next().map(|(w, n)| (w.clone(), n.clone())).unwrap_or_default();
    wait_for(RUN, "container usage in the node's metrics", || {
        let (mut admin, workload) = (kit.admin(), workload.clone());
        async move {
            let n = admin.nodes.get_node(GetNodeRequest { id: node.into(), read: None }).await?.into_inner();
            let m = n.health.and_then(|h| h.metrics).unwrap_or_default();
            anyhow::ensure!(m.gpu_source == "fake" && m.agent_rss_kib > 0, "metrics: {m:?}");
            let u = m.container_usage.iter().find(|u| u.workload_id == workload);
            anyhow::ensure!(u.is_some_and(|u| u.memory_bytes > 0 && u.memory_limit_bytes == 256 << 20), "{m:?}");
            Ok(())
        }
    })
    .await?;
    std::fs::write(ctl.join("release"), "")?;
    kit.wait_status("on-t4", "COMPLETE", RUN).await?;
    kit.wait_status("on-a10", "COMPLETE", RUN).await?;
    kit.finish().await
}

/// Resources the engine enforces on each node, summed over its running containers.
#[derive(Default, Debug)]
struct NodeUse {
    nano_cpus: i64,
    memory: i64,
    gpus: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_trainings_never_overcommit_a_node() -> anyhow::Result<()> {
    // Each node offers 1 core, 1 GiB and 2 GPUs: four 250m/256Mi containers at a time.
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let resources = "[resources]\ncpu_millis = 1000\nmemory_mib = 1024\n";
    kit.add_agent("node-a", &format!("{}\n{resources}", fake_gpus("a", "T4", 2))).await?;
    kit.add_agent("node-b", &format!("{}\n{resources}", fake_gpus("b", "T4", 2))).await?;
    gpu_catalog(&kit).await?;
    let algo = kit.algorithm("burst", &[("short.py", "import time\ntime.sleep(0.5)\nprint('ok')\n")])?;
    for i in 0..50 {
        let mut spec = kit.training(&format!("burst-{i}"), &algo, "short.py");
        if i % 5 == 0 {
            spec.instance_type = "t4x1".into();
            spec.image = GPU_IMAGE.into();
        } else {
            spec.instance_type = "cpu-tiny".into();
        }
        kit.create(spec).await?;
    }
    let capacity = (1_000_000_000i64, 1024i64 * 1024 * 1024, 2usize);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut max_seen = 0;
    loop {
        // Sample what the engine runs, with the limits it applied.
        let mut per_node: BTreeMap<String, NodeUse> = BTreeMap::new();
        for c in kit.containers().await? {
            if c.state != ContainerState::Running {
                continue;
            }
            let Ok(limits) = kit.docker.inspect_limits(&c.id).await else { continue };
            let u = per_node.entry(c.labels[labels::NODE].clone()).or_default();
            u.nano_cpus += limits.nano_cpus;
            u.memory += limits.memory_bytes;
            if let Some(g) = c.labels.get(labels::GPUS) {
                u.gpus.extend(g.split(',').map(str::to_string));
            }
        }
        for (node, u) in &per_node {
            assert!(u.nano_cpus <= capacity.0, "{node} CPU over-committed: {u:?}");
            assert!(u.memory <= capacity.1, "{node} memory over-committed: {u:?}");
            let mut gpus = u.gpus.clone();
            gpus.sort();
            gpus.dedup();
            assert_eq!(gpus.len(), u.gpus.len(), "{node}: a GPU given twice: {u:?}");
            assert!(gpus.len() <= capacity.2, "{node} GPUs over-committed: {u:?}");
            max_seen = max_seen.max(u.nano_cpus);
        }
        let list = pb::ListTrainingsRequest { project: TEAM_A.into(), experiment: String::new(), read: None };
        let trainings = kit.admin().trainings.list_trainings(list).await?.into_inner().trainings;
        let complete = trainings.iter().filter(|t| t.status == "COMPLETE").count();
        if let Some(bad) = trainings.iter().find(|t| t.status == "FAIL TRAIN") {
            anyhow::bail!("{} failed: {}", bad.spec.as_ref().map(|s| s.name.as_str()).unwrap_or(""), bad.status_reason);
        }
        if complete == 50 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {complete} of 50 complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(max_seen > 250_000_000, "nodes ran several containers at once (max {max_seen} nano CPUs)");
    kit.finish().await
}

/// A minimal pure-Python wheel `gantryprobe-1.0` (module `gantryprobe`, `VALUE =
/// "probe-ok"`) in `dir`: a package index the test controls, with no network.
fn probe_wheel(dir: &std::path::Path) -> anyhow::Result<()> {
    let script = r#"
import sys, zipfile
name, ver = "gantryprobe", "1.0"
di = f"{name}-{ver}.dist-info"
with zipfile.ZipFile(f"{sys.argv[1]}/{name}-{ver}-py3-none-any.whl", "w") as z:
    z.writestr(f"{name}.py", "VALUE = 'probe-ok'\n")
    z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n")
    z.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: gantry-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{di}/RECORD", f"{name}.py,,\n{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n")
"#;
    let status = std::process::Command::new("python3").arg("-c").arg(script).arg(dir).status()?;
    anyhow::ensure!(status.success(), "building the probe wheel failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_are_installed_offline_and_a_failed_install_is_the_reason() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let links = kit.dir("wheelhouse");
    probe_wheel(&links)?;
    // pip runs as nobody on a node whose agent is root: the wheelhouse must be readable.
    for dir in [links.parent().unwrap_or(&links), &links] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    // The node's pip sees only the test's wheelhouse: no network, deterministic.
    let env = vec![
        ("PIP_NO_INDEX".to_string(), "1".to_string()),
        ("PIP_FIND_LINKS".to_string(), links.display().to_string()),
    ];
    kit.add_agent_with_env("node-1", "", env).await?;
    let good = kit.algorithm(
        "with-deps",
        &[
            ("requirements.txt", "gantryprobe==1.0\n"),
            ("train.py", "import gantryprobe\nprint('imported', gantryprobe.VALUE, flush=True)\n"),
        ],
    )?;
    let bad = kit.algorithm(
        "bad-deps",
        &[("requirements.txt", "gantry-no-such-package==9.9\n"), ("train.py", "print('never runs')\n")],
    )?;
    kit.create(kit.training("deps-ok", &good, "train.py")).await?;
    kit.create(kit.training("deps-bad", &bad, "train.py")).await?;
    kit.wait_status("deps-ok", "COMPLETE", RUN).await?;
    let logs = kit.logs("deps-ok", false).await?;
    assert!(logs.contains("imported probe-ok"), "{logs}");
    let failed = kit.wait_status("deps-bad", "FAIL TRAIN", RUN).await?;
    assert!(failed.status_reason.contains("requirements.txt could not be installed"), "{}", failed.status_reason);
    assert!(failed.status_reason.contains("gantry-no-such-package"), "{}", failed.status_reason);
    kit.finish().await
}
