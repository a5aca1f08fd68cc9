//! `requirements.txt`: containers cannot reach a package index (there is no registry,
//! and GPU servers are often offline), so the agent downloads the wheels on the host
//! with `pip download` and the launcher installs them with `--no-index`.

use std::path::Path;
use std::time::Duration;

/// Longest a download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Downloads what `requirements` needs into `dest`. The error is the user-facing
/// reason (the tail of pip's output).
pub async fn download(requirements: &Path, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("requirements.txt: creating {}: {e}", dest.display()))?;
    let run = tokio::process::Command::new("python3")
        .args(["-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--dest"])
        .arg(dest)
        .arg("-r")
        .arg(requirements)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(DOWNLOAD_TIMEOUT, run).await {
        Err(_) => return Err(format!("requirements.txt: pip download took longer than {DOWNLOAD_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("requirements.txt: cannot run python3 -m pip on the node: {e}")),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("requirements.txt could not be installed (pip download failed): {}", tail.join(" | ")))
}
