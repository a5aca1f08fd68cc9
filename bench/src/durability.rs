//! What makes a replicated-write figure honest, checked before it is measured: the
//! data is on a real disk and every member really fsyncs.
//!
//! ```text
//!   data dir ─canonicalize─▶ /proc/self/mountinfo: longest mount point above it ─▶ refuse tmpfs/ramfs
//!   member pid ─strace -f -e fsync,fdatasync─▶ N acknowledged writes ─▶ refuse < N/2 syncs
//!   etcd pid ─/proc/PID/cmdline + environ─▶ refuse --unsafe-no-fsync
//! ```
//!
//! The syscall count is the check that cannot be fooled by configuration: whatever a
//! system's settings say, a member that acknowledges sequential writes without calling
//! `fsync`/`fdatasync` for (nearly) each of them is not durable. Needs `strace`
//! (bench/scripts/install-peers.sh installs it) and permission to ptrace the members.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

/// Filesystems kept in memory: fsync on them costs nothing.
const MEMORY_FS: [&str; 2] = ["tmpfs", "ramfs"];
/// How long strace may take to attach to every thread, and to detach.
const STRACE_WITHIN: Duration = Duration::from_secs(10);

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// Per-mount options, then the filesystem's own (`rw,relatime … | rw,discard`).
    pub options: String,
}

impl std::fmt::Display for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} on {} ({})", self.fstype, self.source, self.mount_point.display(), self.options)
    }
}

/// Parses `/proc/PID/mountinfo` (proc(5)): `id parent maj:min root mount_point options
/// [optional…] - fstype source super_options`. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let (fstype, source, super_options) = (right.next()?, right.next()?, right.next().unwrap_or(""));
            Some(Mount {
                mount_point: PathBuf::from(unescape(left.get(4)?)),
                fstype: fstype.to_string(),
                source: unescape(source),
                options: format!("{} | {super_options}", left.get(5)?),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The mount `path` (absolute, symlinks resolved) lives on: the one with the longest
/// mount point above it, the later one where two share a mount point (it is on top).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
        .map(|(_, m)| m)
}

/// The mount of `dir` (as this process sees mounts), or an error if it is a memory
/// filesystem.
pub fn real_disk(dir: &Path) -> anyhow::Result<Mount> {
    let path = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let text = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    on_disk(&parse_mountinfo(&text), &path)
}

/// The mount of `path` among `mounts`, or an error if it is a memory filesystem.
fn on_disk(mounts: &[Mount], path: &Path) -> anyhow::Result<Mount> {
    let mount = mount_of(mounts, path).with_context(|| format!("no mount holds {}", path.display()))?.clone();
    ensure!(
        !MEMORY_FS.contains(&mount.fstype.as_str()),
        "{} is on {mount}: fsync there costs nothing, so the figures would not be durable writes. \
         Set TMPDIR to a directory on a real disk",
        path.display()
    );
    Ok(mount)
}

/// The command line of process `pid`, one argument per element.
pub fn cmdline(pid: u32) -> anyhow::Result<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).with_context(|| format!("reading the cmdline of {pid}"))?;
    Ok(raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// Refuses an etcd member that runs without fsync (`--unsafe-no-fsync`, etcd ≥ 3.5, as a
/// flag or as `ETCD_UNSAFE_NO_FSYNC`).
pub fn etcd_fsync_default(pid: u32) -> anyhow::Result<()> {
    let args = cmdline(pid)?;
    ensure!(
        !args.iter().any(|a| a.contains("unsafe-no-fsync")),
        "etcd (pid {pid}) runs with --unsafe-no-fsync: {args:?}"
    );
    let env = fs::read(format!("/proc/{pid}/environ")).with_context(|| format!("reading the environment of {pid}"))?;
    ensure!(
        !env.split(|&b| b == 0).any(|v| v.starts_with(b"ETCD_UNSAFE_NO_FSYNC")),
        "etcd (pid {pid}) has ETCD_UNSAFE_NO_FSYNC in its environment"
    );
    Ok(())
}

/// The process whose command line has `arg` as one of its arguments.
pub fn pid_with_arg(arg: &Path) -> anyhow::Result<u32> {
    let want = arg.display().to_string();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // Processes may exit while we look: skip what cannot be read.
        if cmdline(pid).is_ok_and(|args| args.contains(&want)) {
            return Ok(pid);
        }
    }
    bail!("no process has {want} on its command line")
}

/// Completed `fsync`/`fdatasync` calls that returned 0 in an `strace -f -o` trace
/// (a call another thread interrupted shows up as `<unfinished …>`, then `resumed`).
pub fn count_syncs(trace: &str) -> u64 {
    let is_sync =
        |l: &str| ["fsync(", "fdatasync(", "fsync resumed>", "fdatasync resumed>"].iter().any(|s| l.contains(s));
    trace.lines().filter(|l| is_sync(l) && l.trim_end().ends_with("= 0")).count() as u64
}

/// `strace` attached to every thread of one process, counting its syncs.
pub struct SyncWatch {
    strace: Child,
    trace: PathBuf,
    log: PathBuf,
}

impl SyncWatch {
    /// Attaches to `pid` and returns once every thread is traced. Files go to `scratch`.
    pub async fn attach(pid: u32, scratch: &Path) -> anyhow::Result<SyncWatch> {
        let trace = scratch.join(format!("strace-{pid}.txt"));
        let log = scratch.join(format!("strace-{pid}.log"));
        let strace = Command::new("strace")
            .args(["-f", "-e", "trace=fsync,fdatasync", "-o"])
            .arg(&trace)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("starting strace (install it with bench/scripts/install-peers.sh)")?;
        let mut watch = SyncWatch { strace, trace, log };
        let deadline = Instant::now() + STRACE_WITHIN;
        // strace reports "Process N attached [with M threads]" once all threads are traced.
        while !fs::read_to_string(&watch.log).unwrap_or_default().contains("attached") {
            if let Some(exit) = watch.strace.try_wait()? {
                bail!("strace -p {pid} exited with {exit}: {}", fs::read_to_string(&watch.log).unwrap_or_default());
            }
            ensure!(Instant::now() < deadline, "strace did not attach to {pid} within {STRACE_WITHIN:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(watch)
    }

    /// Detaches and returns the syncs seen.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        // strace ends by itself when the traced process exited; until it is reaped its
        // pid cannot be reused, so the signal reaches strace or nothing.
        if self.strace.try_wait()?.is_none() {
            let pid = Pid::from_raw(i32::try_from(self.strace.id())?);
            kill(pid, Signal::SIGINT).context("stopping strace")?;
        }
        let deadline = Instant::now() + STRACE_WITHIN;
        while self.strace.try_wait()?.is_none() {
            ensure!(Instant::now() < deadline, "strace did not detach within {STRACE_WITHIN:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(count_syncs(&fs::read_to_string(&self.trace)?))
    }
}

impl Drop for SyncWatch {
    fn drop(&mut self) {
        // After `finish` it has exited and this does nothing; on an error path it detaches
        // the tracer (the traced process goes on).
        if matches!(self.strace.try_wait(), Ok(None)) {
            let _ = self.strace.kill();
            let _ = self.strace.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 22 0:26 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw,size=100k
31 22 0:27 / /data\\040disk rw - xfs /dev/vdb1 rw
32 30 252:0 /srv /tmp/real rw - ext4 /dev/vda rw
33 22 0:30 / /data\\040disk rw - ramfs none rw
";

    #[test]
    fn the_deepest_and_latest_mount_wins() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        let fs_of = |p: &str| mount_of(&mounts, Path::new(p)).map(|m| m.fstype.clone());
        assert_eq!(fs_of("/home/x").as_deref(), Some("ext4"));
        assert_eq!(fs_of("/tmp/gantry-chaos-1/replica-1").as_deref(), Some("tmpfs"));
        assert_eq!(fs_of("/tmp/real/x").as_deref(), Some("ext4"), "an ext4 mount inside tmpfs");
        assert_eq!(fs_of("/tmpfoo").as_deref(), Some("ext4"), "whole components only");
        assert_eq!(fs_of("/data disk/x").as_deref(), Some("ramfs"), "mounted over xfs, escaped space");
        assert_eq!(mounts[0].options, "rw,relatime | rw,discard");
    }

    #[test]
    fn memory_filesystems_are_refused() -> anyhow::Result<()> {
        let mounts = parse_mountinfo(MOUNTINFO);
        let err = on_disk(&mounts, Path::new("/tmp/x")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("tmpfs"), "{err}");
        assert!(on_disk(&mounts, Path::new("/data disk/x")).is_err(), "ramfs");
        assert_eq!(on_disk(&mounts, Path::new("/tmp/real/x"))?.source, "/dev/vda");
        Ok(())
    }

    /// A real process under strace (installed by bench/scripts/install-peers.sh): the
    /// watch sees exactly the syncs it makes (`sync FILE` is fsync, `--data` fdatasync,
    /// in a child process, as the members' writer threads), and none of its plain writes.
    #[tokio::test]
    async fn counts_the_syncs_of_a_traced_process() -> anyhow::Result<()> {
        use std::io::{BufRead as _, BufReader, Write as _};
        let dir = tempfile::tempdir()?;
        let script = "read go; echo x > f; sync --data f; sync f; echo y >> f; echo done; read end";
        let mut child = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (mut stdin, stdout) = (child.stdin.take().context("stdin")?, child.stdout.take().context("stdout")?);
        let watch = SyncWatch::attach(child.id(), dir.path()).await;
        writeln!(stdin, "go")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let syncs = match watch {
            Ok(watch) => watch.finish().await,
            Err(e) => Err(e),
        };
        writeln!(stdin, "end")?;
        child.wait()?;
        assert_eq!(line.trim(), "done");
        assert_eq!(syncs?, 2);
        Ok(())
    }

    #[test]
    fn only_successful_syncs_count() {
        let trace = "\
101 fdatasync(7) = 0
102 fsync(9 <unfinished ...>
101 fdatasync(7) = -1 EIO (Input/output error)
102 <... fsync resumed>) = 0
103 fdatasync(12)                = 0
103 +++ exited with 0 +++
";
        assert_eq!(count_syncs(trace), 3);
    }
}
