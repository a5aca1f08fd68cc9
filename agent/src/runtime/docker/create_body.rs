//! [`ContainerSpec`] → Docker's create request (pure, so its shape is unit-tested).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountType};

use crate::runtime::spec::{ContainerSpec, GpuMode};

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
    let host_config = HostConfig {
        nano_cpus: limited(spec.nano_cpus),
        memory: limited(spec.memory_bytes),
        // Swap equal to the limit means no swap: a training over its memory is
        // OOM-killed at once instead of slowing the whole node down.
        memory_swap: limited(spec.memory_bytes),
        device_requests,
        mounts: Some(mounts),
        network_mode: spec.network.clone(),
        shm_size: spec.shm_bytes,
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
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn zero_limits_mean_unlimited() {
        let body = create_body(&ContainerSpec::new("t-0", "img", vec!["sh".into()]), GpuMode::Nvidia);
        let hc = body.host_config.unwrap();
        assert_eq!((hc.nano_cpus, hc.memory, hc.memory_swap, hc.device_requests), (None, None, None, None));
    }
}
