//! `requirements.txt`: containers cannot reach a package index (there is no registry,
//! and GPU servers are often offline), so the agent downloads wheels on the host and the
//! launcher installs them with `--no-index`.
//!
//! ```text
//!   algorithm dir (no link followed) ─► requirements.txt (+ -r/-c files inside it)
//!        └─► lint (contract::requirements) ─► the accepted lines, in a file the agent writes
//!              └─► pip download --only-binary=:all: --python-version … --platform …
//!                    as an unprivileged user, in a scratch directory it owns
//!                      └─► regular files copied to the container's wheels directory
//! ```
//!
//! Nothing the user wrote reaches pip's command line, and nothing is built: a package
//! without a wheel for the image is refused by name (building a source distribution runs
//! its code on the node).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::storage::{WalkError, copy_tree, open_root, read_file_at, reopen_dir, walk};
use crate::contract::requirements::{Line, lint};

/// Longest a download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// `-r`/`-c` nesting and file count bounds (a cycle ends at the depth bound).
const MAX_INCLUDE_DEPTH: usize = 5;
const MAX_FILES: usize = 32;
/// Largest requirements file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const TOP: &str = "requirements.txt";

/// How pip runs on this node (`[requirements]` in the agent config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipConfig {
    /// The interpreter that runs `-m pip` (it must be executable by `uid`).
    pub python: String,
    /// The workload image's Python, implementation and platforms the wheels are for.
    pub python_version: String,
    pub implementation: String,
    pub platforms: Vec<String>,
    /// Who pip runs as when the agent runs as root (default: nobody).
    pub uid: u32,
    pub gid: u32,
}

impl Default for PipConfig {
    fn default() -> Self {
        PipConfig {
            python: "python3".into(),
            python_version: "3.11".into(),
            implementation: "cp".into(),
            platforms: vec!["manylinux2014_x86_64".into(), "manylinux_2_17_x86_64".into(), "any".into()],
            uid: 65534,
            gid: 65534,
        }
    }
}

/// The requirement and constraint lines of an algorithm, after linting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub requirements: Vec<String>,
    pub constraints: Vec<String>,
}

/// Reads and lints `requirements.txt` and every file it includes, from the algorithm
/// directory `algorithm` (an opened descriptor). `None` when there is no
/// `requirements.txt`. The error is the user-facing reason.
pub fn collect(algorithm: &OwnedFd) -> Result<Option<Collected>, String> {
    let mut out = Collected::default();
    let mut seen = BTreeSet::new();
    // (path segments, constraint, depth, who included it)
    let mut queue = vec![(vec![TOP.to_string()], false, 0usize, None::<String>)];
    while let Some((path, constraint, depth, from)) = queue.pop() {
        let name = path.join("/");
        if !seen.insert((path.clone(), constraint)) {
            continue;
        }
        if seen.len() > MAX_FILES {
            return Err(format!("requirements.txt includes more than {MAX_FILES} files"));
        }
        let shown = from.clone().unwrap_or_else(|| name.clone());
        let text = match read(algorithm, &path) {
            Ok(Some(text)) => text,
            Ok(None) if from.is_none() => return Ok(None),
            Ok(None) => return Err(format!("{shown} names {name}, which does not exist in the algorithm directory")),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        let text = String::from_utf8(text).map_err(|_| format!("{name} is not UTF-8 text"))?;
        let dir = &path[..path.len() - 1];
        for line in lint(&name, dir, &text).map_err(|e| e.to_string())? {
            match line {
                Line::Requirement(r) if constraint => out.constraints.push(r),
                Line::Requirement(r) => out.requirements.push(r),
                Line::Include { constraint: c, path, line } => {
                    if depth + 1 > MAX_INCLUDE_DEPTH {
                        return Err(format!("{name} line {line}: -r/-c nested more than {MAX_INCLUDE_DEPTH} deep"));
                    }
                    let from = format!("{name} line {line}: -{} {}", if c { 'c' } else { 'r' }, path.join("/"));
                    // pip reads a file included from a constraints file as constraints.
                    queue.push((path, constraint || c, depth + 1, Some(from)));
                }
            }
        }
    }
    Ok(Some(out))
}

fn read(algorithm: &OwnedFd, path: &[String]) -> Result<Option<Vec<u8>>, WalkError> {
    let (name, dirs) = path.split_last().ok_or_else(|| WalkError::Missing(PathBuf::new()))?;
    let dirs: Vec<&OsStr> = dirs.iter().map(OsStr::new).collect();
    let shown = Path::new(&path.join("/")).to_path_buf();
    let dir = match walk(algorithm, Path::new(""), &dirs, false) {
        Ok(d) => d,
        Err(WalkError::Missing(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let dir = reopen_dir(&dir).map_err(|source| WalkError::Io { path: shown.clone(), source })?;
    read_file_at(&dir, OsStr::new(name), MAX_FILE_BYTES, &shown)
}

/// Downloads the wheels `wanted` needs into `dest` (created). The error is the
/// user-facing reason.
pub async fn download(wanted: &Collected, dest: &Path, pip: &PipConfig) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("requirements.txt: {what}: {e}");
    let scratch = Scratch::new(wanted, pip).map_err(|e| fail("preparing pip's scratch directory", e))?;
    let mut cmd = tokio::process::Command::new(&pip.python);
    cmd.args(["-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--only-binary=:all:"]).args([
        "--implementation",
        &pip.implementation,
        "--python-version",
        &pip.python_version,
    ]);
    for p in &pip.platforms {
        cmd.args(["--platform", p]);
    }
    cmd.arg("--dest").arg(scratch.dir.path().join("dest")).arg("-r").arg(scratch.dir.path().join("requirements.txt"));
    if !wanted.constraints.is_empty() {
        cmd.arg("-c").arg(scratch.dir.path().join("constraints.txt"));
    }
    cmd.current_dir(scratch.dir.path())
        .env("HOME", scratch.dir.path().join("home"))
        .env("XDG_CACHE_HOME", scratch.dir.path().join("home/.cache"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if scratch.drop_privileges {
        cmd.uid(pip.uid).gid(pip.gid);
    }
    let out = match tokio::time::timeout(DOWNLOAD_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("requirements.txt: pip download took longer than {DOWNLOAD_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("requirements.txt: cannot run {} -m pip on the node: {e}", pip.python)),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        return Err(failure(&String::from_utf8_lossy(&out.stderr), pip));
    }
    std::fs::create_dir_all(dest).map_err(|e| fail(&format!("creating {}", dest.display()), e))?;
    let (to, _) = open_root(dest).map_err(|e| format!("requirements.txt: {e}"))?;
    let from = scratch.dir.path().join("dest");
    tokio::task::spawn_blocking(move || copy_tree(&from, &to))
        .await
        .map_err(|e| format!("requirements.txt: copying the wheels: {e}"))?
        .map_err(|e| fail("copying the wheels", e))?;
    Ok(())
}

/// FAIL TRAIN's reason for a failed download: the package without a wheel by name when
/// pip says so, and pip's last lines.
fn failure(stderr: &str, pip: &PipConfig) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    let missing = lines.iter().find_map(|l| l.split_once("No matching distribution found for ").map(|(_, p)| p));
    match missing {
        Some(pkg) => format!(
            "requirements.txt could not be installed: no wheel of {pkg} for {}{} on {} (Gantry downloads wheels only \
             and never builds a source distribution on the node, because building one runs its code); pip: {tail}",
            pip.implementation,
            pip.python_version,
            pip.platforms.join(", "),
        ),
        None => format!("requirements.txt could not be installed (pip download failed): {tail}"),
    }
}

/// pip's working directory: the linted lines, a home and a download directory owned by
/// the user pip runs as. Removed when dropped.
struct Scratch {
    dir: tempfile::TempDir,
    drop_privileges: bool,
}

impl Scratch {
    fn new(wanted: &Collected, pip: &PipConfig) -> std::io::Result<Scratch> {
        let drop_privileges = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new().prefix("gantry-pip-").tempdir()?;
        // Readable by pip's user; writable only where it must write.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let write = |name: &str, lines: &[String]| {
            let mut text = lines.join("\n");
            text.push('\n');
            let path = dir.path().join(name);
            std::fs::write(&path, text)?;
            // Whatever the agent's umask: pip's user must read it, and only read it.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        };
        write("requirements.txt", &wanted.requirements)?;
        write("constraints.txt", &wanted.constraints)?;
        for sub in ["home", "dest"] {
            let p = dir.path().join(sub);
            std::fs::create_dir(&p)?;
            if drop_privileges {
                std::os::unix::fs::chown(&p, Some(pip.uid), Some(pip.gid))?;
            }
        }
        Ok(Scratch { dir, drop_privileges })
    }
}

#[cfg(test)]
#[path = "wheels_tests.rs"]
mod tests;
