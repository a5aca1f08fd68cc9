//! The replicated records of an endpoint, its stages, their resources and pods.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::status::{EndpointStatus, StageResourceStatus, StageStatus};
use crate::api_stats::MinuteStats;
use crate::meta::Meta;
use crate::model::ModelFramework;
use crate::resources::Resources;

/// An API key: only the SHA-256 (hex) of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub description: String,
    pub secret_sha256: String,
    pub created_at_ms: u64,
}

/// The model a pod serves, copied when the pod is made so a later model update (a new
/// generation) never changes what a running pod was started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedModel {
    pub model_id: String,
    pub model: String,
    pub framework: ModelFramework,
    pub artifact_path: String,
    /// The serving image reference for the framework (from the catalog).
    pub image: String,
}

/// One serving container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// `{resource_id}-g{generation}-{index}`.
    pub id: String,
    pub generation: u32,
    pub index: u32,
    /// Which of the stage's instances runs it.
    pub instance_index: u32,
    /// Published on the node's address; unique in the cluster.
    pub host_port: u16,
    pub ready: bool,
    pub served: ServedModel,
}

impl Pod {
    pub fn pod_id(resource_id: &str, generation: u32, index: u32) -> String {
        format!("{resource_id}-g{generation}-{index}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageResource {
    pub id: String,
    /// The model of the newest generation.
    pub model_id: String,
    pub model: String,
    pub resource_path: String,
    pub pod_count: u32,
    pub description: String,
    pub status: StageResourceStatus,
    pub status_reason: String,
    /// Bumped by a model update; the newest generation's pods are being made or serve.
    pub generation: u32,
    /// The generation the routes list (the newest one whose pods were all ready);
    /// `None` before the first one was.
    pub routed_generation: Option<u32>,
    /// Log index at which the routes switched to `routed_generation`: older pods go
    /// once every live gateway applied a table at least this new.
    pub switched_at: u64,
    /// Why it failed for good (a pod reported failed); its pods are removed.
    pub failed: Option<String>,
    pub deleting: bool,
    pub pods: Vec<Pod>,
    /// Index of the next pod made (ids are never reused: a replaced pod gets a new one).
    #[serde(default)]
    pub next_pod: u32,
}

impl StageResource {
    /// Pods of the generation the routes list, ready ones only.
    pub fn routed_pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(move |p| Some(p.generation) == self.routed_generation && p.ready)
    }

    pub fn newest_pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(move |p| p.generation == self.generation)
    }
}

/// What one gateway process last reported for a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayReport {
    pub applied_version: u64,
    /// An apply error and the stage version it was for.
    pub error: Option<(u64, String)>,
    pub reported_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub name: String,
    pub description: String,
    pub instance_type: String,
    /// The instance type's shape, copied at create (a later catalog change does not move
    /// a running stage).
    pub shape: Resources,
    pub gpu_model: Option<String>,
    pub instance_count: u32,
    pub status: StageStatus,
    pub status_reason: String,
    pub resources: Vec<StageResource>,
    /// The workload of each instance, by index (a lost one is replaced by a new id).
    pub instances: Vec<String>,
    /// Log index of the last change of the stage's routes (or of a redeploy).
    pub config_version: u64,
    pub gateways: BTreeMap<String, GatewayReport>,
    /// Minute start (ms) → gateway id → that gateway's numbers for the minute.
    pub stats: BTreeMap<u64, BTreeMap<String, MinuteStats>>,
    /// It reached ACTIVE once: later trouble is a deploy, not a create.
    pub ever_active: bool,
    pub deleting: bool,
    /// A former default stage: deleted once every live gateway applied this version.
    pub retire_after: Option<u64>,
    /// Suffix of the next resource id (`{stage_id}-r{n}`).
    #[serde(default)]
    pub next_resource: u32,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Stage {
    pub fn resource(&self, id: &str) -> Option<&StageResource> {
        self.resources.iter().find(|r| r.id == id)
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.resources.iter().flat_map(|r| r.pods.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub meta: Meta,
    pub status: EndpointStatus,
    pub status_reason: String,
    /// Name of the default stage.
    pub default_stage: String,
    /// By name.
    pub stages: BTreeMap<String, Stage>,
    pub api_keys: Vec<ApiKey>,
    pub deleting: bool,
}

impl Endpoint {
    pub fn stage_by_id(&self, id: &str) -> Option<&Stage> {
        self.stages.values().find(|s| s.id == id)
    }
}
