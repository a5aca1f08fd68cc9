//! [`ContainerSpec`] → Docker's create request (pure, so its shape is unit-tested).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceRequest, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType,
    NetworkingConfig, PortBinding, PortMap,
};

use crate::runtime::hardening::{Hardening, NO_NEW_PRIVILEGES, TmpfsMount};
use crate::runtime::spec::{ContainerSpec, GpuMode, Network};

/// Docker's own copy of a container's output, which the agent reads into its log store.
/// `docker logs --follow` can drop or repeat lines when the engine rotates the file under
/// it, so Gantry's containers rotate late (an engine default such as 10 MiB is reached
/// in seconds by a chatty training); the agent's store keeps the durable, rotated copy.
const ENGINE_LOG_MAX_SIZE: &str = "512m";
const ENGINE_LOG_MAX_FILES: &str = "2";

/// The `/containers/create` body for `spec` on a node whose GPUs reach containers per
/// `gpu_mode`.
pub(super) fn create_body(spec: &ContainerSpec, gpu_mode: GpuMode) -> ContainerCreateBody {
    let (entrypoint, cmd) = match spec.cmd.split_first() {
        Some((program, args)) => (vec![program.clone()], args.to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.container_path.clone()),
            source: Some(m.host_path.clone()),
            typ: Some(MountType::BIND),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    let device_requests = match gpu_mode {
        GpuMode::Nvidia if !spec.gpu_uuids.is_empty() => Some(vec![DeviceRequest {
            driver: Some("nvidia".into()),
            device_ids: Some(spec.gpu_uuids.clone()),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]),
        _ => None,
    };
    let limited = |v: i64| (v > 0).then_some(v);
    let h = &spec.hardening;
    let (network_mode, networking_config) = network(&spec.network);
    let published = spec.network.published();
    // Docker keys ports as "8080/tcp"; one binding per published host port.
    let mut port_bindings: PortMap = HashMap::new();
    for p in published {
        let binding = PortBinding { host_ip: Some(p.host_ip.to_string()), host_port: Some(p.host_port.to_string()) };
        port_bindings
            .entry(format!("{}/tcp", p.container_port))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
    let host_config = HostConfig {
        nano_cpus: limited(spec.nano_cpus),
        memory: limited(spec.memory_bytes),
        // Swap equal to the limit means no swap: a training over its memory is
        // OOM-killed at once instead of slowing the whole node down.
        memory_swap: limited(spec.memory_bytes),
        device_requests,
        mounts: Some(mounts),
        network_mode: Some(network_mode),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        shm_size: spec.shm_bytes,
        // What no spec can change (see `runtime::hardening::ALWAYS`).
        init: Some(true),
        security_opt: Some(vec![NO_NEW_PRIVILEGES.to_string()]),
        cap_drop: Some(vec!["ALL".to_string()]),
        cap_add: Some(h.cap_add.iter().map(|c| c.engine_name().to_string()).collect()),
        privileged: Some(false),
        // Explicit rather than the daemon's default, which an operator may set to
        // "shareable" or "host".
        ipc_mode: Some("private".into()),
        pid_mode: Some(String::new()),
        pids_limit: Some(h.pids_limit),
        readonly_rootfs: Some(h.read_only_rootfs),
        tmpfs: Some(h.tmpfs.iter().map(|t| (t.container_path.clone(), tmpfs_options(t))).collect()),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_string(), ENGINE_LOG_MAX_SIZE.to_string()),
                ("max-file".to_string(), ENGINE_LOG_MAX_FILES.to_string()),
            ])),
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        // The spec's argv replaces the image's entrypoint and command entirely.
        entrypoint: Some(entrypoint),
        cmd: Some(cmd),
        env: Some(spec.effective_env().into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.effective_labels().into_iter().collect()),
        hostname: spec.hostname.clone(),
        working_dir: spec.working_dir.clone(),
        user: user(h),
        host_config: Some(host_config),
        networking_config,
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        ..Default::default()
    }
}

fn user(h: &Hardening) -> Option<String> {
    h.user.map(|u| u.to_string())
}

/// `HostConfig.NetworkMode` and, for a workload network, the container's endpoint
/// (its DNS aliases there).
fn network(network: &Network) -> (String, Option<NetworkingConfig>) {
    match network {
        Network::None => ("none".into(), None),
        Network::HostForMultiNodeGang => ("host".into(), None),
        Network::Workload { name, aliases } => {
            let endpoint = EndpointSettings { aliases: Some(aliases.clone()), ..Default::default() };
            let config = NetworkingConfig { endpoints_config: Some(HashMap::from([(name.clone(), endpoint)])) };
            (name.clone(), Some(config))
        }
        Network::Published { name, .. } => {
            let config = NetworkingConfig {
                endpoints_config: Some(HashMap::from([(name.clone(), EndpointSettings::default())])),
            };
            (name.clone(), Some(config))
        }
    }
}

/// Docker's tmpfs option string. `nosuid,nodev`: nothing on it can raise privileges
/// or reach a device; exec stays allowed (compilers and JITs write code to /tmp).
fn tmpfs_options(t: &TmpfsMount) -> String {
    let mut options = vec!["rw".to_string(), "nosuid".into(), "nodev".into(), format!("mode={:o}", t.mode)];
    if t.size_bytes > 0 {
        options.push(format!("size={}", t.size_bytes));
    }
    if let Some(owner) = t.owner {
        options.push(format!("uid={}", owner.uid));
        options.push(format!("gid={}", owner.gid));
    }
    options.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::hardening::{Capability, UserId};
    use crate::runtime::spec::BindMount;

    fn gpu_spec() -> ContainerSpec {
        let mut s = ContainerSpec::new("t-0", "img", vec!["sh".into(), "-c".into(), "exit 0".into()])
            .with_resources(2000, 1024);
        s.gpu_uuids = vec!["GPU-1".into(), "GPU-2".into()];
        s.mounts =
            vec![BindMount { host_path: "/h/src".into(), container_path: "/gantry/source".into(), read_only: true }];
        s.hostname = Some("t-0".into());
        s
    }

    #[test]
    fn nvidia_mode_requests_the_exact_gpus() {
        let body = create_body(&gpu_spec(), GpuMode::Nvidia);
        let hc = body.host_config.unwrap();
        let req = &hc.device_requests.unwrap()[0];
        assert_eq!(req.driver.as_deref(), Some("nvidia"));
        assert_eq!(req.device_ids.as_deref(), Some(&["GPU-1".to_string(), "GPU-2".to_string()][..]));
        assert_eq!(req.capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert_eq!(req.count, None, "a count would let the runtime pick other GPUs");
        assert_eq!(hc.nano_cpus, Some(2_000_000_000));
        assert_eq!(hc.memory, Some(1024 * 1024 * 1024));
        assert!(body.env.unwrap().contains(&"NVIDIA_VISIBLE_DEVICES=GPU-1,GPU-2".to_string()));
        assert_eq!(body.labels.unwrap()["org.gantry.gpus"], "GPU-1,GPU-2");
    }

    #[test]
    fn fake_mode_records_gpus_without_a_device_request() {
        let body = create_body(&gpu_spec(), GpuMode::FakeLabelsOnly);
        assert_eq!(body.host_config.unwrap().device_requests, None);
        assert!(body.env.unwrap().contains(&"NVIDIA_VISIBLE_DEVICES=GPU-1,GPU-2".to_string()));
        assert_eq!(body.labels.unwrap()["org.gantry.gpus"], "GPU-1,GPU-2");
    }

    #[test]
    fn argv_replaces_entrypoint_and_mounts_are_binds() {
        let body = create_body(&gpu_spec(), GpuMode::Nvidia);
        assert_eq!(body.entrypoint, Some(vec!["sh".to_string()]));
        assert_eq!(body.cmd, Some(vec!["-c".to_string(), "exit 0".to_string()]));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.binds, None);
        let m = &hc.mounts.unwrap()[0];
        assert_eq!((m.typ, m.read_only), (Some(MountType::BIND), Some(true)));
        assert_eq!((m.source.as_deref(), m.target.as_deref()), (Some("/h/src"), Some("/gantry/source")));
    }

    #[test]
    fn every_container_is_hardened_whatever_its_spec() {
        let body = create_body(&ContainerSpec::new("t-0", "img", vec!["sh".into()]), GpuMode::Nvidia);
        let hc = body.host_config.unwrap();
        assert_eq!(hc.init, Some(true));
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_string()]));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(hc.cap_add, Some(vec![]));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!((hc.ipc_mode.as_deref(), hc.pid_mode.as_deref()), (Some("private"), Some("")));
        assert_eq!(hc.pids_limit, Some(crate::runtime::hardening::DEFAULT_PIDS_LIMIT));
        assert_eq!(hc.readonly_rootfs, Some(false));
        assert_eq!(hc.network_mode.as_deref(), Some("none"), "never the default bridge");
        assert_eq!((body.user, body.networking_config), (None, None));
    }

    #[test]
    fn the_spec_hardening_reaches_the_engine() {
        let mut s = gpu_spec();
        let user = UserId { uid: 1000, gid: 1001 };
        s.hardening = Hardening {
            user: Some(user),
            read_only_rootfs: true,
            tmpfs: vec![
                TmpfsMount { container_path: "/tmp".into(), size_bytes: 0, mode: 0o1777, owner: None },
                TmpfsMount { container_path: "/home/x".into(), size_bytes: 1 << 20, mode: 0o700, owner: Some(user) },
            ],
            pids_limit: 77,
            cap_add: vec![Capability::Chown, Capability::NetBindService],
        };
        s.network = Network::Workload { name: "gantry-c-w".into(), aliases: vec!["t-0".into()] };
        let body = create_body(&s, GpuMode::Nvidia);
        assert_eq!(body.user.as_deref(), Some("1000:1001"));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["gantry-c-w"].aliases, Some(vec!["t-0".to_string()]));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("gantry-c-w"));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.pids_limit, Some(77));
        assert_eq!(hc.cap_add, Some(vec!["CAP_CHOWN".to_string(), "CAP_NET_BIND_SERVICE".to_string()]));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]), "adding some never stops dropping all");
        let tmpfs = hc.tmpfs.unwrap();
        assert_eq!(tmpfs["/tmp"], "rw,nosuid,nodev,mode=1777");
        assert_eq!(tmpfs["/home/x"], "rw,nosuid,nodev,mode=700,size=1048576,uid=1000,gid=1001");
    }

    #[test]
    fn a_multi_node_gang_uses_the_host_network() {
        let mut s = ContainerSpec::new("t-0", "img", vec!["sh".into()]);
        s.network = Network::HostForMultiNodeGang;
        let body = create_body(&s, GpuMode::Nvidia);
        assert_eq!(body.host_config.unwrap().network_mode.as_deref(), Some("host"));
        assert_eq!(body.networking_config, None);
    }

    #[test]
    fn a_published_port_is_bound_on_the_given_address_of_the_own_bridge() {
        let mut s = ContainerSpec::new("p-0", "img", vec!["serve".into()]);
        let ip: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        s.network = Network::Published {
            name: "gantry-c-w".into(),
            ports: vec![crate::runtime::spec::PublishedPort { host_ip: ip, host_port: 31001, container_port: 8080 }],
        };
        let body = create_body(&s, GpuMode::Nvidia);
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));
        assert!(body.networking_config.unwrap().endpoints_config.unwrap().contains_key("gantry-c-w"));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("gantry-c-w"), "never the default bridge");
        let bindings = hc.port_bindings.unwrap()["8080/tcp"].clone().unwrap();
        assert_eq!(bindings, [PortBinding { host_ip: Some("10.0.0.5".into()), host_port: Some("31001".into()) }]);
    }

    #[test]
    fn zero_limits_mean_unlimited() {
        let body = create_body(&ContainerSpec::new("t-0", "img", vec!["sh".into()]), GpuMode::Nvidia);
        let hc = body.host_config.unwrap();
        assert_eq!((hc.nano_cpus, hc.memory, hc.memory_swap, hc.device_requests), (None, None, None, None));
    }
}
