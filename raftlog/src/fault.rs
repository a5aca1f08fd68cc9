//! A disk fault hook for fault-injection tests: compiled in, inert unless configured.
//!
//! [`DiskFaults::file`] names a file that another process (a chaos suite) writes while
//! the store runs. Before each write+fsync the store stats it (one `stat`; the contents
//! are re-read only when its mtime or length changed) and obeys what it says:
//!
//! ```text
//! delay_ms=200     # every write+fsync waits 200 ms first (a slow disk)
//! fail=fsync       # every write+fsync fails (a dying disk)
//! fail=snapshot    # only snapshot saves fail
//! ```
//!
//! An empty, missing or unreadable file means no fault. A line that does not parse is
//! ignored (and logged once per change): the hook must never be what breaks a run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::error::Error;

/// Which write the store is about to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Log entries, hard state, snapshot metadata: the ready loop's writes.
    Log,
    /// A snapshot's application data, written before its metadata.
    Snapshot,
}

/// What the hook injects into one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    /// Wait this long before writing.
    pub delay: Duration,
    /// Fail writes of this kind; [`FailOn::All`] fails every write.
    pub fail: Option<FailOn>,
}

/// Which writes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Every write+fsync (`fail=fsync`).
    All,
    /// Snapshot saves only (`fail=snapshot`).
    Snapshot,
}

impl Fault {
    /// Parses the fault file's contents; see the module docs.
    pub fn parse(text: &str) -> Fault {
        let mut fault = Fault::default();
        for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
            match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("delay_ms", v)) if v.parse::<u64>().is_ok() => {
                    fault.delay = Duration::from_millis(v.parse().unwrap_or(0));
                }
                Some(("fail", "fsync")) => fault.fail = Some(FailOn::All),
                Some(("fail", "snapshot")) => fault.fail = Some(FailOn::Snapshot),
                _ => {
                    warn!(line, "disk fault file: ignoring a line that is not delay_ms=N, fail=fsync or fail=snapshot")
                }
            }
        }
        fault
    }

    fn fails(&self, kind: WriteKind) -> bool {
        match self.fail {
            Some(FailOn::All) => true,
            Some(FailOn::Snapshot) => kind == WriteKind::Snapshot,
            None => false,
        }
    }
}

type Callback = dyn Fn(WriteKind) -> Fault + Send + Sync;

/// Where a store's faults come from. Cheap to clone.
#[derive(Clone, Default)]
pub struct DiskFaults {
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    #[default]
    Off,
    File(Arc<FaultFile>),
    Callback(Arc<Callback>),
}

struct FaultFile {
    path: PathBuf,
    /// (mtime, length) the cached fault was read at; `None`: the file was absent.
    cache: Mutex<(Option<(SystemTime, u64)>, Fault)>,
}

impl DiskFaults {
    /// No faults: the production default.
    pub fn none() -> DiskFaults {
        DiskFaults::default()
    }

    /// Faults as the file at `path` says, re-checked before every write.
    pub fn file(path: impl AsRef<Path>) -> DiskFaults {
        let file = FaultFile { path: path.as_ref().to_path_buf(), cache: Mutex::new((None, Fault::default())) };
        DiskFaults { source: Source::File(Arc::new(file)) }
    }

    /// Faults decided by `callback`, called (on the writing thread) before every write.
    /// For tests in this process: a callback may block, e.g. on a barrier, to hold a
    /// write in progress deterministically.
    pub fn callback(callback: impl Fn(WriteKind) -> Fault + Send + Sync + 'static) -> DiskFaults {
        DiskFaults { source: Source::Callback(Arc::new(callback)) }
    }

    /// Runs the hook before a write of `kind`: waits, or fails with
    /// [`Error::InjectedFault`].
    pub(crate) fn before_write(&self, kind: WriteKind) -> Result<(), Error> {
        let fault = match &self.source {
            Source::Off => return Ok(()),
            Source::File(file) => file.current(),
            Source::Callback(callback) => callback(kind),
        };
        if !fault.delay.is_zero() {
            std::thread::sleep(fault.delay);
        }
        if fault.fails(kind) {
            return Err(Error::InjectedFault { kind });
        }
        Ok(())
    }
}

impl FaultFile {
    fn current(&self) -> Fault {
        let stamp =
            std::fs::metadata(&self.path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != stamp {
            let fault = match stamp {
                Some(_) => std::fs::read_to_string(&self.path).map(|t| Fault::parse(&t)).unwrap_or_default(),
                None => Fault::default(),
            };
            if fault != cache.1 {
                warn!(path = %self.path.display(), ?fault, "disk fault hook changed");
            }
            *cache = (stamp, fault);
        }
        cache.1
    }
}

impl std::fmt::Debug for DiskFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Off => f.write_str("DiskFaults::none"),
            Source::File(file) => write!(f, "DiskFaults::file({})", file.path.display()),
            Source::Callback(_) => f.write_str("DiskFaults::callback"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delay_and_failure_and_ignores_the_rest() {
        assert_eq!(Fault::parse(""), Fault::default());
        let f = Fault::parse("delay_ms=200\n# comment\nfail=fsync\nnonsense\ndelay_ms=x");
        assert_eq!(f, Fault { delay: Duration::from_millis(200), fail: Some(FailOn::All) });
        assert_eq!(Fault::parse(" fail = snapshot ").fail, Some(FailOn::Snapshot));
        assert!(Fault::parse("fail=snapshot").fails(WriteKind::Snapshot));
        assert!(!Fault::parse("fail=snapshot").fails(WriteKind::Log));
    }

    #[test]
    fn the_file_is_reread_when_it_changes_and_absent_means_healed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("fault");
        let faults = DiskFaults::file(&path);
        assert!(faults.before_write(WriteKind::Log).is_ok());
        std::fs::write(&path, "fail=fsync")?;
        assert!(matches!(faults.before_write(WriteKind::Log), Err(Error::InjectedFault { .. })));
        // Same mtime granularity or not, a different length is seen as a change.
        std::fs::write(&path, "fail=snapshot")?;
        assert!(faults.before_write(WriteKind::Log).is_ok());
        assert!(faults.before_write(WriteKind::Snapshot).is_err());
        std::fs::remove_file(&path)?;
        assert!(faults.before_write(WriteKind::Snapshot).is_ok());
        Ok(())
    }
}
