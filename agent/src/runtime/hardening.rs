//! The security settings of a container, as typed data.
//!
//! Some protections are not settings at all: every container the runtime creates gets
//! an init process, `no-new-privileges`, every capability dropped, no privileged mode
//! and its own PID and IPC namespaces ([`ALWAYS`]); nothing in a [`ContainerSpec`]
//! can turn them off. What varies per workload kind is [`Hardening`]: the user, the
//! root filesystem, the writable tmpfs mounts, the PID limit and the few capabilities
//! given back (only from [`Capability`], a closed list of harmless ones).
//!
//! [`forbidden_mount`] is the rule that no workload ever sees the container engine's
//! socket: it is checked in [`ContainerSpec::validate`], so the real and the fake
//! runtime refuse the same specs.
//!
//! [`ContainerSpec`]: super::ContainerSpec
//! [`ContainerSpec::validate`]: super::ContainerSpec::validate

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The `no-new-privileges` security option: setuid binaries and file capabilities
/// cannot raise a process's privileges.
pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges:true";

/// What every container gets, whatever its spec says (documented in
/// `docs/agent.md`, "Container hardening").
pub const ALWAYS: &[&str] = &[
    "init (tini) as PID 1: zombies reaped, signals forwarded",
    NO_NEW_PRIVILEGES,
    "all capabilities dropped (then the spec's cap_add, from a closed list)",
    "not privileged; own PID and IPC namespaces",
    "no bind mount of the container engine's socket or any directory holding it",
];

/// Default `PidsLimit`: a generous ceiling for data-loader workers and compiler
/// threads that still stops a fork bomb from exhausting the node's PIDs.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// A numeric `uid:gid` (no name lookup: images need no `/etc/passwd` entry for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId {
    pub uid: u32,
    pub gid: u32,
}

impl UserId {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// A `uid:gid` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' must be a numeric uid:gid such as 1000:1000")]
pub struct BadUserId(pub String);

impl FromStr for UserId {
    type Err = BadUserId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadUserId(s.to_string());
        let (uid, gid) = s.split_once(':').ok_or_else(bad)?;
        let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        if !digits(uid) || !digits(gid) {
            return Err(bad());
        }
        Ok(UserId { uid: uid.parse().map_err(|_| bad())?, gid: gid.parse().map_err(|_| bad())? })
    }
}

impl Serialize for UserId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The capabilities a spec may add back after dropping all. Deliberately closed:
/// `SYS_ADMIN`, `NET_ADMIN`, `SYS_PTRACE`, `DAC_READ_SEARCH` and the like cannot be
/// expressed. Trainings add none; the list exists for workloads that run as root
/// (notebooks), which need these to manage their own files and users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    /// Change file owners inside the container (package managers as root).
    Chown,
    /// Root bypassing file permission bits inside the container's own files.
    DacOverride,
    /// Root changing modes of files it does not own (inside the container).
    Fowner,
    /// Switching users (`su`, `sudo` inside a notebook).
    Setuid,
    Setgid,
    /// Listening on ports below 1024 inside the container's own network namespace.
    NetBindService,
}

impl Capability {
    /// The engine's name (`CAP_CHOWN`).
    pub fn engine_name(&self) -> &'static str {
        match self {
            Capability::Chown => "CAP_CHOWN",
            Capability::DacOverride => "CAP_DAC_OVERRIDE",
            Capability::Fowner => "CAP_FOWNER",
            Capability::Setuid => "CAP_SETUID",
            Capability::Setgid => "CAP_SETGID",
            Capability::NetBindService => "CAP_NET_BIND_SERVICE",
        }
    }
}

/// A writable in-memory filesystem (Docker `Tmpfs`). Its pages count against the
/// container's memory limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    pub container_path: String,
    /// 0 = the engine's default (half the host's memory, still bounded by the
    /// container's memory limit).
    pub size_bytes: i64,
    /// Permission bits of its root, e.g. `0o1777` for `/tmp`.
    pub mode: u32,
    /// Owner of its root; `None` = root.
    pub owner: Option<UserId>,
}

/// The per-workload security settings (see the module doc for what is not one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardening {
    /// `None`: the image's user.
    pub user: Option<UserId>,
    /// The image's filesystem is mounted read-only; only mounts and tmpfs are
    /// writable.
    pub read_only_rootfs: bool,
    pub tmpfs: Vec<TmpfsMount>,
    /// At least 1 (Docker reads 0 and -1 as unlimited, which is never wanted).
    pub pids_limit: i64,
    pub cap_add: Vec<Capability>,
}

impl Default for Hardening {
    /// The image's user and a writable root; no tmpfs, the default PID limit, no
    /// capabilities.
    fn default() -> Self {
        Hardening {
            user: None,
            read_only_rootfs: false,
            tmpfs: Vec::new(),
            pids_limit: DEFAULT_PIDS_LIMIT,
            cap_add: Vec::new(),
        }
    }
}

/// The user trainings run as unless configured: the first regular user of most
/// distributions, and not root.
pub const DEFAULT_TRAINING_USER: UserId = UserId { uid: 1000, gid: 1000 };

/// The `[docker.hardening]` section of the agent's configuration: how workloads are
/// confined on this node.
///
/// ```toml
/// [docker.hardening]
/// training_user = "1000:1000"   # numeric uid:gid; never root
/// read_only_rootfs = true       # false for images that write into their own filesystem
/// pids_limit = 4096
/// tmp_size_mib = 0              # /tmp and HOME tmpfs size; 0 = bounded by the memory limit only
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHardeningConfig")]
pub struct HardeningConfig {
    pub training_user: UserId,
    pub read_only_rootfs: bool,
    pub pids_limit: i64,
    pub tmp_size_mib: u64,
}

impl Default for HardeningConfig {
    fn default() -> Self {
        HardeningConfig {
            training_user: DEFAULT_TRAINING_USER,
            read_only_rootfs: true,
            pids_limit: DEFAULT_PIDS_LIMIT,
            tmp_size_mib: 0,
        }
    }
}

/// [`HardeningConfig`] as written, before its rules are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHardeningConfig {
    training_user: UserId,
    read_only_rootfs: bool,
    pids_limit: i64,
    tmp_size_mib: u64,
}

impl Default for RawHardeningConfig {
    fn default() -> Self {
        let d = HardeningConfig::default();
        RawHardeningConfig {
            training_user: d.training_user,
            read_only_rootfs: d.read_only_rootfs,
            pids_limit: d.pids_limit,
            tmp_size_mib: d.tmp_size_mib,
        }
    }
}

impl TryFrom<RawHardeningConfig> for HardeningConfig {
    type Error = String;

    fn try_from(raw: RawHardeningConfig) -> Result<Self, String> {
        if raw.training_user.is_root() {
            return Err("docker.hardening.training_user must not be root (uid 0)".into());
        }
        if raw.pids_limit < 1 {
            return Err("docker.hardening.pids_limit must be at least 1".into());
        }
        Ok(HardeningConfig {
            training_user: raw.training_user,
            read_only_rootfs: raw.read_only_rootfs,
            pids_limit: raw.pids_limit,
            tmp_size_mib: raw.tmp_size_mib,
        })
    }
}

/// Unix sockets of container engines and the directories holding them. Binding any of
/// these (or an ancestor, such as `/` or `/var`) into a container hands it the engine,
/// which is root on the node.
const ENGINE_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/docker",
    "/run/docker",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
];

/// Why a bind mount of `host_path` is refused, or `None` if it is allowed: it is (or
/// contains, or resolves through symlinks to) a container engine's socket or the
/// directory holding it, or it is a Unix socket itself. `DOCKER_HOST` (a `unix://`
/// address) counts as one more engine socket.
pub fn forbidden_mount(host_path: &str) -> Option<String> {
    let mut sockets: Vec<PathBuf> = ENGINE_SOCKETS.iter().map(PathBuf::from).collect();
    if let Some(path) = std::env::var("DOCKER_HOST").ok().and_then(|h| h.strip_prefix("unix://").map(PathBuf::from)) {
        sockets.push(path);
    }
    let given = Path::new(host_path);
    // Both spellings: the path as written and where its symlinks lead (`/var/run` is
    // a link to `/run` on most systems).
    let mut candidates = vec![lexical(given)];
    if let Ok(real) = std::fs::canonicalize(given) {
        if is_socket(&real) {
            return Some(format!("mount source {host_path} is a Unix socket"));
        }
        candidates.push(real);
    }
    for socket in &sockets {
        let mut targets = vec![lexical(socket)];
        if let Ok(real) = std::fs::canonicalize(socket) {
            targets.push(real);
        }
        // The socket's directory too: binding it exposes the socket just the same.
        let dirs: Vec<PathBuf> = targets.iter().filter_map(|t| t.parent().map(Path::to_path_buf)).collect();
        for candidate in &candidates {
            if targets.iter().chain(&dirs).any(|t| t.starts_with(candidate)) {
                return Some(format!(
                    "mount source {host_path} would expose the container engine's socket {}",
                    socket.display()
                ));
            }
        }
    }
    None
}

/// `path` with `.` and `..` resolved by name (no file system access).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_parse_only_as_numbers() {
        assert_eq!("1000:1001".parse(), Ok(UserId { uid: 1000, gid: 1001 }));
        assert_eq!(UserId { uid: 7, gid: 8 }.to_string(), "7:8");
        for bad in ["", "1000", "a:b", "1000:", ":1", "-1:0", "1:2:3", "99999999999:0"] {
            assert!(bad.parse::<UserId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_configuration_refuses_root_and_no_pid_limit() {
        let parse = |text: &str| toml::from_str::<HardeningConfig>(text);
        assert_eq!(parse("").unwrap(), HardeningConfig::default());
        let c = parse("training_user = \"2000:3000\"\nread_only_rootfs = false\npids_limit = 10").unwrap();
        assert_eq!((c.training_user, c.read_only_rootfs, c.pids_limit), (UserId { uid: 2000, gid: 3000 }, false, 10));
        assert!(parse("training_user = \"0:0\"").unwrap_err().to_string().contains("must not be root"));
        assert!(parse("pids_limit = 0").unwrap_err().to_string().contains("at least 1"));
        assert!(parse("training_user = \"bob\"").is_err());
        assert!(parse("privileged = true").is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_engine_socket_its_directory_and_their_ancestors_are_forbidden() {
        for path in [
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/var/run",
            "/run",
            "/var",
            "/",
            "/var/run/../run/docker.sock",
            "/run/./docker.sock",
            "/run/containerd",
        ] {
            assert!(forbidden_mount(path).is_some(), "{path}");
        }
        for path in ["/srv/data", "/var/lib/gantry/work/w/0/model", "/run-not", "/tmp"] {
            assert_eq!(forbidden_mount(path), None, "{path}");
        }
    }

    #[test]
    fn a_symlink_to_the_socket_directory_and_any_socket_are_forbidden() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("sneaky");
        std::os::unix::fs::symlink("/var/run", &link).unwrap();
        assert!(forbidden_mount(&link.display().to_string()).is_some());

        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(forbidden_mount(&sock.display().to_string()).unwrap().contains("Unix socket"));
    }
}
