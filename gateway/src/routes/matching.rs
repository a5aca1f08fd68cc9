//! Which stage, resource and pod path a caller's request goes to.
//!
//! ```text
//!   /e/{endpoint_id}{resource_path}[rest]   the endpoint's default stage
//!   /s/{stage_id}{resource_path}[rest]      that stage
//!   rest = ""  (POST)        → /v1/models/{model}:predict
//!   rest = "/v2/…"           → forwarded as is
//! ```
//! The longest resource path that is a prefix of the request path on a segment
//! boundary wins.

use std::sync::Arc;

use http::Method;

use super::path::is_forwardable_v2;
use super::table::{Resource, RouteTable, Stage};

/// A request matched to a stage resource.
#[derive(Debug, Clone)]
pub struct Route {
    pub stage: Arc<Stage>,
    /// Index into `stage.resources`.
    pub resource: usize,
    /// Path (without query) to call on the pod.
    pub upstream_path: String,
    /// What the call does, for inference logs: `predict`, `infer`, `health` or `metadata`.
    pub action: &'static str,
}

impl Route {
    pub fn resource(&self) -> &Resource {
        &self.stage.resources[self.resource]
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// no route for this path
    #[error("no route for this path")]
    NotFound,
    /// the V1 predict URL takes POST only
    #[error("the predict URL takes POST only")]
    MethodNotAllowed,
}

impl RouteTable {
    /// Matches a request; pure, no I/O.
    pub fn route(&self, method: &Method, path: &str) -> Result<Route, RouteError> {
        let (kind, after) = if let Some(after) = path.strip_prefix("/e/") {
            ('e', after)
        } else if let Some(after) = path.strip_prefix("/s/") {
            ('s', after)
        } else {
            return Err(RouteError::NotFound);
        };
        let (id, tail) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        let stage = match kind {
            'e' => self.default_stage(id),
            _ => self.stage(id),
        }
        .ok_or(RouteError::NotFound)?;
        let (resource, rest) = stage
            .resources
            .iter()
            .enumerate()
            .find_map(|(i, r)| match tail.strip_prefix(r.path.as_str()) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => Some((i, rest)),
                _ => None,
            })
            .ok_or(RouteError::NotFound)?;
        let (upstream_path, action) = if rest.is_empty() || rest == "/" {
            if method != Method::POST {
                return Err(RouteError::MethodNotAllowed);
            }
            (format!("/v1/models/{}:predict", stage.resources[resource].model), "predict")
        } else if is_forwardable_v2(rest) {
            let action = if rest.ends_with("/infer") {
                "infer"
            } else if rest.starts_with("/v2/health/") {
                "health"
            } else {
                "metadata"
            };
            (rest.to_string(), action)
        } else {
            return Err(RouteError::NotFound);
        };
        Ok(Route { stage: Arc::clone(stage), resource, upstream_path, action })
    }
}
