//! Endpoint commands: one `CommandV1::Endpoint` variant carries them, so the endpoint
//! vocabulary grows here without touching the rest of the log format.

use gantry_domain::Tag;
use gantry_domain::api_stats::MinuteStats;
use gantry_domain::endpoint::{EndpointSpec, StageResourceSpec, StageSpec};
use serde::{Deserialize, Serialize};

/// One pod's state as its agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodReport {
    pub pod_id: String,
    pub ready: bool,
    /// Non-empty: the pod cannot start for a reason retrying will not fix.
    #[serde(default)]
    pub failed: String,
}

/// A stage a gateway failed to apply, at the stage's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageError {
    pub stage_id: String,
    pub config_version: u64,
    pub error: String,
}

/// One finished minute of one stage as one gateway counted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMinute {
    pub stage_id: String,
    pub minute_ms: u64,
    pub stats: MinuteStats,
}

// Commands are decoded once per entry and applied at once (as `CommandV1`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "endpoint_op", rename_all = "snake_case")]
pub enum EndpointCommand {
    /// Precondition: `spec` passed `EndpointSpec::validate`.
    CreateEndpoint {
        project: String,
        id: String,
        stage_id: String,
        request_id: String,
        spec: EndpointSpec,
        now_ms: u64,
    },
    CreateStage {
        project: String,
        endpoint: String,
        stage_id: String,
        request_id: String,
        spec: StageSpec,
        now_ms: u64,
    },
    UpdateEndpoint {
        project: String,
        name: String,
        new_name: Option<String>,
        description: Option<String>,
        tags: Option<Vec<Tag>>,
        now_ms: u64,
    },
    DeleteEndpoint {
        project: String,
        name: String,
        now_ms: u64,
    },
    DeleteStage {
        project: String,
        endpoint: String,
        stage: String,
        now_ms: u64,
    },
    SetDefaultStage {
        project: String,
        endpoint: String,
        stage: String,
        now_ms: u64,
    },
    RedeployStage {
        project: String,
        endpoint: String,
        stage: String,
        now_ms: u64,
    },
    AddStageResource {
        project: String,
        endpoint: String,
        stage: String,
        spec: StageResourceSpec,
        now_ms: u64,
    },
    DeleteStageResource {
        project: String,
        endpoint: String,
        stage: String,
        resource_id: String,
        now_ms: u64,
    },
    /// Rolls the resource to `model` (a surge: a new generation of pods).
    UpdateStageResource {
        project: String,
        endpoint: String,
        stage: String,
        resource_id: String,
        model: String,
        now_ms: u64,
    },
    CreateApiKey {
        project: String,
        endpoint: String,
        id: String,
        description: String,
        secret_sha256: String,
        now_ms: u64,
    },
    DeleteApiKey {
        project: String,
        endpoint: String,
        id: String,
    },
    /// An agent reports every pod it runs for the instance `workload_id` (the full
    /// list: a pod of a deleted resource missing from it is gone).
    ReportPods {
        node_id: String,
        workload_id: String,
        pods: Vec<PodReport>,
        now_ms: u64,
    },
    /// A gateway's applied table version, apply errors and finished minutes.
    ReportGateway {
        gateway_id: String,
        applied_version: u64,
        errors: Vec<StageError>,
        minutes: Vec<StageMinute>,
        now_ms: u64,
    },
}
