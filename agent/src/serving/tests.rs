use super::*;
use crate::runtime::UserId;

fn pod() -> ServingPod {
    ServingPod {
        pod_id: "r1-g1-0".into(),
        resource_id: "r1".into(),
        model: "mnist".into(),
        framework: "PYTORCH".into(),
        artifact_path: "file:///data/models/mnist".into(),
        image: "gantry/serve-torch:1".into(),
        host_port: 31005,
        cpu_millis: 500,
        memory_mib: 256,
    }
}

fn site<'a>(gpus: &'a [String], command: &'a [String], hardening: &'a HardeningConfig) -> PodSite<'a> {
    PodSite {
        cluster: "c",
        node_id: "n1",
        workload_id: "w7",
        rank: 0,
        gpu_uuids: gpus,
        publish_ip: "10.0.0.5".parse().unwrap(),
        command,
        hardening,
    }
}

#[test]
fn a_pod_serves_its_artifact_read_only_on_its_host_port() {
    let gpus = vec!["GPU-a".to_string()];
    let command = vec!["gantry-serve".to_string()];
    let hardening = HardeningConfig::default();
    let s = pod_spec(&pod(), "/data/models/mnist", &site(&gpus, &command, &hardening));
    assert_eq!(s.validate(), Ok(()));
    assert_eq!(s.name, "gantry-c-pod-r1-g1-0");
    assert_eq!(s.image, "gantry/serve-torch:1");
    assert_eq!(s.cmd, command);
    assert_eq!((s.nano_cpus, s.memory_bytes), (500_000_000, 256 << 20), "the pod's own share");
    assert_eq!(s.gpu_uuids, gpus, "the instance's GPUs");
    assert_eq!(
        s.mounts,
        [BindMount { host_path: "/data/models/mnist".into(), container_path: "/mnt/models".into(), read_only: true }]
    );
    let env: std::collections::BTreeMap<_, _> = s.env.iter().cloned().collect();
    assert_eq!(env["GANTRY_MODEL_NAME"], "mnist");
    assert_eq!(env["GANTRY_MODEL_FRAMEWORK"], "PYTORCH");
    assert_eq!(env["GANTRY_MODEL_DIR"], "/mnt/models");
    assert_eq!(env["GANTRY_PORT"], "8080");
    assert_eq!(s.labels[labels::CLUSTER], "c");
    assert_eq!(s.labels[labels::NODE], "n1");
    assert_eq!(s.labels[labels::WORKLOAD], "w7");
    assert_eq!(s.labels[labels::RANK], "0");
    assert_eq!(s.labels[labels::POD], "r1-g1-0");
    assert_eq!(
        s.network,
        Network::Published {
            name: "gantry-c-w7".into(),
            ports: vec![PublishedPort { host_ip: "10.0.0.5".parse().unwrap(), host_port: 31005, container_port: 8080 }],
        }
    );
}

#[test]
fn a_pod_is_hardened_as_a_training() {
    let hardening = HardeningConfig { pids_limit: 99, ..HardeningConfig::default() };
    let s = pod_spec(&pod(), "/m", &site(&[], &["x".to_string()], &hardening));
    assert_eq!(s.hardening, training_hardening(&hardening));
    assert_eq!(s.hardening.user, Some(UserId { uid: 1000, gid: 1000 }), "never root");
    assert!(s.hardening.read_only_rootfs);
    assert!(s.hardening.cap_add.is_empty());
    assert!(s.hardening.tmpfs.iter().any(|t| t.container_path == "/tmp"));
    assert_eq!(s.hardening.pids_limit, 99);
}

#[test]
fn container_names_are_engine_safe_and_distinct() {
    assert_eq!(pod_container_name("c", "r1-g2-3"), "gantry-c-pod-r1-g2-3");
    let odd = pod_container_name("c", "r1/g2 3");
    assert!(odd.starts_with("gantry-c-pod-r1-g2-3-"), "{odd}");
    assert!(odd.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{odd}");
    assert_ne!(odd, pod_container_name("c", "r1 g2/3"), "two ids that sanitise alike stay apart");
    assert_ne!(pod_container_name("c", ""), "gantry-c-pod-");
}

#[test]
fn pods_publish_on_the_registered_address_or_every_address() {
    assert_eq!(publish_ip("10.0.0.5"), "10.0.0.5".parse::<IpAddr>().unwrap());
    assert_eq!(publish_ip("127.0.0.1"), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(publish_ip("[fd00::5]"), "fd00::5".parse::<IpAddr>().unwrap());
    assert_eq!(publish_ip("0.0.0.0"), "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(publish_ip("::"), "::".parse::<IpAddr>().unwrap());
    assert_eq!(publish_ip("gpu-01.lan"), "0.0.0.0".parse::<IpAddr>().unwrap(), "a name binds every address");
    assert_eq!(publish_ip(""), "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(probe_ip("0.0.0.0".parse().unwrap()), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(probe_ip("::".parse().unwrap()), "::1".parse::<IpAddr>().unwrap());
    assert_eq!(probe_ip("10.0.0.5".parse().unwrap()), "10.0.0.5".parse::<IpAddr>().unwrap());
}
