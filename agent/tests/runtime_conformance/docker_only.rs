//! Behaviour only the real engine can show: processes, signals, mounts, the
//! launcher inside a container.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use gantry_agent::contract::{self, ContractInput, HostDirs};
use gantry_agent::runtime::{ContainerId, ContainerRuntime, ContainerSpec, LogLine, LogStream};
use gantry_domain::{Algorithm, Dataset, Hyperparameter, StoragePath, TrainingSpec};

use crate::docker_harness::DockerHarness;
use crate::suite::{Harness, within};

async fn run_to_end(h: &DockerHarness, spec: &ContainerSpec) -> (i64, Vec<LogLine>) {
    let id = h.runtime.create_and_start(spec).await.expect("start");
    let code = within("wait", h.runtime.wait(&id)).await.expect("wait");
    let logs = within("logs", h.runtime.logs(&id, false).try_collect::<Vec<_>>()).await.expect("logs");
    (code, logs)
}

fn text(logs: &[LogLine], stream: LogStream) -> Vec<String> {
    logs.iter().filter(|l| l.stream == stream).map(|l| l.line.clone()).collect()
}

#[tokio::test]
async fn following_logs_streams_while_running_and_keeps_streams_apart() {
    let h = DockerHarness::new().await;
    let spec = h.shell(&h.name("follow"), "echo first; echo oops >&2; sleep 2; echo second");
    let id = h.runtime.create_and_start(&spec).await.unwrap();
    let logs = within("follow", h.runtime.logs(&id, true).try_collect::<Vec<_>>()).await.unwrap();
    assert_eq!(text(&logs, LogStream::Stdout), ["first", "second"]);
    assert_eq!(text(&logs, LogStream::Stderr), ["oops"]);
    h.cleanup().await;
}

#[tokio::test]
async fn stop_kills_a_process_that_ignores_sigterm_after_the_grace() {
    let h = DockerHarness::new().await;
    let spec = h.shell(&h.name("stubborn"), "trap '' TERM; echo ignoring; while :; do sleep 1 & wait $!; done");
    let id = h.runtime.create_and_start(&spec).await.unwrap();
    // The shell is not PID 1 (the init is), so a SIGTERM before the trap is set would
    // end it: stop only once it ignores the signal.
    within("the trap set", async {
        loop {
            let logs = h.runtime.logs(&id, false).try_collect::<Vec<_>>().await.unwrap();
            if text(&logs, LogStream::Stdout).iter().any(|l| l == "ignoring") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let started = std::time::Instant::now();
    within("stop", h.runtime.stop(&id, Duration::from_secs(1))).await.unwrap();
    assert_eq!(within("wait", h.runtime.wait(&id)).await, Ok(137), "SIGKILL after the grace period");
    assert!(started.elapsed() >= Duration::from_secs(1));
    h.cleanup().await;
}

#[tokio::test]
async fn fake_gpus_reach_the_container_as_env_and_cpu_work_sees_void() {
    let h = DockerHarness::new().await;
    let mut spec = h.shell(&h.name("gpu"), r#"echo "$NVIDIA_VISIBLE_DEVICES"; cat /etc/hostname"#);
    spec.gpu_uuids = vec!["GPU-aaaa".into(), "GPU-bbbb".into()];
    spec.hostname = Some("trainer-0".into());
    let (code, logs) = run_to_end(&h, &spec).await;
    assert_eq!(
        (code, text(&logs, LogStream::Stdout)),
        (0, vec!["GPU-aaaa,GPU-bbbb".to_string(), "trainer-0".to_string()])
    );

    let spec = h.shell(&h.name("cpu"), r#"echo "$NVIDIA_VISIBLE_DEVICES""#);
    let (_, logs) = run_to_end(&h, &spec).await;
    assert_eq!(text(&logs, LogStream::Stdout), ["void"]);
    h.cleanup().await;
}

struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(entry_point: bool, requirements: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["src", "ds/train", "model", "ckpt", "tb"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        if entry_point {
            std::fs::write(dir.path().join("src/train.py"), "print('trained')\n").unwrap();
        }
        if requirements {
            std::fs::write(dir.path().join("src/requirements.txt"), "numpy==2.0\n").unwrap();
        }
        std::fs::write(dir.path().join("ds/train/data.csv"), "a,b\n").unwrap();
        Workdir { dir }
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).display().to_string()
    }

    fn host_dirs(&self) -> HostDirs {
        HostDirs {
            source: self.path("src"),
            datasets: BTreeMap::from([("train".to_string(), self.path("ds/train"))]),
            model: self.path("model"),
            checkpoint_input: None,
            checkpoint_output: self.path("ckpt"),
            tensorboard: self.path("tb"),
            wheels: None,
            packages: None,
        }
    }
}

fn training() -> TrainingSpec {
    let file = |p: &str| StoragePath::File { path: p.into() };
    TrainingSpec {
        name: "e2e".into(),
        description: String::new(),
        tags: vec![],
        experiment: "exp".into(),
        create_experiment: false,
        algorithm: Algorithm::Own { path: file("/algo"), entry_point: "train.py".into() },
        hyperparameters: vec![
            Hyperparameter { key: "epochs".into(), value: "3".into() },
            Hyperparameter { key: "note".into(), value: "two words".into() },
        ],
        image: "python".into(),
        instance_type: "m1".into(),
        instance_count: 1,
        nproc_per_node: 1,
        use_torchrun: false,
        datasets: vec![Dataset { name: "train".into(), path: file("/data") }],
        checkpoint_input_path: None,
        output_path: file("/out"),
        checkpoint_output_path: None,
        data_storage_size_gb: 0,
        timeout_minutes: 60,
        use_log: true,
    }
}

/// The contract's output, run by the real engine with the test image's stand-in
/// `python3`.
fn launch_spec(h: &DockerHarness, name: &str, work: &Workdir, extra_env: &[(&str, &str)]) -> ContainerSpec {
    let spec = training();
    let hostnames = vec![name.to_string()];
    let dirs = work.host_dirs();
    let launch = contract::training_launch(ContractInput {
        spec: &spec,
        rank: 0,
        hostnames: &hostnames,
        ports: &contract::distributed::RendezvousPorts::fixed(1),
        dirs: &dirs,
        region: "local",
        appkey: "proj",
    })
    .unwrap();
    let mut c = ContainerSpec::new(name, &h.image, launch.cmd).with_resources(1000, 128);
    c.env = launch.env;
    c.env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c.mounts = launch.mounts;
    c.working_dir = Some(launch.working_dir);
    c.hostname = Some(launch.hostname);
    c
}

#[tokio::test]
async fn the_launcher_runs_the_entry_point_with_the_easymaker_contract() {
    let h = DockerHarness::new().await;
    let work = Workdir::new(true, false);
    let (code, logs) = run_to_end(&h, &launch_spec(&h, &h.name("launch"), &work, &[])).await;
    let out = text(&logs, LogStream::Stdout);
    assert_eq!(code, 0, "{logs:?}");
    for expected in [
        "python3 train.py --epochs 3 --note two words",
        "arg=[two words]",
        "EM_HP_EPOCHS=3",
        r#"EM_HPS={"epochs":"3","note":"two words"}"#,
        "EM_DATASET_TRAIN=/gantry/datasets/train",
        "pwd=/gantry/source",
        "a,b",
    ] {
        assert!(out.iter().any(|l| l == expected), "missing {expected:?} in {out:?}");
    }
    assert!(!out.iter().any(|l| l == "source is writable"), "the source directory is mounted read-only");
    assert_eq!(
        std::fs::read_to_string(work.dir.path().join("model/model.txt")).unwrap(),
        "done\n",
        "the model directory is writable"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn the_launcher_reports_setup_failures_with_its_own_exit_codes() {
    let h = DockerHarness::new().await;
    let work = Workdir::new(true, true);
    // The stand-in python3 fails every call, including `python3 -m pip install`.
    let (code, logs) = run_to_end(&h, &launch_spec(&h, &h.name("pip"), &work, &[("EXIT_WITH", "1")])).await;
    assert_eq!(code, contract::EXIT_REQUIREMENTS_FAILED);
    assert!(
        text(&logs, LogStream::Stdout)
            .iter()
            .any(|l| l.starts_with("python3 -m pip install --no-index --find-links /gantry/wheels"))
    );
    assert!(text(&logs, LogStream::Stderr).iter().any(|l| l == "gantry: requirements.txt install failed"));

    let work = Workdir::new(false, false);
    let (code, logs) = run_to_end(&h, &launch_spec(&h, &h.name("noentry"), &work, &[])).await;
    assert_eq!(code, contract::EXIT_ENTRY_POINT_MISSING);
    assert!(
        text(&logs, LogStream::Stderr).iter().any(|l| l == "gantry: entry point train.py not found in /gantry/source")
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_failed_start_leaves_no_container() {
    let h = DockerHarness::new().await;
    let name = h.name("nostart");
    // Not a missing program: the init process starts and reports that as exit 127.
    // A tmpfs over a file fails in the runtime, before init runs.
    let mut spec = ContainerSpec::new(&name, &h.image, vec!["/bin/sh".into()]);
    spec.hardening.tmpfs = vec![gantry_agent::runtime::TmpfsMount {
        container_path: "/bin/sh".into(),
        size_bytes: 0,
        mode: 0o755,
        owner: None,
    }];
    let err = h.runtime.create_and_start(&spec).await.unwrap_err();
    assert!(matches!(err, gantry_agent::runtime::RuntimeError::Engine { op: "start", .. }), "{err:?}");
    assert_eq!(
        h.runtime.wait(&ContainerId(name.clone())).await,
        Err(gantry_agent::runtime::RuntimeError::NotFound(name))
    );
    h.cleanup().await;
}

/// What the process inside a container confined as a training sees, and what `docker
/// inspect` says of it (read raw, not through the runtime's own conversion).
#[tokio::test]
async fn a_training_container_is_confined_as_docker_inspect_and_its_process_see_it() {
    use gantry_agent::contract::security::training_hardening;
    use gantry_agent::runtime::{GantryLabels, HardeningConfig, Network, workload_network_name};

    let h = DockerHarness::new().await;
    let name = h.name("confined");
    // The test image has no grep: the shell filters.
    let script = r#"while IFS= read -r l; do case "$l" in Uid:*|CapEff:*|CapPrm:*|NoNewPrivs:*) echo "$l";; esac; done < /proc/self/status
if (echo x > /probe) 2>/dev/null; then echo "root=writable"; else echo "root=read-only"; fi
if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; then echo "socket=present"; else echo "socket=absent"; fi
echo x > /tmp/t && echo "tmp=writable"
echo x > "$HOME/t" && echo "home=writable"
sleep 30"#;
    let mut spec = h.shell(&name, script);
    spec.labels =
        GantryLabels { cluster: h.cluster().into(), node: "n1".into(), workload: "wc".into(), rank: 0 }.to_map();
    let network = workload_network_name(h.cluster(), "wc");
    spec.network = Network::Workload { name: network.clone(), aliases: vec!["wc-0".into()] };
    spec.hardening = training_hardening(&HardeningConfig::default());
    spec.env = vec![("HOME".into(), contract::paths::HOME_DIR.into())];
    let id = h.runtime.create_and_start(&spec).await.unwrap();

    let inspect = h.runtime.client().inspect_container(id.as_str(), None).await.unwrap();
    let hc = inspect.host_config.clone().unwrap();
    assert_eq!(hc.init, Some(true));
    assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_string()]));
    assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
    assert!(hc.cap_add.unwrap_or_default().is_empty());
    assert_eq!(hc.pids_limit, Some(4096));
    assert_eq!(hc.readonly_rootfs, Some(true));
    assert_eq!(hc.privileged, Some(false));
    assert_eq!(hc.network_mode.as_deref(), Some(network.as_str()));
    assert_eq!(inspect.config.as_ref().and_then(|c| c.user.as_deref()), Some("1000:1000"));
    let networks: Vec<String> =
        inspect.network_settings.and_then(|n| n.networks).unwrap_or_default().into_keys().collect();
    assert_eq!(networks, std::slice::from_ref(&network), "not host, not the default bridge");
    let sources: Vec<String> = inspect.mounts.unwrap_or_default().into_iter().filter_map(|m| m.source).collect();
    assert!(!sources.iter().any(|s| s.contains("docker.sock")), "{sources:?}");

    let lines = within("the probe's output", async {
        loop {
            let logs = h.runtime.logs(&id, false).try_collect::<Vec<_>>().await.unwrap();
            let out = text(&logs, LogStream::Stdout);
            if out.iter().any(|l| l.starts_with("home=")) {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let field = |key: &str| {
        lines.iter().find(|l| l.starts_with(key)).map(|l| l[key.len()..].split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(field("Uid:"), Some(vec!["1000"; 4]), "{lines:?}");
    assert_eq!(field("CapEff:"), Some(vec!["0000000000000000"]), "{lines:?}");
    assert_eq!(field("CapPrm:"), Some(vec!["0000000000000000"]), "{lines:?}");
    assert_eq!(field("NoNewPrivs:"), Some(vec!["1"]), "{lines:?}");
    for want in ["root=read-only", "socket=absent", "tmp=writable", "home=writable"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:?}");
    }
    h.cleanup().await;
    let left = h
        .runtime
        .list_networks(&gantry_agent::runtime::LabelSelector::new().with("org.gantry.cluster", h.cluster()))
        .await;
    assert_eq!(left.unwrap(), [], "the network went with its container");
}

/// An agent killed between removing a workload's last container and its network
/// leaves the network behind; the sweep at its next start removes exactly that one.
#[tokio::test]
async fn unused_workload_networks_left_by_a_crash_are_swept() {
    use gantry_agent::runtime::{GantryLabels, LabelSelector, Network, workload_network_name};

    let h = DockerHarness::new().await;
    let mut specs = Vec::new();
    for workload in ["left", "kept"] {
        let mut spec = h.shell(&h.name(workload), "sleep 30");
        spec.labels =
            GantryLabels { cluster: h.cluster().into(), node: "n1".into(), workload: workload.into(), rank: 0 }
                .to_map();
        spec.network = Network::Workload { name: workload_network_name(h.cluster(), workload), aliases: Vec::new() };
        specs.push(spec);
    }
    let left = h.runtime.create_and_start(&specs[0]).await.unwrap();
    h.runtime.create_and_start(&specs[1]).await.unwrap();
    // The crash: the container goes, its network stays (removed behind the runtime).
    let force = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
    h.runtime.client().remove_container(left.as_str(), Some(force)).await.unwrap();
    let mine = LabelSelector::new().with("org.gantry.cluster", h.cluster());
    assert_eq!(h.runtime.list_networks(&mine).await.unwrap().len(), 2);

    let swept = h.runtime.remove_unused_networks(&mine).await.unwrap();
    assert_eq!(swept, [workload_network_name(h.cluster(), "left")]);
    let kept: Vec<String> = h.runtime.list_networks(&mine).await.unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(kept, [workload_network_name(h.cluster(), "kept")], "a network in use is never swept");
    assert!(h.runtime.remove_unused_networks(&mine).await.unwrap().is_empty(), "idempotent");
    h.cleanup().await;
}
