//! What a user asks for: an endpoint with its default stage, a stage, a stage resource.
//! Every rule names the field as the API spells it.

use serde::{Deserialize, Serialize};

use crate::meta::Tag;
use crate::validate::{self, Validated, ValidationError};

/// Name of the stage created with an endpoint when the request names none.
pub const DEFAULT_STAGE_NAME: &str = "default";
/// Pods of one resource. 20 keeps one stage's pods (10 resources × 20) within what a
/// handful of instances can run, and the port range far from exhaustion.
pub const POD_COUNT_MAX: u32 = 20;
/// Instances (nodes) of one stage: each takes a whole node slot (anti-affinity).
pub const INSTANCE_COUNT_MAX: u32 = 10;
/// Resources of one stage.
pub const RESOURCES_MAX: usize = 10;
pub const RESOURCE_PATH_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageResourceSpec {
    /// Name of a model of the project.
    pub model: String,
    pub resource_path: String,
    pub pod_count: u32,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub description: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub resources: Vec<StageResourceSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub name: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub stage: StageSpec,
}

impl EndpointSpec {
    /// Rules that need no cluster state; model and instance type names are resolved
    /// by the state machine.
    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        validate::description("description", &self.description)?;
        validate::tags("tags", &self.tags)?;
        self.stage.validate("stage")
    }
}

impl StageSpec {
    /// `prefix` is where the stage sits in the request (`stage`).
    pub fn validate(&self, prefix: &str) -> Validated {
        validate::name(&format!("{prefix}.name"), &self.name)?;
        validate::description(&format!("{prefix}.description"), &self.description)?;
        validate::non_empty_bounded(&format!("{prefix}.instance_type"), &self.instance_type, validate::NAME_MAX)?;
        if !(1..=INSTANCE_COUNT_MAX).contains(&self.instance_count) {
            return Err(ValidationError::new(
                format!("{prefix}.instance_count"),
                format!("must be between 1 and {INSTANCE_COUNT_MAX}"),
            ));
        }
        if self.resources.is_empty() {
            return Err(ValidationError::new(format!("{prefix}.resources"), "at least one stage resource is required"));
        }
        if self.resources.len() > RESOURCES_MAX {
            return Err(ValidationError::new(
                format!("{prefix}.resources"),
                format!("at most {RESOURCES_MAX} resources are allowed, got {}", self.resources.len()),
            ));
        }
        for (i, r) in self.resources.iter().enumerate() {
            r.validate(&format!("{prefix}.resources[{i}]"))?;
        }
        unique_paths(prefix, self.resources.iter().map(|r| r.resource_path.as_str()))
    }
}

impl StageResourceSpec {
    pub fn validate(&self, prefix: &str) -> Validated {
        validate::name(&format!("{prefix}.model"), &self.model)?;
        resource_path(&format!("{prefix}.resource_path"), &self.resource_path)?;
        if !(1..=POD_COUNT_MAX).contains(&self.pod_count) {
            return Err(ValidationError::new(
                format!("{prefix}.pod_count"),
                format!("must be between 1 and {POD_COUNT_MAX}"),
            ));
        }
        validate::description(&format!("{prefix}.description"), &self.description)
    }
}

/// `/a/b`: starts with '/', segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`, at
/// most 255 characters, and not under `/v1/` or `/v2/` (the gateway forwards those to
/// the model server's protocol, so a resource there could never be reached).
pub fn resource_path(field: &str, path: &str) -> Validated {
    if path.len() > RESOURCE_PATH_MAX {
        return Err(ValidationError::new(field, format!("must be at most {RESOURCE_PATH_MAX} characters")));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(ValidationError::new(field, "must start with '/'"));
    };
    for seg in rest.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(ValidationError::new(field, "must not have empty, '.' or '..' segments"));
        }
        if !seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(ValidationError::new(field, "segments may contain only letters, digits, '.', '_' and '-'"));
        }
    }
    let first = rest.split('/').next().unwrap_or_default();
    if first == "v1" || first == "v2" {
        return Err(ValidationError::new(field, "must not start with /v1 or /v2 (reserved for the model protocol)"));
    }
    Ok(())
}

/// Resource paths are unique within a stage.
pub fn unique_paths<'a>(prefix: &str, paths: impl Iterator<Item = &'a str>) -> Validated {
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in paths.enumerate() {
        if !seen.insert(p) {
            return Err(ValidationError::new(
                format!("{prefix}.resources[{i}].resource_path"),
                format!("duplicate resource path '{p}' in the stage"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub mod fixtures {
    use super::*;

    pub fn resource(model: &str, path: &str, pods: u32) -> StageResourceSpec {
        StageResourceSpec {
            model: model.into(),
            resource_path: path.into(),
            pod_count: pods,
            description: String::new(),
        }
    }

    pub fn stage(name: &str) -> StageSpec {
        StageSpec {
            name: name.into(),
            description: String::new(),
            instance_type: "m1".into(),
            instance_count: 1,
            resources: vec![resource("iris", "/inference", 1)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    fn endpoint() -> EndpointSpec {
        EndpointSpec { name: "ep".into(), description: String::new(), tags: vec![], stage: stage("default") }
    }

    #[test]
    fn limits_at_and_past_their_edges() {
        let mut e = endpoint();
        e.stage.instance_count = INSTANCE_COUNT_MAX;
        e.stage.resources = (0..RESOURCES_MAX).map(|i| resource("iris", &format!("/r{i}"), POD_COUNT_MAX)).collect();
        e.stage.resources[0].resource_path = format!("/{}", "a".repeat(RESOURCE_PATH_MAX - 1));
        assert_eq!(e.validate(), Ok(()));

        type Case = (&'static str, Box<dyn Fn(&mut EndpointSpec)>);
        let cases: Vec<Case> = vec![
            ("name", Box::new(|e| e.name = "Bad".into())),
            ("stage.name", Box::new(|e| e.stage.name = String::new())),
            ("stage.instance_count", Box::new(|e| e.stage.instance_count = 0)),
            ("stage.instance_count", Box::new(|e| e.stage.instance_count = INSTANCE_COUNT_MAX + 1)),
            ("stage.resources", Box::new(|e| e.stage.resources.clear())),
            (
                "stage.resources",
                Box::new(|e| {
                    e.stage.resources = (0..=RESOURCES_MAX).map(|i| resource("m", &format!("/r{i}"), 1)).collect()
                }),
            ),
            ("stage.resources[0].pod_count", Box::new(|e| e.stage.resources[0].pod_count = 0)),
            ("stage.resources[0].pod_count", Box::new(|e| e.stage.resources[0].pod_count = POD_COUNT_MAX + 1)),
            ("stage.resources[0].model", Box::new(|e| e.stage.resources[0].model = String::new())),
            (
                "stage.resources[0].resource_path",
                Box::new(|e| e.stage.resources[0].resource_path = format!("/{}", "a".repeat(RESOURCE_PATH_MAX))),
            ),
            (
                "stage.resources[1].resource_path",
                Box::new(|e| e.stage.resources = vec![resource("m", "/x", 1), resource("m", "/x", 1)]),
            ),
            ("tags", Box::new(|e| e.tags = (0..11).map(|i| Tag { key: format!("k{i}"), value: "v".into() }).collect())),
        ];
        for (field, mutate) in cases {
            let mut e = endpoint();
            mutate(&mut e);
            assert_eq!(e.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn resource_paths() {
        for ok in ["/inference", "/a/b.c/d_e-f", "/v3", "/v1x"] {
            assert_eq!(resource_path("p", ok), Ok(()), "{ok}");
        }
        for bad in ["", "inference", "/", "/a//b", "/a/", "/./a", "/a/..", "/a b", "/v1/models", "/v2", "/é"] {
            assert!(resource_path("p", bad).is_err(), "{bad}");
        }
    }
}
