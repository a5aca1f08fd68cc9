//! `-o json` for endpoints, stages, gateway configuration, statistics and API keys.

use gantry_proto::v1;
use serde_json::{Value, json};

use super::ToJson;

impl ToJson for v1::StageResource {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "model": self.model,
            "model_id": self.model_id,
            "resource_path": self.resource_path,
            "pod_count": self.pod_count,
            "description": self.description,
            "status": self.status,
            "status_reason": self.status_reason,
            "healthy_pods": self.healthy_pods,
            "total_pods": self.total_pods,
            "url": self.url,
        })
    }
}

impl ToJson for v1::StageInstance {
    fn to_json(&self) -> Value {
        json!({
            "node_id": self.node_id,
            "workload_id": self.workload_id,
            "healthy_pods": self.healthy_pods,
            "total_pods": self.total_pods,
            "cpu_percent": self.cpu_percent,
            "memory_used_mib": self.memory_used_mib,
            "gpu_percent": self.gpu_percent,
        })
    }
}

impl ToJson for v1::Stage {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "endpoint": self.endpoint,
            "name": self.name,
            "description": self.description,
            "is_default": self.is_default,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "status": self.status,
            "status_reason": self.status_reason,
            "gateway_status": self.gateway_status,
            "url": self.url,
            "resources": self.resources.to_json(),
            "instances": self.instances.to_json(),
            "running_nodes": self.running_nodes,
            "healthy_pods": self.healthy_pods,
            "total_pods": self.total_pods,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "monitoring_disabled_reason": self.monitoring_disabled_reason,
        })
    }
}

impl ToJson for v1::Endpoint {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "tags": self.tags.to_json(),
            "status": self.status,
            "status_reason": self.status_reason,
            "default_stage": self.default_stage,
            "url": self.url,
            "gateway_status": self.gateway_status,
            "stages": self.stages.to_json(),
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        })
    }
}

impl ToJson for v1::ListEndpointsResponse {
    fn to_json(&self) -> Value {
        json!({ "endpoints": self.endpoints.to_json() })
    }
}

impl ToJson for v1::ListStagesResponse {
    fn to_json(&self) -> Value {
        json!({ "stages": self.stages.to_json() })
    }
}

impl ToJson for v1::DeleteEndpointResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

impl ToJson for v1::DeleteStageResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

impl ToJson for v1::GatewayRoute {
    fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "resource_id": self.resource_id,
            "model": self.model,
            "backends": self.backends,
        })
    }
}

impl ToJson for v1::GatewayReport {
    fn to_json(&self) -> Value {
        json!({
            "gateway_id": self.gateway_id,
            "applied_version": self.applied_version,
            "error": self.error,
            "reported_at_ms": self.reported_at_ms,
        })
    }
}

impl ToJson for v1::GatewayConfig {
    fn to_json(&self) -> Value {
        json!({
            "stage_id": self.stage_id,
            "version": self.version,
            "routes": self.routes.to_json(),
            "gateways": self.gateways.to_json(),
            "gateway_status": self.gateway_status,
        })
    }
}

impl ToJson for v1::StatsMinute {
    fn to_json(&self) -> Value {
        json!({
            "minute_ms": self.minute_ms,
            "calls": self.calls,
            "errors": self.errors,
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
        })
    }
}

impl ToJson for v1::StageStats {
    fn to_json(&self) -> Value {
        json!({ "minutes": self.minutes.to_json() })
    }
}

impl ToJson for v1::ApiKey {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "endpoint": self.endpoint,
            "description": self.description,
            "secret": self.secret,
            "created_at_ms": self.created_at_ms,
        })
    }
}

impl ToJson for v1::ListApiKeysResponse {
    fn to_json(&self) -> Value {
        json!({ "keys": self.keys.to_json() })
    }
}

impl ToJson for v1::DeleteApiKeyResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_renders_its_stages_and_every_field() {
        let e = v1::Endpoint {
            name: "iris".into(),
            stages: vec![v1::Stage { name: "default".into(), is_default: true, ..Default::default() }],
            ..Default::default()
        };
        let v = e.to_json();
        assert_eq!(v["name"], "iris");
        assert_eq!(v["stages"][0]["is_default"], true);
        assert_eq!(v["stages"][0]["resources"], json!([]));
        assert!(v.get("gateway_status").is_some());
    }
}
