use std::collections::BTreeMap;

use gantry_domain::{Algorithm, Dataset, Hyperparameter, StoragePath, TrainingSpec};
use serde_json::json;

use super::*;

fn file(path: &str) -> StoragePath {
    StoragePath::File { path: path.into() }
}

fn spec() -> TrainingSpec {
    TrainingSpec {
        name: "mnist".into(),
        description: String::new(),
        tags: vec![],
        experiment: "exp".into(),
        create_experiment: false,
        algorithm: Algorithm::Own { path: file("/algo"), entry_point: "train.py".into() },
        hyperparameters: [("epochs", "10"), ("learning-rate", "0.01"), ("model_version", "v2")]
            .map(|(k, v)| Hyperparameter { key: k.into(), value: v.into() })
            .to_vec(),
        image: "python".into(),
        instance_type: "m1".into(),
        instance_count: 1,
        nproc_per_node: 1,
        use_torchrun: false,
        datasets: vec![
            Dataset { name: "train".into(), path: file("/data/train") },
            Dataset { name: "test-set".into(), path: file("/data/test") },
        ],
        checkpoint_input_path: None,
        output_path: file("/out"),
        checkpoint_output_path: None,
        data_storage_size_gb: 0,
        timeout_minutes: 60,
        use_log: true,
    }
}

fn dirs() -> HostDirs {
    HostDirs {
        source: "/var/lib/gantry/w/src".into(),
        datasets: BTreeMap::from([
            ("train".to_string(), "/var/lib/gantry/w/ds/train".to_string()),
            ("test-set".to_string(), "/var/lib/gantry/w/ds/test-set".to_string()),
        ]),
        model: "/var/lib/gantry/w/model".into(),
        checkpoint_input: None,
        checkpoint_output: "/var/lib/gantry/w/ckpt-out".into(),
        tensorboard: "/var/lib/gantry/w/tb".into(),
        wheels: None,
        packages: None,
    }
}

fn launch(spec: &TrainingSpec, rank: u32, hosts: &[String], dirs: &HostDirs) -> Result<TrainingLaunch, ContractError> {
    let ports = super::distributed::RendezvousPorts::fixed(spec.instance_count);
    training_launch(ContractInput {
        spec,
        rank,
        hostnames: hosts,
        ports: &ports,
        dirs,
        region: "kr1",
        appkey: "proj-1",
    })
}

fn env_map(l: &TrainingLaunch) -> BTreeMap<String, String> {
    l.env.iter().cloned().collect()
}

fn one_host() -> Vec<String> {
    vec!["mnist-0".to_string()]
}

#[test]
fn hyperparameters_become_arguments_in_spec_order() {
    let s = spec();
    assert_eq!(
        python_argv(&s),
        ["python3", "train.py", "--epochs", "10", "--learning-rate", "0.01", "--model_version", "v2"]
    );
    let l = launch(&s, 0, &one_host(), &dirs()).unwrap();
    assert_eq!(&l.cmd[..2], ["sh", "-c"]);
    assert_eq!(l.cmd[2], launcher_script());
    assert_eq!(&l.cmd[3..], ["gantry-launch", "--epochs", "10", "--learning-rate", "0.01", "--model_version", "v2"]);
}

#[test]
fn easymaker_variables_are_all_there() {
    let l = launch(&spec(), 0, &one_host(), &dirs()).unwrap();
    let env = env_map(&l);
    let expected = [
        ("EM_SOURCE_DIR", "/gantry/source"),
        ("EM_ENTRY_POINT", "train.py"),
        ("EM_DATASET_TRAIN", "/gantry/datasets/train"),
        ("EM_DATASET_TEST_SET", "/gantry/datasets/test-set"),
        ("EM_MODEL_DIR", "/gantry/model"),
        ("EM_CHECKPOINT_DIR", "/gantry/checkpoints/output"),
        ("EM_TENSORBOARD_LOG_DIR", "/gantry/tensorboard"),
        ("EM_REGION", "kr1"),
        ("EM_APPKEY", "proj-1"),
        ("EM_HP_EPOCHS", "10"),
        ("EM_HP_LEARNING_RATE", "0.01"),
        ("EM_HP_MODEL_VERSION", "v2"),
        ("PYTHONUNBUFFERED", "1"),
        ("HOME", "/gantry/home"),
    ];
    for (k, v) in expected {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    let hps: serde_json::Value = serde_json::from_str(&env["EM_HPS"]).unwrap();
    assert_eq!(hps, json!({"epochs": "10", "learning-rate": "0.01", "model_version": "v2"}));
    let datasets: serde_json::Value = serde_json::from_str(&env["EM_DATASETS"]).unwrap();
    assert_eq!(datasets, json!({"train": "/gantry/datasets/train", "test-set": "/gantry/datasets/test-set"}));
    assert!(!env.contains_key("EM_CHECKPOINT_INPUT_DIR"), "absent without an input checkpoint");
    assert!(!env.contains_key("PYTHONPATH"), "only when requirements are installed");
    for k in ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "TF_CONFIG", "GANTRY_TORCHRUN_NPROC_PER_NODE"] {
        assert!(!env.contains_key(k), "{k} is only for distributed/torchrun trainings");
    }
    assert_eq!(l.env.len(), env.len(), "no variable is set twice");
    assert!(l.warnings.is_empty());
    assert_eq!((l.working_dir.as_str(), l.hostname.as_str()), ("/gantry/source", "mnist-0"));
}

#[test]
fn mounts_are_read_only_for_inputs_only() {
    let mut s = spec();
    s.checkpoint_input_path = Some(file("/ckpt"));
    let mut d = dirs();
    d.checkpoint_input = Some("/var/lib/gantry/w/ckpt-in".into());
    d.wheels = Some("/var/cache/gantry/wheels/abc".into());
    d.packages = Some("/var/lib/gantry/w/packages".into());
    let l = launch(&s, 0, &one_host(), &d).unwrap();
    let mounts: Vec<(&str, &str, bool)> =
        l.mounts.iter().map(|m| (m.host_path.as_str(), m.container_path.as_str(), m.read_only)).collect();
    assert_eq!(
        mounts,
        [
            ("/var/lib/gantry/w/src", "/gantry/source", true),
            ("/var/lib/gantry/w/ds/train", "/gantry/datasets/train", true),
            ("/var/lib/gantry/w/ds/test-set", "/gantry/datasets/test-set", true),
            ("/var/lib/gantry/w/model", "/gantry/model", false),
            ("/var/lib/gantry/w/ckpt-in", "/gantry/checkpoints/input", true),
            ("/var/lib/gantry/w/ckpt-out", "/gantry/checkpoints/output", false),
            ("/var/lib/gantry/w/tb", "/gantry/tensorboard", false),
            ("/var/cache/gantry/wheels/abc", "/gantry/wheels", true),
            ("/var/lib/gantry/w/packages", "/gantry/packages", false),
        ]
    );
    assert_eq!(env_map(&l)["EM_CHECKPOINT_INPUT_DIR"], "/gantry/checkpoints/input");
    assert_eq!(env_map(&l)["PYTHONPATH"], "/gantry/packages", "installed requirements are importable");
}

#[test]
fn colliding_keys_first_one_wins_and_json_keeps_all() {
    let mut s = spec();
    s.hyperparameters = [("batch-size", "32"), ("batch_size", "64"), ("학습률", "0.1"), ("배치수", "2")]
        .map(|(k, v)| Hyperparameter { key: k.into(), value: v.into() })
        .to_vec();
    let l = launch(&s, 0, &one_host(), &dirs()).unwrap();
    let env = env_map(&l);
    assert_eq!(env["EM_HP_BATCH_SIZE"], "32");
    assert_eq!(env["EM_HP____"], "0.1", "'학습률' and '배치수' both map to ___; the first in order wins");
    let hps: serde_json::Value = serde_json::from_str(&env["EM_HPS"]).unwrap();
    assert_eq!(hps, json!({"batch-size": "32", "batch_size": "64", "학습률": "0.1", "배치수": "2"}));
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("'batch_size'") && l.warnings[0].contains("EM_HP_BATCH_SIZE"));
    assert_eq!(&l.cmd[4..8], ["--batch-size", "32", "--batch_size", "64"]);
}

#[test]
fn distributed_ranks_get_their_own_identity() {
    let mut s = spec();
    s.instance_count = 2;
    let hosts = vec!["mnist-0".to_string(), "mnist-1".to_string()];
    for rank in 0..2 {
        let l = launch(&s, rank, &hosts, &dirs()).unwrap();
        let env = env_map(&l);
        assert_eq!(env["MASTER_ADDR"], "mnist-0");
        assert_eq!(env["MASTER_PORT"], "29500");
        assert_eq!(env["WORLD_SIZE"], "2");
        assert_eq!(env["RANK"], rank.to_string());
        let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"]).unwrap();
        assert_eq!(
            tf,
            json!({"cluster": {"worker": ["mnist-0:2222", "mnist-1:2222"]}, "task": {"type": "worker", "index": rank}})
        );
        assert_eq!(l.hostname, hosts[rank as usize]);
    }
}

#[test]
fn torchrun_is_requested_through_the_environment() {
    let mut s = spec();
    s.use_torchrun = true;
    s.nproc_per_node = 4;
    let l = launch(&s, 0, &one_host(), &dirs()).unwrap();
    assert_eq!(env_map(&l)["GANTRY_TORCHRUN_NPROC_PER_NODE"], "4");
}

#[test]
fn inconsistent_inputs_are_errors() {
    let s = spec();
    assert_eq!(launch(&s, 1, &one_host(), &dirs()), Err(ContractError::RankOutOfRange { rank: 1, instance_count: 1 }));
    assert_eq!(launch(&s, 0, &[], &dirs()), Err(ContractError::HostnameCount { expected: 1, got: 0 }));
    let mut d = dirs();
    d.datasets.remove("train");
    assert_eq!(launch(&s, 0, &one_host(), &d), Err(ContractError::MissingDatasetDir("train".into())));
    let mut s2 = spec();
    s2.checkpoint_input_path = Some(file("/ckpt"));
    assert_eq!(launch(&s2, 0, &one_host(), &dirs()), Err(ContractError::MissingCheckpointInputDir));
}
