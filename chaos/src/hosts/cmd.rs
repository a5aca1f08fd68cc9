//! Running the host tools (`ip`, `iptables`, `mount`, …) with their error output in the
//! error.

use std::process::{Command, Stdio};

use anyhow::Context as _;

/// Runs `program args`, failing with its stderr when it exits non-zero.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
