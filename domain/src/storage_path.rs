//! Storage locations users give for algorithms, datasets, checkpoints, outputs and model
//! artifacts.
//!
//! | form | meaning |
//! | --- | --- |
//! | `obs://{endpoint}/{container}/{path}` | S3-compatible object storage (`endpoint` is `host[:port]`) |
//! | `nas://{NAS ID}:/{path}` | a NAS export the operator mapped to a host mount point on every agent |
//! | `file:///{absolute path}` | a local directory (the embedded single-node default) |
//!
//! `..` segments are rejected in every form: a path never escapes its root.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoragePath {
    Obs { endpoint: String, container: String, path: String },
    Nas { nas_id: String, path: String },
    File { path: String },
}

const FORMS: &str = "must be obs://{endpoint}/{container}/{path}, nas://{NAS ID}:/{path} or file:///{absolute path}";

impl StoragePath {
    /// Parses and checks the form of `value`; errors name `field`.
    pub fn parse(field: &str, value: &str) -> Result<StoragePath, ValidationError> {
        let err = |rule: &str| ValidationError::new(field, rule.to_string());
        if value.len() > 1024 {
            return Err(err("must be at most 1024 characters"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err("must not contain whitespace or control characters"));
        }
        let parsed = if let Some(rest) = value.strip_prefix("obs://") {
            let mut parts = rest.splitn(3, '/');
            let endpoint = parts.next().unwrap_or_default();
            let container = parts.next().unwrap_or_default();
            let path = parts.next().unwrap_or_default().trim_end_matches('/');
            if endpoint.is_empty() || container.is_empty() {
                return Err(err("obs:// paths must be obs://{endpoint}/{container}/{path}"));
            }
            if !endpoint.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')) {
                return Err(err("obs:// endpoint must be a host name with an optional :port"));
            }
            StoragePath::Obs { endpoint: endpoint.into(), container: container.into(), path: path.into() }
        } else if let Some(rest) = value.strip_prefix("nas://") {
            let Some((nas_id, path)) = rest.split_once(":/") else {
                return Err(err("nas:// paths must be nas://{NAS ID}:/{path}"));
            };
            if nas_id.is_empty() || !nas_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return Err(err("nas:// NAS ID must be non-empty letters, digits, '-', '_' or '.'"));
            }
            StoragePath::Nas { nas_id: nas_id.into(), path: format!("/{}", path.trim_end_matches('/')) }
        } else if let Some(rest) = value.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(err("file:// paths must be absolute: file:///{path}"));
            }
            let trimmed = rest.trim_end_matches('/');
            StoragePath::File { path: if trimmed.is_empty() { "/".into() } else { trimmed.into() } }
        } else {
            return Err(err(FORMS));
        };
        if parsed.path().split('/').any(|seg| seg == "..") {
            return Err(err("must not contain '..' segments"));
        }
        // Host paths are used as written, never URL-decoded: a `%2e%2e` that some other
        // tool would decode into `..` is refused rather than left ambiguous.
        if !matches!(parsed, StoragePath::Obs { .. }) && parsed.path().contains('%') {
            return Err(err("file:// and nas:// paths must not contain '%' (no percent-encoding)"));
        }
        Ok(parsed)
    }

    /// Parses an optional path: an empty string means "not given".
    pub fn parse_optional(field: &str, value: &str) -> Result<Option<StoragePath>, ValidationError> {
        if value.is_empty() { Ok(None) } else { StoragePath::parse(field, value).map(Some) }
    }

    /// The path part (object key prefix, path inside the NAS export, or local path).
    pub fn path(&self) -> &str {
        match self {
            StoragePath::Obs { path, .. } | StoragePath::Nas { path, .. } | StoragePath::File { path } => path,
        }
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            StoragePath::Obs { .. } => "obs",
            StoragePath::Nas { .. } => "nas",
            StoragePath::File { .. } => "file",
        }
    }
}

impl fmt::Display for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoragePath::Obs { endpoint, container, path } if path.is_empty() => {
                write!(f, "obs://{endpoint}/{container}")
            }
            StoragePath::Obs { endpoint, container, path } => write!(f, "obs://{endpoint}/{container}/{path}"),
            StoragePath::Nas { nas_id, path } => write!(f, "nas://{nas_id}:{path}"),
            StoragePath::File { path } => write!(f, "file://{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms_and_round_trips() {
        for s in [
            "obs://s3.local:9000/bucket/algos/mnist",
            "obs://s3.local/bucket",
            "nas://nas-01:/exports/data",
            "file:///var/lib/gantry/data",
        ] {
            let p = StoragePath::parse("f", s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(StoragePath::parse("f", &p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn rejects_malformed_paths_naming_the_field() {
        for s in [
            "",
            "s3://bucket/x",
            "obs://",
            "obs://host",
            "obs://ho st/b/p",
            "nas://nas-01/data",
            "nas://:/data",
            "file://relative/path",
            "file:///a/../etc",
            "file:///srv/%2e%2e/etc",
            "nas://n:/a/%2E%2E",
            "obs://h/b/../../x",
            "/plain/path",
        ] {
            let err = StoragePath::parse("datasets[0].path", s).unwrap_err();
            assert_eq!(err.field, "datasets[0].path", "{s}");
        }
    }
}
