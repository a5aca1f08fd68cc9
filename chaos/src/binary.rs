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
///
/// When run under cargo (which sets `$CARGO`), the binary is (re)built first, once per
/// process: `cargo test -p gantry-tests` alone would otherwise run whatever stale
/// binary an earlier build left behind.
pub fn scheduler_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(BIN_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().context("cannot find the running test executable")?;
            let dir = profile_dir(&exe);
            static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
            BUILT.get_or_init(|| build_with_cargo(&dir)).clone().map_err(anyhow::Error::msg)?;
            dir.join(BIN_NAME)
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

/// Builds the scheduler into the profile directory `dir` (`target/<profile>`) with the
/// cargo that runs us; without `$CARGO` (a test binary run by hand) it does nothing.
fn build_with_cargo(dir: &Path) -> Result<(), String> {
    let Some(cargo) = std::env::var_os("CARGO") else { return Ok(()) };
    let (Some(profile), Some(target_dir)) = (dir.file_name(), dir.parent()) else { return Ok(()) };
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "gantry-scheduler", "--bin", BIN_NAME, "--target-dir"]).arg(target_dir);
    if profile == "release" {
        cmd.arg("--release");
    } else if profile != "debug" {
        cmd.arg("--profile").arg(profile);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo to build {BIN_NAME}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("building {BIN_NAME} failed ({status})")) }
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
