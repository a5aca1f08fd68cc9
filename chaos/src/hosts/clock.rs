//! Wall-clock jumps for one process through libfaketime: the process is started with
//! [`FakeClock::env`], and [`FakeClock::jump`] rewrites the offset it re-reads every
//! second. Only CLOCK_REALTIME moves; monotonic clocks are left alone, as on a server
//! whose NTP daemon steps the clock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// Where Debian's `libfaketime` puts the multi-threaded library.
const LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

pub struct FakeClock {
    spec: PathBuf,
    offset_s: i64,
}

impl FakeClock {
    /// Whether libfaketime is installed (`apt-get install libfaketime`).
    pub fn available() -> bool {
        Path::new(LIBRARY).exists()
    }

    /// A clock at offset zero whose offset lives in `spec`.
    pub fn new(spec: &Path) -> anyhow::Result<FakeClock> {
        anyhow::ensure!(Self::available(), "{LIBRARY} is missing: apt-get install libfaketime");
        let clock = FakeClock { spec: spec.to_path_buf(), offset_s: 0 };
        clock.write()?;
        Ok(clock)
    }

    /// The environment that puts a process on this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), LIBRARY.into()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.spec.display().to_string()),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }

    /// Moves the wall clock by `by`, forwards or (negative) backwards, from where it is.
    pub fn jump(&mut self, forward: bool, by: Duration) -> anyhow::Result<()> {
        let s = i64::try_from(by.as_secs())?;
        self.offset_s += if forward { s } else { -s };
        self.write()
    }

    /// Back to the real time.
    pub fn reset(&mut self) -> anyhow::Result<()> {
        self.offset_s = 0;
        self.write()
    }

    pub fn offset_s(&self) -> i64 {
        self.offset_s
    }

    fn write(&self) -> anyhow::Result<()> {
        // Written whole, then renamed: the process never reads half a spec.
        let tmp = self.spec.with_extension("tmp");
        std::fs::write(&tmp, format!("{:+}\n", self.offset_s))?;
        std::fs::rename(&tmp, &self.spec).with_context(|| format!("cannot write {}", self.spec.display()))
    }
}
