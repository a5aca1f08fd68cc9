//! Storage paths of a training form → directories on this host, and the copy of a
//! finished training's outputs to them.
//!
//! `file:///x` is `/x` on the node (the single-node default and shared mounts);
//! `nas://{id}:/x` is `x` under where the configured NAS `id` is mounted. Object
//! storage (`obs://`) needs the download/upload stage, which this agent does not have
//! yet: such a training fails with a reason saying so instead of running without data.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use gantry_domain::StoragePath;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    #[error("{field}: NAS '{nas_id}' is not mounted on this node (configure storage.nas)")]
    UnknownNas { field: String, nas_id: String },
    #[error("{field}: object storage (obs://) is not supported by this agent yet; use nas:// or file://")]
    ObjectStorage { field: String },
    #[error("{field}: '{path}' must not leave its storage root")]
    Escapes { field: String, path: String },
}

/// Where storage paths live on this node.
#[derive(Debug, Clone, Default)]
pub struct StorageRoots {
    pub nas: BTreeMap<String, PathBuf>,
}

impl StorageRoots {
    /// The host directory of `path` (pure: nothing is checked on disk).
    pub fn resolve(&self, field: &str, path: &StoragePath) -> Result<PathBuf, StorageError> {
        let (root, rel) = match path {
            StoragePath::File { path } => (PathBuf::from("/"), path.as_str()),
            StoragePath::Nas { nas_id, path } => {
                let root = self
                    .nas
                    .get(nas_id)
                    .ok_or_else(|| StorageError::UnknownNas { field: field.to_string(), nas_id: nas_id.clone() })?;
                (root.clone(), path.as_str())
            }
            StoragePath::Obs { .. } => return Err(StorageError::ObjectStorage { field: field.to_string() }),
        };
        let rel = Path::new(rel.trim_start_matches('/'));
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(StorageError::Escapes { field: field.to_string(), path: rel.display().to_string() });
        }
        Ok(root.join(rel))
    }
}

/// Copies the contents of `from` into `to` (created if missing), replacing files of
/// the same name. Symlinks are copied as links, never followed out of the tree.
/// Returns the number of files copied.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copied += copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target)?;
            copied += 1;
        } else {
            std::fs::copy(entry.path(), &target)?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> StorageRoots {
        StorageRoots { nas: BTreeMap::from([("nas-01".to_string(), PathBuf::from("/mnt/nas01"))]) }
    }

    #[test]
    fn paths_resolve_under_their_roots() {
        let r = roots();
        let file = StoragePath::File { path: "/data/x".into() };
        assert_eq!(r.resolve("f", &file).unwrap(), PathBuf::from("/data/x"));
        let nas = StoragePath::Nas { nas_id: "nas-01".into(), path: "/a/b".into() };
        assert_eq!(r.resolve("f", &nas).unwrap(), PathBuf::from("/mnt/nas01/a/b"));
    }

    #[test]
    fn unknown_nas_obs_and_escapes_are_errors_naming_the_field() {
        let r = roots();
        let e = r.resolve("datasets[0]", &StoragePath::Nas { nas_id: "x".into(), path: "/a".into() }).unwrap_err();
        assert!(e.to_string().starts_with("datasets[0]: NAS 'x'"));
        let obs = StoragePath::Obs { endpoint: "e".into(), container: "c".into(), path: "p".into() };
        assert!(matches!(r.resolve("output_path", &obs), Err(StorageError::ObjectStorage { .. })));
        let up = StoragePath::Nas { nas_id: "nas-01".into(), path: "/a/../../etc".into() };
        assert!(matches!(r.resolve("f", &up), Err(StorageError::Escapes { .. })));
    }

    #[test]
    fn copy_tree_copies_nested_files() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("model.bin"), b"weights").unwrap();
        std::fs::write(src.path().join("sub/config.json"), b"{}").unwrap();
        let out = dst.path().join("out");
        assert_eq!(copy_tree(src.path(), &out).unwrap(), 2);
        assert_eq!(std::fs::read(out.join("model.bin")).unwrap(), b"weights");
        assert_eq!(std::fs::read(out.join("sub/config.json")).unwrap(), b"{}");
    }
}
