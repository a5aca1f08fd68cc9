//! Where the `gantry-scheduler` binary under test is.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Environment variable naming the scheduler binary explicitly.
pub const BIN_ENV: &str = "GANTRY_SCHEDULER_BIN";
const BIN_NAME: &str = "gantry-scheduler";

/// `$GANTRY_SCHEDULER_BIN`, else `gantry-scheduler` in the cargo profile directory of
/// the running test (`target/<profile>/deps/<test>` → `target/<profile>/gantry-scheduler`).
///
/// Cargo does not build another package's binaries for a test, so a missing file fails
/// with the command that builds it.
pub fn scheduler_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(BIN_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().context("cannot find the running test executable")?;
            profile_dir(&exe).join(BIN_NAME)
        }
    };
    anyhow::ensure!(
        path.is_file(),
        "scheduler binary not found at {}: run `cargo build --bins` (or `cargo build -p gantry-scheduler`) first, \
         or set {BIN_ENV} to its path",
        path.display()
    );
    Ok(path)
}

/// `target/<profile>` for an executable in `target/<profile>/deps` (tests) or directly in
/// `target/<profile>` (binaries, examples' parent).
fn profile_dir(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    match dir.file_name() {
        Some(name) if name == "deps" || name == "examples" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_executables_look_in_their_profile_dir() {
        assert_eq!(profile_dir(Path::new("/t/target/debug/deps/x-123")), Path::new("/t/target/debug"));
        assert_eq!(profile_dir(Path::new("/t/target/release/gantryctl")), Path::new("/t/target/release"));
    }
}
