//! Response messages as JSON for `-o json`.
//!
//! The generated types have no serde support (and the proto crate is not the CLI's to
//! change), so each message has a small hand-written renderer. The shape is chosen for
//! scripts: field names exactly as in the `.proto` files (`match_index`, not
//! `matchIndex`), every field present even when it holds its default, numbers as JSON
//! numbers, strings (statuses included) unchanged. A missing sub-message is `null`.
//! Keys come out sorted (serde_json's default map); enabling its `preserve_order`
//! feature would change map order for every crate in the workspace build.

mod endpoint;
mod model;

use gantry_proto::v1;
use serde_json::{Value, json};

/// A message rendered as JSON.
pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

impl ToJson for v1::ReplicaStatus {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "address": self.address,
            "role": self.role,
            "match_index": self.match_index,
            "reachable": self.reachable,
        })
    }
}

impl ToJson for v1::ClusterStatus {
    fn to_json(&self) -> Value {
        json!({
            "replica_id": self.replica_id,
            "leader_id": self.leader_id,
            "term": self.term,
            "commit_index": self.commit_index,
            "applied_index": self.applied_index,
            "role": self.role,
            "replicas": self.replicas.to_json(),
            "snapshot_index": self.snapshot_index,
            "first_log_index": self.first_log_index,
            "last_log_index": self.last_log_index,
        })
    }
}

impl ToJson for v1::InstanceType {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "cpu_millis": self.cpu_millis,
            "memory_mib": self.memory_mib,
            "gpu_count": self.gpu_count,
            "gpu_model": self.gpu_model,
            "core_type": self.core_type,
        })
    }
}

impl ToJson for v1::ListInstanceTypesResponse {
    fn to_json(&self) -> Value {
        json!({ "instance_types": self.instance_types.to_json() })
    }
}

impl ToJson for v1::Image {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "reference": self.reference,
            "core_type": self.core_type,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "python_version": self.python_version,
        })
    }
}

impl ToJson for v1::ListImagesResponse {
    fn to_json(&self) -> Value {
        json!({ "images": self.images.to_json() })
    }
}

impl ToJson for v1::ProjectGrants {
    fn to_json(&self) -> Value {
        let g = self.grants.clone().unwrap_or_default();
        json!({ "project": self.project, "read": g.read, "write": g.write })
    }
}

impl ToJson for v1::ListStorageGrantsResponse {
    fn to_json(&self) -> Value {
        json!({ "projects": self.projects.to_json() })
    }
}

impl ToJson for v1::DeleteResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

impl ToJson for v1::Gpu {
    fn to_json(&self) -> Value {
        json!({ "uuid": self.uuid, "model": self.model, "memory_mib": self.memory_mib })
    }
}

impl ToJson for v1::NodeInventory {
    fn to_json(&self) -> Value {
        json!({
            "cpu_millis": self.cpu_millis,
            "memory_mib": self.memory_mib,
            "disk_mib": self.disk_mib,
            "gpus": self.gpus.to_json(),
        })
    }
}

impl ToJson for v1::NodeResources {
    fn to_json(&self) -> Value {
        json!({ "cpu_millis": self.cpu_millis, "memory_mib": self.memory_mib, "gpus": self.gpus })
    }
}

impl ToJson for v1::Node {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "hostname": self.hostname,
            "address": self.address,
            "inventory": self.inventory.to_json(),
            "status": self.status,
            "allocated": self.allocated.to_json(),
            "free": self.free.to_json(),
            "allocated_gpus": self.allocated_gpus,
            "registered_at_ms": self.registered_at_ms,
            "status_changed_at_ms": self.status_changed_at_ms,
            "workloads": self.workloads,
            "health": self.health.to_json(),
            "unhealthy_gpus": self.unhealthy_gpus.to_json(),
        })
    }
}

impl ToJson for v1::UnhealthyGpu {
    fn to_json(&self) -> Value {
        json!({ "uuid": self.uuid, "reason": self.reason, "since_ms": self.since_ms })
    }
}

impl ToJson for v1::XidEvent {
    fn to_json(&self) -> Value {
        json!({ "at_ms": self.at_ms, "gpu_uuid": self.gpu_uuid, "xid": self.xid, "meaning": self.meaning })
    }
}

impl ToJson for v1::NodeHealth {
    fn to_json(&self) -> Value {
        json!({
            "connected": self.connected,
            "last_heartbeat_ms": self.last_heartbeat_ms,
            "metrics": self.metrics.to_json(),
            "xid_events": self.xid_events.to_json(),
        })
    }
}

impl ToJson for v1::NodeMetrics {
    fn to_json(&self) -> Value {
        json!({
            "at_ms": self.at_ms,
            "cpu_pct": self.cpu_pct,
            "memory_used_mib": self.memory_used_mib,
            "disk_free_mib": self.disk_free_mib,
            "containers": self.containers,
            "gpus": self.gpus.to_json(),
            "gpu_source": self.gpu_source,
            "agent_rss_kib": self.agent_rss_kib,
            "container_usage": self.container_usage.to_json(),
            "xid_events": self.xid_events.to_json(),
        })
    }
}

impl ToJson for v1::ContainerUsage {
    fn to_json(&self) -> Value {
        json!({
            "workload_id": self.workload_id,
            "rank": self.rank,
            "cpu_millis": self.cpu_millis,
            "memory_bytes": self.memory_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
        })
    }
}

impl ToJson for v1::GpuMetrics {
    fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "utilization_pct": self.utilization_pct,
            "memory_used_mib": self.memory_used_mib,
            "temperature_c": self.temperature_c,
            "ecc_errors": self.ecc_errors,
            "last_xid": self.last_xid,
            "unhealthy_reason": self.unhealthy_reason,
        })
    }
}

impl ToJson for v1::ListNodesResponse {
    fn to_json(&self) -> Value {
        json!({ "nodes": self.nodes.to_json() })
    }
}

impl ToJson for v1::Tag {
    fn to_json(&self) -> Value {
        json!({ "key": self.key, "value": self.value })
    }
}

impl ToJson for v1::Experiment {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "tags": self.tags.to_json(),
            "status": self.status,
            "status_reason": self.status_reason,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "training_count": self.training_count,
        })
    }
}

impl ToJson for v1::ListExperimentsResponse {
    fn to_json(&self) -> Value {
        json!({ "experiments": self.experiments.to_json() })
    }
}

impl ToJson for v1::DeleteExperimentResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

impl ToJson for v1::KeyValue {
    fn to_json(&self) -> Value {
        json!({ "key": self.key, "value": self.value })
    }
}

impl ToJson for v1::Dataset {
    fn to_json(&self) -> Value {
        json!({ "name": self.name, "path": self.path })
    }
}

impl ToJson for v1::TrainingSpec {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "tags": self.tags.to_json(),
            "experiment": self.experiment,
            "create_experiment": self.create_experiment,
            "algorithm_path": self.algorithm_path,
            "entry_point": self.entry_point,
            "hyperparameters": self.hyperparameters.to_json(),
            "image": self.image,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "nproc_per_node": self.nproc_per_node,
            "use_torchrun": self.use_torchrun,
            "datasets": self.datasets.to_json(),
            "checkpoint_input_path": self.checkpoint_input_path,
            "output_path": self.output_path,
            "checkpoint_output_path": self.checkpoint_output_path,
            "data_storage_size_gb": self.data_storage_size_gb,
            "timeout_minutes": self.timeout_minutes,
            "use_log": self.use_log,
        })
    }
}

impl ToJson for v1::Assignment {
    fn to_json(&self) -> Value {
        json!({ "rank": self.rank, "node_id": self.node_id, "gpu_uuids": self.gpu_uuids })
    }
}

impl ToJson for v1::StatusChange {
    fn to_json(&self) -> Value {
        json!({ "status": self.status, "at_ms": self.at_ms, "reason": self.reason })
    }
}

impl ToJson for v1::Training {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "project": self.project,
            "spec": self.spec.to_json(),
            "experiment_id": self.experiment_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "assignments": self.assignments.to_json(),
            "history": self.history.to_json(),
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "elapsed_ms": self.elapsed_ms,
        })
    }
}

impl ToJson for v1::ListTrainingsResponse {
    fn to_json(&self) -> Value {
        json!({ "trainings": self.trainings.to_json() })
    }
}

impl ToJson for v1::DeleteTrainingResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_proto_field_names_and_keeps_defaults() {
        let status = v1::ClusterStatus {
            replica_id: 1,
            leader_id: 1,
            role: "LEADER".into(),
            replicas: vec![v1::ReplicaStatus { id: 2, match_index: 7, ..Default::default() }],
            ..Default::default()
        };
        let v = status.to_json();
        assert_eq!(v["role"], "LEADER");
        assert_eq!(v["term"], 0);
        assert_eq!(v["replicas"][0]["match_index"], 7);
        assert_eq!(v["replicas"][0]["reachable"], false);
    }

    #[test]
    fn node_health_is_included() {
        let node = v1::Node {
            health: Some(v1::NodeHealth {
                connected: true,
                last_heartbeat_ms: 42,
                metrics: Some(v1::NodeMetrics {
                    cpu_pct: 12.5,
                    gpus: vec![v1::GpuMetrics {
                        uuid: "GPU-0".into(),
                        last_xid: 79,
                        unhealthy_reason: "xid 79: GPU has fallen off the bus".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                xid_events: vec![v1::XidEvent {
                    at_ms: 41,
                    gpu_uuid: "GPU-0".into(),
                    xid: 79,
                    meaning: "GPU has fallen off the bus".into(),
                }],
            }),
            unhealthy_gpus: vec![v1::UnhealthyGpu {
                uuid: "GPU-0".into(),
                reason: "xid 79: GPU has fallen off the bus".into(),
                since_ms: 41,
            }],
            ..Default::default()
        };
        let v = node.to_json();
        assert_eq!(v["health"]["connected"], true);
        assert_eq!(v["health"]["metrics"]["cpu_pct"], 12.5);
        assert_eq!(v["health"]["metrics"]["gpus"][0]["last_xid"], 79);
        assert_eq!(v["health"]["metrics"]["gpus"][0]["unhealthy_reason"], "xid 79: GPU has fallen off the bus");
        assert_eq!(v["health"]["xid_events"][0]["xid"], 79);
        assert_eq!(v["health"]["xid_events"][0]["meaning"], "GPU has fallen off the bus");
        assert_eq!(v["unhealthy_gpus"][0]["uuid"], "GPU-0");
        assert_eq!(v["unhealthy_gpus"][0]["since_ms"], 41);
        assert_eq!(v1::Node::default().to_json()["health"], Value::Null);
    }

    #[test]
    fn missing_sub_messages_are_null_and_statuses_are_unchanged() {
        let t = v1::Training { status: "CREATE REQUESTED".into(), ..Default::default() };
        let v = t.to_json();
        assert_eq!(v["spec"], Value::Null);
        assert_eq!(v["status"], "CREATE REQUESTED");
        let v = v1::ListTrainingsResponse { trainings: vec![t] }.to_json();
        assert_eq!(v["trainings"][0]["status"], "CREATE REQUESTED");
    }
}
