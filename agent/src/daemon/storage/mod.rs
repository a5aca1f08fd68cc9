//! Storage paths of a training → directories on this host, checked before the agent
//! touches them, and the copy of a finished training's outputs.
//!
//! ```text
//!   (field, access, StoragePath) + the assignment's grants
//!       │  locate (pure): granted?  which grant root?  deny list (as written)
//!       ▼
//!   Located { grant root on the host, segments below it }
//!       │  open_dir / create_dir: open the root, then each segment O_NOFOLLOW
//!       ▼  (a link, FIFO or file on the way is a reason); deny list (real path)
//!   Opened { descriptor, real path }  ──► bind-mount source / copy destination
//! ```
//!
//! `file:///x` is `/x` on the node; `nas://{id}:/x` is `x` under where NAS `id` is
//! mounted. The grants come with every assignment; none means nothing is granted. A
//! grant root itself is the operator's and is opened as written; below it nothing is
//! followed. Object storage (`obs://`) needs the download/upload stage, which this agent
//! does not have yet: such a training fails with a reason saying so.

mod beneath;
pub mod copy;
pub mod deny;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use gantry_domain::{Access, GrantDenied, StorageGrants, StoragePath, storage_grant};

pub use beneath::{WalkError, open_root, read_file_at, reopen_dir, walk};
pub use copy::{Copied, copy_tree};
pub use deny::DenyList;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{field}: NAS '{nas_id}' is not mounted on this node (configure storage.nas)")]
    UnknownNas { field: String, nas_id: String },
    #[error("{field}: object storage (obs://) is not supported by this agent yet; use nas:// or file://")]
    ObjectStorage { field: String },
    #[error("{field}: '{path}' must not leave its storage root")]
    Escapes { field: String, path: String },
    #[error(transparent)]
    NotGranted(#[from] GrantDenied),
    #[error("{field}: {path} is refused by every agent, even when granted: {why}")]
    Denied { field: String, path: String, why: String },
    #[error("{field}: {path}: {source}")]
    Walk { field: String, path: String, source: WalkError },
}

/// Where a granted path lies: the host directory of the grant root that covers it and
/// the segments below that root (none of them `.`, `..` or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub field: String,
    /// The storage path as the user wrote it (for reasons).
    pub shown: String,
    pub root: PathBuf,
    pub segments: Vec<String>,
}

impl Located {
    /// The path on the host as written (before any resolution).
    pub fn host_path(&self) -> PathBuf {
        self.segments.iter().fold(self.root.clone(), |p, s| p.join(s))
    }
}

/// An opened directory: the descriptor and where it really is.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    pub real: PathBuf,
}

/// This node's storage: where the NAS exports are mounted, and what is never used.
#[derive(Debug, Clone, Default)]
pub struct Storage {
    pub nas: BTreeMap<String, PathBuf>,
    pub deny: DenyList,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty() && *s != ".").collect()
}

impl Storage {
    /// Checks `path` against `grants` (`None`: nothing granted) and the deny list, and
    /// finds its grant root on this host. Pure but for the deny list's construction.
    pub fn locate(
        &self,
        grants: Option<&StorageGrants>,
        field: &str,
        access: Access,
        path: &StoragePath,
    ) -> Result<Located, StorageError> {
        if matches!(path, StoragePath::Obs { .. }) {
            return Err(StorageError::ObjectStorage { field: field.into() });
        }
        let none = StorageGrants::default();
        let grants = grants.unwrap_or(&none);
        grants.check(field, access, path)?;
        let candidates: Vec<&StoragePath> = match access {
            Access::Read => grants.read.iter().chain(&grants.write).collect(),
            Access::Write => grants.write.iter().collect(),
        };
        // The most specific grant: its root is the deepest directory opened as written.
        let root = candidates
            .into_iter()
            .filter(|g| storage_grant::covers(g, path))
            .max_by_key(|g| segments(g.path()).len())
            .ok_or_else(|| GrantDenied { field: field.into(), path: path.to_string(), access })?;
        let escapes = || StorageError::Escapes { field: field.into(), path: path.to_string() };
        let all = segments(path.path());
        if all.contains(&"..") {
            return Err(escapes());
        }
        let root_segments = segments(root.path());
        let below = all.get(root_segments.len()..).ok_or_else(escapes)?;
        let base = match root {
            StoragePath::File { .. } => PathBuf::from("/"),
            StoragePath::Nas { nas_id, .. } => self
                .nas
                .get(nas_id)
                .cloned()
                .ok_or_else(|| StorageError::UnknownNas { field: field.into(), nas_id: nas_id.clone() })?,
            StoragePath::Obs { .. } => return Err(StorageError::ObjectStorage { field: field.into() }),
        };
        let located = Located {
            field: field.into(),
            shown: path.to_string(),
            root: root_segments.iter().fold(base, |p, s| p.join(s)),
            segments: below.iter().map(|s| (*s).to_string()).collect(),
        };
        self.check_deny(&located, &located.host_path())?;
        Ok(located)
    }

    fn check_deny(&self, at: &Located, host: &Path) -> Result<(), StorageError> {
        self.deny.check(host).map_err(|why| StorageError::Denied {
            field: at.field.clone(),
            path: at.shown.clone(),
            why,
        })
    }

    fn walk_error(at: &Located, source: WalkError) -> StorageError {
        StorageError::Walk { field: at.field.clone(), path: at.shown.clone(), source }
    }

    /// Opens an existing directory (an input: algorithm, dataset, input checkpoint).
    pub fn open_dir(&self, at: &Located) -> Result<Opened, StorageError> {
        self.open(at, false)
    }

    /// Opens a directory to write into, making the missing ones (the grant root
    /// included: it is the operator's).
    pub fn create_dir(&self, at: &Located) -> Result<Opened, StorageError> {
        if !at.root.exists() {
            std::fs::create_dir_all(&at.root)
                .map_err(|source| Self::walk_error(at, WalkError::Io { path: at.root.clone(), source }))?;
        }
        self.open(at, true)
    }

    fn open(&self, at: &Located, create: bool) -> Result<Opened, StorageError> {
        let (root, real_root) = open_root(&at.root).map_err(|e| Self::walk_error(at, e))?;
        // Checked before the walk creates anything: the grant root may be a link the
        // operator made into a denied place.
        let real = at.segments.iter().fold(real_root, |p, s| p.join(s));
        self.check_deny(at, &real)?;
        let segs: Vec<&OsStr> = at.segments.iter().map(OsStr::new).collect();
        let fd = walk(&root, &at.root, &segs, create).map_err(|e| Self::walk_error(at, e))?;
        Ok(Opened { fd, real })
    }
}

#[cfg(test)]
mod tests;
