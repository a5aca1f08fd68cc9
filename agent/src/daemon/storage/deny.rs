//! The host paths an agent refuses to mount or write even when a project was granted
//! them: a grant is operator configuration, and one mistaken grant (`file:///`) must not
//! hand a training the host.
//!
//! Two kinds of entry:
//!
//! | kind | refused | entries |
//! | --- | --- | --- |
//! | tree | the path, everything beneath it, and every ancestor of it | `/etc`, `/proc`, `/sys`, `/dev`, `/boot`, `/run`, `/var/run`, `/var/lib/docker`, the Docker socket's directory, the agent's state directory, `storage.deny` |
//! | exact | the path and every ancestor of it, not what lies beneath | `/`, `/root` |
//!
//! Ancestors are refused because mounting or writing a directory exposes everything in
//! it: `file:///var` contains the Docker socket. `/root` is exact because the
//! single-node default grants a directory under the data dir, which is under `/root` on
//! a machine run as root; what lies beneath `/root` is usable only where a grant
//! explicitly names it. Each entry is also kept in its canonical form (`/var/run` is
//! usually a link to `/run`), and callers check both the path as written and the
//! resolved one.

use std::path::{Component, Path, PathBuf};

/// Where the Docker engine's socket is: the configured one, `DOCKER_HOST` when it is a
/// `unix://` address, else the default.
pub fn docker_socket(configured: Option<&str>) -> PathBuf {
    if let Some(path) = configured {
        return PathBuf::from(path.strip_prefix("unix://").unwrap_or(path));
    }
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    /// Refuse what lies beneath too.
    tree: bool,
}

/// The deny list of one agent (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct DenyList {
    entries: Vec<Entry>,
}

// The same system directories the scheduler refuses to grant.
use gantry_domain::storage_grant::{SYSTEM_EXACT as EXACT, SYSTEM_TREES as TREES};

impl DenyList {
    /// The fixed entries plus this agent's own: its state directory, the Docker socket's
    /// directory and the operator's extra paths (`storage.deny`, e.g. the scheduler's
    /// data directory).
    pub fn new(state_dir: &Path, docker_socket: &Path, extra: &[PathBuf]) -> DenyList {
        let mut list = DenyList::default();
        for p in EXACT {
            list.add(Path::new(p), false);
        }
        for p in TREES {
            list.add(Path::new(p), true);
        }
        list.add(state_dir, true);
        if let Some(dir) = docker_socket.parent() {
            list.add(dir, true);
        }
        for p in extra {
            list.add(p, true);
        }
        list
    }

    fn add(&mut self, path: &Path, tree: bool) {
        let mut forms = vec![normalize(path)];
        // The canonical form catches a path reached through a link (`/var/run` → `/run`).
        if let Ok(real) = std::fs::canonicalize(path) {
            forms.push(normalize(&real));
        }
        for path in forms {
            let entry = Entry { path, tree };
            if !self.entries.contains(&entry) {
                self.entries.push(entry);
            }
        }
    }

    /// `Err(why)` when `path` (absolute) must not be mounted or written.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let path = normalize(path);
        for e in &self.entries {
            if path == e.path {
                return Err(format!("{} is on the agent's deny list", e.path.display()));
            }
            if e.path.starts_with(&path) {
                return Err(format!("it contains {}, which is on the agent's deny list", e.path.display()));
            }
            if e.tree && path.starts_with(&e.path) {
                return Err(format!("it is inside {}, which is on the agent's deny list", e.path.display()));
            }
        }
        Ok(())
    }
}

/// `path` without `.` components and repeated separators (lexical; `..` is kept, and
/// callers never pass one).
fn normalize(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> DenyList {
        DenyList::new(
            Path::new("/root/.local/share/gantry/agent"),
            Path::new("/var/run/docker.sock"),
            &[PathBuf::from("/root/.local/share/gantry/scheduler")],
        )
    }

    fn denied(p: &str) -> bool {
        list().check(Path::new(p)).is_err()
    }

    #[test]
    fn the_listed_trees_and_everything_beneath_them_are_refused() {
        for p in [
            "/etc",
            "/etc/cron.d",
            "/proc/self",
            "/sys/kernel",
            "/dev/sda",
            "/boot",
            "/run/docker.sock",
            "/var/run",
            "/var/run/secrets",
            "/var/lib/docker/volumes",
            "/root/.local/share/gantry/agent",
            "/root/.local/share/gantry/agent/identity",
            "/root/.local/share/gantry/scheduler/raft",
        ] {
            assert!(denied(p), "{p} must be refused");
        }
    }

    #[test]
    fn ancestors_of_a_denied_path_are_refused_because_they_contain_it() {
        for p in ["/", "/var", "/var/lib", "/root", "/root/.local", "/root/.local/share/gantry"] {
            assert!(denied(p), "{p} contains a denied path");
        }
        let e = list().check(Path::new("/var")).unwrap_err();
        assert!(e.contains("contains /var/run"), "{e}");
    }

    #[test]
    fn beneath_root_and_ordinary_paths_are_left_to_the_grants() {
        for p in [
            "/root/.local/share/gantry/storage/default",
            "/root/.local/share/gantry/storage/default/out",
            "/srv/data",
            "/tmp/x",
            "/home/alice/data",
            "/etcetera",
            "/var/lib/gantry-data",
            "/root/.local/share/gantry/agents-notes",
        ] {
            assert!(!denied(p), "{p} is not on the deny list");
        }
    }

    #[test]
    fn dot_components_and_repeated_slashes_do_not_hide_a_path() {
        assert!(denied("/./etc"));
        assert!(denied("//etc//passwd"));
        assert!(denied("/etc/./shadow"));
    }

    #[test]
    fn a_link_to_a_denied_path_is_refused_by_its_canonical_form() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::create_dir(&secret).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        // Denying the link denies the real directory too.
        let l = DenyList::new(Path::new("/nonexistent-state"), Path::new("/nonexistent/sock"), &[link]);
        assert!(l.check(&secret.join("x")).is_err());
    }

    #[test]
    fn the_docker_socket_comes_from_config_or_the_default() {
        assert_eq!(docker_socket(Some("/srv/d.sock")), PathBuf::from("/srv/d.sock"));
        assert_eq!(docker_socket(Some("unix:///srv/d.sock")), PathBuf::from("/srv/d.sock"));
    }
}
