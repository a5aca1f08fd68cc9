//! The compiled route table: the wire `RouteTable` checked stage by stage and indexed
//! for matching and authentication.
//!
//! A stage whose configuration is invalid is a deploy failure of that stage only: it is
//! reported with its config version, the stage keeps the configuration it had in the
//! previous table (if any), and every other stage applies.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gantry_proto::v1;

use super::path::{is_valid_id, resource_path_error};

/// A resource of a stage: one model behind a resource path, served by ready pods.
#[derive(Debug)]
pub struct Resource {
    pub resource_id: String,
    pub path: String,
    pub model: String,
    /// `host:port` of every ready pod; empty means the resource is not ready (503).
    pub backends: Vec<String>,
    /// Round-robin cursor over `backends`.
    next: AtomicUsize,
}

impl Resource {
    /// The backends in the order this call should try them: round-robin start, then the
    /// others (tried only when connecting to the first fails).
    pub fn backends_for_call(&self) -> impl Iterator<Item = &str> {
        let n = self.backends.len();
        let start = if n == 0 { 0 } else { self.next.fetch_add(1, Ordering::Relaxed) % n };
        (0..n).map(move |i| self.backends[(start + i) % n].as_str())
    }
}

/// A deployed stage: what its URL serves and how calls to it are logged.
#[derive(Debug)]
pub struct Stage {
    pub project: String,
    pub endpoint_id: String,
    pub endpoint: String,
    pub stage_id: String,
    pub stage: String,
    pub config_version: u64,
    pub use_log: bool,
    /// Longest path first, so the first prefix that matches is the longest.
    pub resources: Vec<Resource>,
}

/// Who an endpoint API key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub endpoint_id: String,
    pub project: String,
}

/// The table a gateway routes with. Immutable once built: a new version is a new table,
/// so a request in flight keeps the table it started with.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub version: u64,
    pub(super) stages: HashMap<String, Arc<Stage>>,
    /// Endpoint id → its default stage id.
    pub(super) defaults: HashMap<String, String>,
    /// SHA-256 hex of an API key → its endpoint.
    pub(crate) keys: HashMap<String, KeyOwner>,
    /// SHA-256 hex of a project token → the project.
    pub(crate) project_tokens: HashMap<String, String>,
}

impl RouteTable {
    /// Compiles a wire table; returns the table and the stages that failed to deploy.
    /// `previous` supplies the last good configuration of a failing stage.
    pub fn compile(wire: &v1::RouteTable, previous: Option<&RouteTable>) -> (RouteTable, Vec<v1::StageDeployError>) {
        let mut table = RouteTable { version: wire.version, ..RouteTable::default() };
        let mut errors = Vec::new();
        for s in &wire.stages {
            let fail = |error: String| v1::StageDeployError {
                stage_id: s.stage_id.clone(),
                config_version: s.config_version,
                error,
            };
            if table.stages.contains_key(&s.stage_id) {
                errors.push(fail(format!("stage {} appears twice in the route table", s.stage_id)));
                continue;
            }
            match compile_stage(s) {
                Ok(stage) => {
                    table.stages.insert(s.stage_id.clone(), Arc::new(stage));
                }
                Err(error) => {
                    errors.push(fail(error));
                    if let Some(old) = previous.and_then(|p| p.stages.get(&s.stage_id)) {
                        table.stages.insert(s.stage_id.clone(), Arc::clone(old));
                    }
                }
            }
            if s.is_default && table.stages.contains_key(&s.stage_id) {
                if let Some(other) = table.defaults.get(&s.endpoint_id) {
                    errors.push(fail(format!("endpoint {} already has default stage {other}", s.endpoint_id)));
                } else {
                    table.defaults.insert(s.endpoint_id.clone(), s.stage_id.clone());
                }
            }
        }
        for k in &wire.keys {
            for sha in &k.key_sha256 {
                let owner = KeyOwner { endpoint_id: k.endpoint_id.clone(), project: k.project.clone() };
                table.keys.insert(sha.to_ascii_lowercase(), owner);
            }
        }
        for (project, sha) in &wire.project_token_sha256 {
            table.project_tokens.insert(sha.to_ascii_lowercase(), project.clone());
        }
        (table, errors)
    }

    /// A stage by id.
    pub fn stage(&self, stage_id: &str) -> Option<&Arc<Stage>> {
        self.stages.get(stage_id)
    }

    /// The default stage of an endpoint.
    pub fn default_stage(&self, endpoint_id: &str) -> Option<&Arc<Stage>> {
        self.defaults.get(endpoint_id).and_then(|id| self.stages.get(id))
    }

    /// Ids of every stage routed by this table.
    pub fn stage_ids(&self) -> impl Iterator<Item = &str> {
        self.stages.keys().map(String::as_str)
    }
}

fn compile_stage(s: &v1::StageRoutes) -> Result<Stage, String> {
    if !is_valid_id(&s.stage_id) {
        return Err(format!("stage_id {:?} must be 1-128 letters, digits, '-' or '_'", s.stage_id));
    }
    if !is_valid_id(&s.endpoint_id) {
        return Err(format!("endpoint_id {:?} must be 1-128 letters, digits, '-' or '_'", s.endpoint_id));
    }
    let mut seen = HashSet::new();
    let mut resources = Vec::with_capacity(s.resources.len());
    for r in &s.resources {
        if let Some(rule) = resource_path_error(&r.resource_path) {
            return Err(format!("resource {} path {:?} {rule}", r.resource_id, r.resource_path));
        }
        if !seen.insert(r.resource_path.as_str()) {
            return Err(format!("resource path {:?} is used by two resources", r.resource_path));
        }
        if r.model.is_empty() || r.model.contains(['/', '?', '#', ' ']) {
            return Err(format!("resource {} model {:?} is not a valid model name", r.resource_id, r.model));
        }
        resources.push(Resource {
            resource_id: r.resource_id.clone(),
            path: r.resource_path.clone(),
            model: r.model.clone(),
            backends: r.backends.clone(),
            next: AtomicUsize::new(0),
        });
    }
    resources.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
    Ok(Stage {
        project: s.project.clone(),
        endpoint_id: s.endpoint_id.clone(),
        endpoint: s.endpoint.clone(),
        stage_id: s.stage_id.clone(),
        stage: s.stage.clone(),
        config_version: s.config_version,
        use_log: s.use_log,
        resources,
    })
}
