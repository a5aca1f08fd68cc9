//! Where the binaries under test (`gantry-scheduler`, `gantry-agent`) are.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Environment variable naming the scheduler binary explicitly.
pub const BIN_ENV: &str = "GANTRY_SCHEDULER_BIN";
/// Environment variable naming the agent binary explicitly.
pub const AGENT_BIN_ENV: &str = "GANTRY_AGENT_BIN";
/// Environment variable naming the CLI binary explicitly.
pub const GANTRYCTL_BIN_ENV: &str = "GANTRYCTL_BIN";

/// A binary of the workspace the tests run.
struct Bin {
    package: &'static str,
    name: &'static str,
    env: &'static str,
}

const SCHEDULER: Bin = Bin { package: "gantry-scheduler", name: "gantry-scheduler", env: BIN_ENV };
const AGENT: Bin = Bin { package: "gantry-agent", name: "gantry-agent", env: AGENT_BIN_ENV };
const GANTRYCTL: Bin = Bin { package: "gantryctl", name: "gantryctl", env: GANTRYCTL_BIN_ENV };

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
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    binary(&SCHEDULER, &BUILT)
}

/// The `gantry-agent` binary, found and built like [`scheduler_binary`]
/// (`$GANTRY_AGENT_BIN` overrides).
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    binary(&AGENT, &BUILT)
}

/// The `gantryctl` binary, found and built like [`scheduler_binary`] (`$GANTRYCTL_BIN`
/// overrides): for tests that run the operator's commands as written in the README.
pub fn gantryctl_binary() -> anyhow::Result<PathBuf> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    binary(&GANTRYCTL, &BUILT)
}

fn binary(bin: &Bin, built: &std::sync::OnceLock<Result<(), String>>) -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(bin.env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().context("cannot find the running test executable")?;
            let dir = profile_dir(&exe);
            built.get_or_init(|| build_with_cargo(&dir, bin)).clone().map_err(anyhow::Error::msg)?;
            dir.join(bin.name)
        }
    };
    anyhow::ensure!(
        path.is_file(),
        "{} binary not found at {}: run `cargo build --bins` (or `cargo build -p {}`) first, or set {} to its path",
        bin.name,
        path.display(),
        bin.package,
        bin.env
    );
    Ok(path)
}

/// Builds `bin` into the profile directory `dir` (`target/<profile>`) with the cargo
/// that runs us; without `$CARGO` (a test binary run by hand) it does nothing.
fn build_with_cargo(dir: &Path, bin: &Bin) -> Result<(), String> {
    let Some(cargo) = std::env::var_os("CARGO") else { return Ok(()) };
    let (Some(profile), Some(target_dir)) = (dir.file_name(), dir.parent()) else { return Ok(()) };
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", bin.package, "--bin", bin.name, "--target-dir"]).arg(target_dir);
    if profile == "release" {
        cmd.arg("--release");
    } else if profile != "debug" {
        cmd.arg("--profile").arg(profile);
    }
    let name = bin.name;
    let status = cmd.status().map_err(|e| format!("cannot run cargo to build {name}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("building {name} failed ({status})")) }
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
