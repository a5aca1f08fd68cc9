//! Storage grants: which `file://` roots and `nas://` exports a project may read and
//! write. Operators grant them per project; nothing is granted by default.
//!
//! A grant covers its root and everything beneath it, by whole path segments
//! (`file:///srv/a` covers `file:///srv/a/b`, never `file:///srv/ab`). A write grant
//! also lets the project read what it wrote (a later training's checkpoint input is an
//! earlier one's checkpoint output). Object storage (`obs://`) is governed by the
//! project's object-storage credentials, not by grants.
//!
//! The scheduler checks every path of a request against the grants at create time; the
//! agent checks again, on the host, before it touches the path.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::storage_path::StoragePath;

/// Host directories refused with everything beneath them (and every ancestor, such as
/// `/`): the host's configuration, kernel interfaces, devices, boot files, the runtime
/// directory that holds the Docker socket and the engine's own data. Grants may not
/// name them, and agents refuse them again on the host, with their own state directory
/// and the Docker socket's directory added.
pub const SYSTEM_TREES: [&str; 8] = ["/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run", "/var/lib/docker"];

/// Host directories refused themselves (and their ancestors) but not what lies beneath:
/// single-user machines keep Gantry's state in root's home.
pub const SYSTEM_EXACT: [&str; 2] = ["/", "/root"];

/// Whether a `file://` path may not be granted: it is, contains or lies beneath one of
/// [`SYSTEM_TREES`], it is or contains one of [`SYSTEM_EXACT`], or it is a hidden entry
/// at the top of root's home (`/root/.ssh`). A directory an operator made deeper under
/// `/root` (`/root/.local/share/gantry/storage`) may be granted.
pub fn is_system_path(path: &str) -> bool {
    let split = |p: &str| p.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_owned).collect::<Vec<_>>();
    let segments = split(path);
    let tree = SYSTEM_TREES.iter().map(|t| split(t)).any(|t| t.starts_with(&segments) || segments.starts_with(&t));
    let exact = SYSTEM_EXACT.iter().map(|e| split(e)).any(|e| e.starts_with(&segments));
    let root_dotfile = matches!(&segments[..], [root, entry] if root == "root" && entry.starts_with('.'));
    tree || exact || root_dotfile
}

/// What a workload does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Algorithm, datasets, input checkpoint, model artifact.
    Read,
    /// Output, checkpoint output, a notebook's NAS mount.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

/// One project's grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageGrants {
    pub read: Vec<StoragePath>,
    pub write: Vec<StoragePath>,
}

/// A path outside what the project was granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {path} is outside the storage this project may {access} (ask an operator to grant it)")]
pub struct GrantDenied {
    pub field: String,
    pub path: String,
    pub access: Access,
}

impl StorageGrants {
    /// Whether `path` may be used for `access`.
    pub fn allows(&self, access: Access, path: &StoragePath) -> bool {
        if matches!(path, StoragePath::Obs { .. }) {
            return true;
        }
        let under = |roots: &[StoragePath]| roots.iter().any(|root| covers(root, path));
        match access {
            Access::Read => under(&self.read) || under(&self.write),
            Access::Write => under(&self.write),
        }
    }

    /// [`Self::allows`] as an error naming `field`.
    pub fn check(&self, field: &str, access: Access, path: &StoragePath) -> Result<(), GrantDenied> {
        if self.allows(access, path) {
            Ok(())
        } else {
            Err(GrantDenied { field: field.to_string(), path: path.to_string(), access })
        }
    }

    /// Checks every `(field, access, path)` of a request; the first denial wins.
    pub fn check_all<'a>(
        &self,
        paths: impl IntoIterator<Item = (String, Access, &'a StoragePath)>,
    ) -> Result<(), GrantDenied> {
        paths.into_iter().try_for_each(|(field, access, path)| self.check(&field, access, path))
    }

    /// Grants may name only `file://` and `nas://` roots, and no system directory.
    pub fn validate(&self, field: &str) -> Result<(), crate::ValidationError> {
        for (kind, roots) in [("read", &self.read), ("write", &self.write)] {
            for (i, root) in roots.iter().enumerate() {
                let field = format!("{field}.{kind}[{i}]");
                match root {
                    StoragePath::Obs { .. } => {
                        return Err(crate::ValidationError::new(
                            field,
                            "object storage is governed by credentials, not grants: grant file:// or nas:// roots",
                        ));
                    }
                    StoragePath::File { path } if is_system_path(path) => {
                        return Err(crate::ValidationError::new(
                            field,
                            format!(
                                "{root} is or contains a system directory ({}, {}) and cannot be granted",
                                SYSTEM_TREES.join(", "),
                                SYSTEM_EXACT.join(", ")
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// `root` covers `path`: same storage (scheme, NAS id) and `root`'s segments are a
/// prefix of `path`'s.
pub fn covers(root: &StoragePath, path: &StoragePath) -> bool {
    let same_storage = match (root, path) {
        (StoragePath::File { .. }, StoragePath::File { .. }) => true,
        (StoragePath::Nas { nas_id: a, .. }, StoragePath::Nas { nas_id: b, .. }) => a == b,
        (
            StoragePath::Obs { endpoint: e1, container: c1, .. },
            StoragePath::Obs { endpoint: e2, container: c2, .. },
        ) => e1 == e2 && c1 == c2,
        _ => false,
    };
    if !same_storage {
        return false;
    }
    let segments = |p: &str| p.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_owned).collect::<Vec<_>>();
    let (root, path) = (segments(root.path()), segments(path.path()));
    path.starts_with(&root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StoragePath {
        StoragePath::parse("f", s).unwrap()
    }

    fn grants() -> StorageGrants {
        StorageGrants {
            read: vec![p("file:///srv/data"), p("nas://nas-01:/team-a")],
            write: vec![p("file:///srv/out")],
        }
    }

    #[test]
    fn a_grant_covers_its_root_and_below_by_whole_segments() {
        let g = grants();
        assert!(g.allows(Access::Read, &p("file:///srv/data")));
        assert!(g.allows(Access::Read, &p("file:///srv/data/mnist/train")));
        assert!(!g.allows(Access::Read, &p("file:///srv/database")));
        assert!(!g.allows(Access::Read, &p("file:///srv")));
        assert!(!g.allows(Access::Read, &p("file:///etc")));
        assert!(g.allows(Access::Read, &p("nas://nas-01:/team-a/x")));
        assert!(!g.allows(Access::Read, &p("nas://nas-02:/team-a/x")));
        assert!(!g.allows(Access::Read, &p("nas://nas-01:/team-b")));
    }

    #[test]
    fn write_needs_a_write_grant_and_implies_read() {
        let g = grants();
        assert!(!g.allows(Access::Write, &p("file:///srv/data/x")));
        assert!(g.allows(Access::Write, &p("file:///srv/out/run-1")));
        assert!(g.allows(Access::Read, &p("file:///srv/out/run-1/checkpoints")));
    }

    #[test]
    fn nothing_is_granted_by_default_and_obs_is_not_governed_by_grants() {
        let none = StorageGrants::default();
        assert!(!none.allows(Access::Read, &p("file:///tmp")));
        assert!(!none.allows(Access::Read, &p("file:///")));
        assert!(none.allows(Access::Write, &p("obs://s3.local/bucket/x")));
    }

    #[test]
    fn a_root_grant_covers_everything_of_its_storage() {
        let g = StorageGrants { read: vec![p("file:///")], write: vec![] };
        assert!(g.allows(Access::Read, &p("file:///etc/shadow")));
        assert!(!g.allows(Access::Read, &p("nas://n:/x")));
    }

    #[test]
    fn system_directories_and_their_ancestors_cannot_be_granted() {
        for path in [
            "/",
            "/etc",
            "/etc/cron.d",
            "/proc/self",
            "/var",
            "/var/run/docker.sock",
            "/run",
            "/root",
            "/root/.ssh",
            "/dev/sda",
            "/sys/kernel",
            "/boot",
        ] {
            assert!(is_system_path(path), "{path}");
        }
        for path in [
            "/srv/data",
            "/home/alice/data",
            "/root/.local/share/gantry/storage/default",
            "/var/lib/gantry",
            "/tmp/x",
            "/etcetera",
            "/mnt/nas",
        ] {
            assert!(!is_system_path(path), "{path}");
        }
        let g = StorageGrants { read: vec![p("file:///srv")], write: vec![p("file:///")] };
        assert_eq!(g.validate("grants").unwrap_err().field, "grants.write[0]");
        let g = StorageGrants { read: vec![p("obs://h/b")], write: vec![] };
        assert_eq!(g.validate("grants").unwrap_err().field, "grants.read[0]");
        assert!(grants().validate("grants").is_ok());
    }

    #[test]
    fn denial_names_the_field_and_access() {
        let e = grants().check("output_path", Access::Write, &p("file:///etc/cron.d")).unwrap_err();
        assert_eq!(e.to_string().split(':').next(), Some("output_path"));
        assert!(e.to_string().contains("file:///etc/cron.d"));
        assert!(e.to_string().contains("write"));
    }
}
