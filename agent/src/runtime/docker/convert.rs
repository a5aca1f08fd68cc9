//! Docker's answers → the runtime's types (pure, so each rule is unit-tested).

use std::collections::BTreeMap;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerStatsResponse, ContainerSummaryStateEnum, EventMessage};

use super::timestamp::rfc3339_to_unix_ms;
use crate::runtime::error::RuntimeError;
use crate::runtime::types::{
    ContainerEvent, ContainerEventKind, ContainerId, ContainerState, ContainerStats, Limits, LogLine, LogStream,
};

/// Maps a bollard error of operation `op` on container `target` (id or name).
pub(super) fn map_error(op: &'static str, target: &str, err: BollardError) -> RuntimeError {
    match err {
        BollardError::DockerResponseServerError { status_code: 404, .. } => RuntimeError::NotFound(target.to_string()),
        BollardError::DockerResponseServerError { status_code, message } => {
            RuntimeError::Engine { op, message: format!("status {status_code}: {message}") }
        }
        e @ (BollardError::IOError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError) => RuntimeError::Unreachable(e.to_string()),
        e => RuntimeError::Engine { op, message: e.to_string() },
    }
}

/// Maps a failed `/containers/create`: the image and the name are what can be wrong.
pub(super) fn map_create_error(name: &str, image: &str, err: BollardError) -> RuntimeError {
    match err {
        BollardError::DockerResponseServerError { status_code: 404, message }
            if message.to_ascii_lowercase().contains("no such image") =>
        {
            RuntimeError::ImageMissing(image.to_string())
        }
        BollardError::DockerResponseServerError { status_code: 409, .. } => {
            RuntimeError::NameConflict(name.to_string())
        }
        BollardError::DockerResponseServerError { status_code, message } => {
            RuntimeError::Engine { op: "create", message: format!("status {status_code}: {message}") }
        }
        e => map_error("create", name, e),
    }
}

/// One frame of `/logs?timestamps=true` → its lines. Docker writes one entry per line;
/// a line longer than its 16 KiB chunk arrives as several entries and so as several
/// [`LogLine`]s.
pub(super) fn log_lines(frame: LogOutput) -> Vec<LogLine> {
    let (stream, bytes) = match frame {
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => (LogStream::Stdout, message),
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    text.split('\n')
        .map(|raw| {
            // `timestamps=true` prefixes each line with an RFC 3339 time and a space.
            let (ts_ms, line) = match raw.split_once(' ') {
                Some((ts, rest)) => match rfc3339_to_unix_ms(ts) {
                    Some(ms) => (Some(ms), rest),
                    None => (None, raw),
                },
                None => match rfc3339_to_unix_ms(raw) {
                    Some(ms) => (Some(ms), ""),
                    None => (None, raw),
                },
            };
            LogLine { stream, line: line.trim_end_matches('\r').to_string(), ts_ms }
        })
        .collect()
}

/// Event attributes that are not labels.
const NON_LABEL_ATTRIBUTES: [&str; 5] = ["name", "image", "exitCode", "signal", "execDuration"];

/// A Docker event → a container event, `None` for events the agent does not act on.
pub(super) fn event(msg: EventMessage) -> Option<ContainerEvent> {
    let actor = msg.actor?;
    let mut attributes = actor.attributes.unwrap_or_default();
    let kind = match msg.action.as_deref()? {
        "start" => ContainerEventKind::Start,
        "die" => ContainerEventKind::Die { exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()) },
        "oom" => ContainerEventKind::Oom,
        _ => return None,
    };
    let name = attributes.remove("name").unwrap_or_default();
    for key in NON_LABEL_ATTRIBUTES {
        attributes.remove(key);
    }
    let time_ms = match (msg.time_nano, msg.time) {
        (Some(nanos), _) if nanos > 0 => (nanos / 1_000_000) as u64,
        (_, Some(secs)) if secs > 0 => (secs as u64) * 1000,
        _ => 0,
    };
    Some(ContainerEvent {
        id: ContainerId(actor.id.unwrap_or_default()),
        name,
        labels: attributes.into_iter().collect::<BTreeMap<_, _>>(),
        kind,
        time_ms,
    })
}

/// A non-streaming stats answer (two samples ~1 s apart) → usage. CPU is the share of
/// the host's CPU time used between the samples, as millicores; memory leaves out the
/// inactive page cache, as `docker stats` does.
pub(super) fn stats(s: &ContainerStatsResponse) -> ContainerStats {
    let cpu = s.cpu_stats.as_ref();
    let pre = s.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref()).and_then(|u| u.total_usage).unwrap_or(0)
    };
    let system = |c: Option<&bollard::models::ContainerCpuStats>| c.and_then(|c| c.system_cpu_usage).unwrap_or(0);
    let cpu_delta = total(cpu).saturating_sub(total(pre));
    let system_delta = system(cpu).saturating_sub(system(pre));
    let online = cpu
        .and_then(|c| {
            c.online_cpus.map(u64::from).or_else(|| c.cpu_usage.as_ref()?.percpu_usage.as_ref().map(|p| p.len() as u64))
        })
        .unwrap_or(1);
    let cpu_millis =
        if system_delta == 0 { 0 } else { (cpu_delta as u128 * online as u128 * 1000 / system_delta as u128) as u64 };
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let inactive = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|st| st.get("total_inactive_file").or_else(|| st.get("inactive_file")).copied())
        .unwrap_or(0);
    ContainerStats {
        cpu_millis,
        memory_bytes: if inactive < usage { usage - inactive } else { usage },
        memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
    }
}

pub(super) fn limits(inspect: &ContainerInspectResponse) -> Limits {
    let hc = inspect.host_config.as_ref();
    let gpu_device_ids = hc
        .and_then(|h| h.device_requests.as_ref())
        .map(|reqs| {
            reqs.iter()
                .filter(|r| r.driver.as_deref() == Some("nvidia"))
                .flat_map(|r| r.device_ids.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    Limits {
        nano_cpus: hc.and_then(|h| h.nano_cpus).unwrap_or(0),
        memory_bytes: hc.and_then(|h| h.memory).unwrap_or(0),
        gpu_device_ids,
    }
}

pub(super) fn summary_state(state: Option<ContainerSummaryStateEnum>) -> ContainerState {
    use ContainerSummaryStateEnum as S;
    match state {
        Some(S::CREATED) => ContainerState::Created,
        Some(S::RUNNING) => ContainerState::Running,
        Some(S::PAUSED) => ContainerState::Paused,
        Some(S::RESTARTING) => ContainerState::Restarting,
        Some(S::REMOVING) => ContainerState::Removing,
        Some(S::EXITED) => ContainerState::Exited,
        Some(S::DEAD) => ContainerState::Dead,
        _ => ContainerState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, EventActor};

    use super::*;

    #[test]
    fn log_frames_split_into_timestamped_lines() {
        let frame = LogOutput::StdOut { message: "2024-01-02T03:04:05.678901234Z hello world\n".into() };
        assert_eq!(
            log_lines(frame),
            [LogLine { stream: LogStream::Stdout, line: "hello world".into(), ts_ms: Some(1_704_164_645_678) }]
        );
        let frame = LogOutput::StdErr { message: "no timestamp here\r\n".into() };
        assert_eq!(
            log_lines(frame),
            [LogLine { stream: LogStream::Stderr, line: "no timestamp here".into(), ts_ms: None }]
        );
        let frame = LogOutput::StdOut { message: "2024-01-02T03:04:05Z \n".into() };
        assert_eq!(log_lines(frame)[0].line, "");
    }

    fn event_msg(action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            }),
            time: Some(1_700_000_000),
            time_nano: Some(1_700_000_000_123_456_789),
            ..Default::default()
        }
    }

    #[test]
    fn die_events_carry_exit_code_and_labels_only() {
        let e = event(event_msg(
            "die",
            &[("exitCode", "3"), ("name", "gantry-x"), ("image", "img"), ("org.gantry.rank", "0")],
        ))
        .unwrap();
        assert_eq!(e.kind, ContainerEventKind::Die { exit_code: Some(3) });
        assert_eq!(e.name, "gantry-x");
        assert_eq!(e.labels, BTreeMap::from([("org.gantry.rank".to_string(), "0".to_string())]));
        assert_eq!(e.time_ms, 1_700_000_000_123);
        assert_eq!(event(event_msg("oom", &[])).unwrap().kind, ContainerEventKind::Oom);
        assert_eq!(event(event_msg("start", &[])).unwrap().kind, ContainerEventKind::Start);
        assert_eq!(event(event_msg("exec_create", &[])), None);
    }

    #[test]
    fn stats_compute_millicores_and_memory_without_cache() {
        let cpu = |total, system| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage { total_usage: Some(total), ..Default::default() }),
            system_cpu_usage: Some(system),
            online_cpus: Some(4),
            ..Default::default()
        };
        let s = ContainerStatsResponse {
            // Half of the host's CPU time over 4 CPUs = 2 cores.
            cpu_stats: Some(cpu(1_500, 2_000)),
            precpu_stats: Some(cpu(1_000, 1_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(1000),
                limit: Some(4000),
                stats: Some(HashMap::from([("inactive_file".to_string(), 300)])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(stats(&s), ContainerStats { cpu_millis: 2000, memory_bytes: 700, memory_limit_bytes: 4000 });
        assert_eq!(stats(&ContainerStatsResponse::default()).cpu_millis, 0);
    }

    #[test]
    fn errors_map_to_what_callers_decide_on() {
        let server = |status_code, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        assert_eq!(
            map_create_error("c1", "img", server(404, "No such image: img")),
            RuntimeError::ImageMissing("img".into())
        );
        assert_eq!(map_create_error("c1", "img", server(409, "Conflict")), RuntimeError::NameConflict("c1".into()));
        assert!(matches!(
            map_create_error("c1", "img", server(404, "network n not found")),
            RuntimeError::Engine { op: "create", .. }
        ));
        assert_eq!(map_error("stop", "c1", server(404, "No such container: c1")), RuntimeError::NotFound("c1".into()));
        assert!(matches!(map_error("stop", "c1", server(500, "boom")), RuntimeError::Engine { op: "stop", .. }));
        assert!(matches!(
            map_error("list", "", BollardError::SocketNotFoundError("/x".into())),
            RuntimeError::Unreachable(_)
        ));
    }
}
