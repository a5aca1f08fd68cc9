//! Human views of endpoints, stages, gateway configuration, statistics and keys.

use gantry_proto::v1::{ApiKey, Endpoint, GatewayConfig, Stage, StageStats};

use crate::commands::experiment::tags_text;
use crate::output::format::{timestamp, yes_no};
use crate::output::table::{Table, fields};

pub fn endpoint_list(endpoints: &[Endpoint]) -> String {
    let mut table = Table::new(["NAME", "STATUS", "API GATEWAY", "DEFAULT STAGE", "URL", "CREATED"]);
    for e in endpoints {
        table.row([
            e.name.clone(),
            e.status.clone(),
            e.gateway_status.clone(),
            e.default_stage.clone(),
            e.url.clone(),
            timestamp(e.created_at_ms),
        ]);
    }
    table.render()
}

pub fn endpoint_detail(e: &Endpoint) -> String {
    let mut out = fields(&[
        ("Name", e.name.clone()),
        ("ID", e.id.clone()),
        ("Project", e.project.clone()),
        ("Status", e.status.clone()),
        ("Reason", e.status_reason.clone()),
        ("API Gateway", e.gateway_status.clone()),
        ("URL", e.url.clone()),
        ("Default stage", e.default_stage.clone()),
        ("Description", e.description.clone()),
        ("Tags", tags_text(&e.tags)),
        ("Created", timestamp(e.created_at_ms)),
        ("Updated", timestamp(e.updated_at_ms)),
    ]);
    out.push('\n');
    out.push_str(&stage_list(&e.stages));
    out
}

pub fn stage_list(stages: &[Stage]) -> String {
    let mut table = Table::new(["STAGE", "DEFAULT", "STATUS", "API GATEWAY", "INSTANCE TYPE", "NODES", "PODS", "URL"]);
    for s in stages {
        table.row([
            s.name.clone(),
            yes_no(s.is_default),
            s.status.clone(),
            s.gateway_status.clone(),
            format!("{} x{}", s.instance_type, s.instance_count),
            s.running_nodes.to_string(),
            format!("{}/{}", s.healthy_pods, s.total_pods),
            s.url.clone(),
        ]);
    }
    table.render()
}

pub fn stage_detail(s: &Stage) -> String {
    let mut out = fields(&[
        ("Stage", s.name.clone()),
        ("ID", s.id.clone()),
        ("Endpoint", s.endpoint.clone()),
        ("Default", yes_no(s.is_default)),
        ("Status", s.status.clone()),
        ("Reason", s.status_reason.clone()),
        ("API Gateway", s.gateway_status.clone()),
        ("URL", s.url.clone()),
        ("Instance type", format!("{} x{}", s.instance_type, s.instance_count)),
        ("Running nodes", s.running_nodes.to_string()),
        ("Pods", format!("{} healthy / {} total", s.healthy_pods, s.total_pods)),
        ("Description", s.description.clone()),
        ("Created", timestamp(s.created_at_ms)),
    ]);
    let mut resources = Table::new(["RESOURCE", "MODEL", "PATH", "STATUS", "PODS", "URL", "REASON"]);
    for r in &s.resources {
        resources.row([
            r.id.clone(),
            r.model.clone(),
            r.resource_path.clone(),
            r.status.clone(),
            format!("{}/{}", r.healthy_pods, r.total_pods),
            r.url.clone(),
            r.status_reason.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&resources.render());
    out.push('\n');
    if !s.monitoring_disabled_reason.is_empty() {
        out.push_str(&format!("Monitoring: {}\n", s.monitoring_disabled_reason));
        return out;
    }
    let mut instances = Table::new(["NODE", "WORKLOAD", "PODS", "CPU %", "MEMORY MiB", "GPU %"]);
    for i in &s.instances {
        instances.row([
            if i.node_id.is_empty() { "(pending)".to_string() } else { i.node_id.clone() },
            i.workload_id.clone(),
            format!("{}/{}", i.healthy_pods, i.total_pods),
            format!("{:.1}", i.cpu_percent),
            i.memory_used_mib.to_string(),
            format!("{:.1}", i.gpu_percent),
        ]);
    }
    out.push_str(&instances.render());
    out
}

pub fn gateway_config(c: &GatewayConfig) -> String {
    let mut out = fields(&[
        ("Stage ID", c.stage_id.clone()),
        ("Version", c.version.to_string()),
        ("API Gateway", c.gateway_status.clone()),
    ]);
    let mut routes = Table::new(["PATH", "RESOURCE", "MODEL", "BACKENDS"]);
    for r in &c.routes {
        routes.row([r.path.clone(), r.resource_id.clone(), r.model.clone(), r.backends.join(" ")]);
    }
    out.push('\n');
    out.push_str(&routes.render());
    let mut gateways = Table::new(["GATEWAY", "APPLIED VERSION", "REPORTED", "ERROR"]);
    for g in &c.gateways {
        gateways.row([
            g.gateway_id.clone(),
            g.applied_version.to_string(),
            timestamp(g.reported_at_ms),
            g.error.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&gateways.render());
    out
}

pub fn stage_stats(s: &StageStats) -> String {
    let mut table = Table::new(["MINUTE", "CALLS", "ERRORS", "P50 ms", "P90 ms", "P99 ms"]);
    for m in &s.minutes {
        table.row([
            timestamp(m.minute_ms),
            m.calls.to_string(),
            m.errors.to_string(),
            millis(m.p50_us),
            millis(m.p90_us),
            millis(m.p99_us),
        ]);
    }
    table.render()
}

fn millis(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

pub fn key_list(keys: &[ApiKey]) -> String {
    let mut table = Table::new(["ID", "DESCRIPTION", "CREATED"]);
    for k in keys {
        table.row([k.id.clone(), k.description.clone(), timestamp(k.created_at_ms)]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{StageResource, StatsMinute};

    use super::*;

    #[test]
    fn the_list_shows_url_status_and_gateway_status() {
        let e = Endpoint {
            name: "iris".into(),
            status: "ACTIVE".into(),
            gateway_status: "ACTIVE".into(),
            default_stage: "default".into(),
            url: "http://gw/e/ep-1".into(),
            created_at_ms: 1_700_000_000_000,
            ..Default::default()
        };
        let view = endpoint_list(&[e]);
        assert!(view.contains("iris   ACTIVE   ACTIVE"), "{view}");
        assert!(view.contains("http://gw/e/ep-1"), "{view}");
    }

    #[test]
    fn stage_detail_shows_pods_per_resource_and_why_monitoring_is_off() {
        let s = Stage {
            name: "default".into(),
            healthy_pods: 1,
            total_pods: 2,
            resources: vec![StageResource {
                id: "res-1".into(),
                model: "iris".into(),
                resource_path: "/inference".into(),
                healthy_pods: 1,
                total_pods: 2,
                ..Default::default()
            }],
            monitoring_disabled_reason: "the stage is being created".into(),
            ..Default::default()
        };
        let view = stage_detail(&s);
        assert!(view.contains("1 healthy / 2 total"), "{view}");
        assert!(view.contains("res-1"), "{view}");
        assert!(view.contains("Monitoring: the stage is being created"), "{view}");
    }

    #[test]
    fn stats_are_in_milliseconds() {
        let stats = StageStats {
            minutes: vec![StatsMinute { minute_ms: 0, calls: 10, errors: 1, p50_us: 1500, p90_us: 2000, p99_us: 9000 }],
        };
        let view = stage_stats(&stats);
        assert!(view.contains("10      1        1.5      2.0      9.0"), "{view}");
    }
}
