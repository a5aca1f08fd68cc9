//! The launcher: a POSIX `sh` script that is the container's main process.
//!
//! Run as `sh -c "$(launcher_script())" gantry-launch --key value …`, it
//!
//! 1. installs `$EM_SOURCE_DIR/requirements.txt` if present, offline from
//!    [`WHEELS_DIR`] (the agent downloads the wheels on the host: containers cannot
//!    reach a package index) into [`PACKAGES_DIR`] (the training runs as a non-root
//!    user on a read-only root filesystem: site-packages is not writable), or exits
//!    [`EXIT_REQUIREMENTS_FAILED`];
//! 2. checks that the entry point exists, or exits [`EXIT_ENTRY_POINT_MISSING`];
//! 3. `exec`s `python3 "$EM_ENTRY_POINT" "$@"` (or `torchrun` when
//!    `GANTRY_TORCHRUN_NPROC_PER_NODE` is set), so the script's exit code and signals
//!    are the training's own.
//!
//! The distinctive exit codes and `gantry:` messages let the agent tell a broken setup
//! from a failing training.

use super::paths::{PACKAGES_DIR, WHEELS_DIR};

/// `requirements.txt` could not be installed.
pub const EXIT_REQUIREMENTS_FAILED: i64 = 86;
/// The entry point (or the source directory) does not exist.
pub const EXIT_ENTRY_POINT_MISSING: i64 = 87;

/// `$0` of the launcher, shown by `ps` inside the container.
pub const LAUNCHER_NAME: &str = "gantry-launch";

/// The variable that switches the launcher to `torchrun` with that many processes.
pub const TORCHRUN_NPROC_VAR: &str = "GANTRY_TORCHRUN_NPROC_PER_NODE";

/// The launcher's source (see the module doc).
pub fn launcher_script() -> String {
    // `--target`: the packages directory is on PYTHONPATH (set by the contract) and
    // its scripts go on PATH here. PIP_BREAK_SYSTEM_PACKAGES: Debian's python3 refuses
    // installs it considers system-wide (PEP 668); older pips ignore the variable.
    // PIP_NO_CACHE_DIR: nothing to reuse in a one-shot container.
    format!(
        r#"cd "$EM_SOURCE_DIR" || {{ echo "gantry: entry point $EM_ENTRY_POINT not found in $EM_SOURCE_DIR (no such directory)" >&2; exit {missing}; }}
if [ -f requirements.txt ]; then
  echo "gantry: installing requirements.txt from {wheels}" >&2
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1 \
    python3 -m pip install --no-index --find-links {wheels} --target {packages} -r requirements.txt \
    || {{ echo "gantry: requirements.txt install failed" >&2; exit {req}; }}
  export PATH="{packages}/bin:$PATH"
fi
if [ ! -f "$EM_ENTRY_POINT" ]; then
  echo "gantry: entry point $EM_ENTRY_POINT not found in $EM_SOURCE_DIR" >&2
  exit {missing}
fi
if [ -n "${{{nproc}:-}}" ]; then
  if [ "${{WORLD_SIZE:-1}}" -gt 1 ]; then
    exec torchrun --nnodes="$WORLD_SIZE" --node_rank="$RANK" --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --nproc_per_node="${nproc}" "$EM_ENTRY_POINT" "$@"
  fi
  exec torchrun --standalone --nnodes=1 --nproc_per_node="${nproc}" "$EM_ENTRY_POINT" "$@"
fi
exec python3 "$EM_ENTRY_POINT" "$@"
"#,
        wheels = WHEELS_DIR,
        packages = PACKAGES_DIR,
        req = EXIT_REQUIREMENTS_FAILED,
        missing = EXIT_ENTRY_POINT_MISSING,
        nproc = TORCHRUN_NPROC_VAR,
    )
}

/// The container's argv: the launcher, then the hyperparameter arguments.
pub fn launcher_argv(args: &[String]) -> Vec<String> {
    let mut argv = vec!["sh".to_string(), "-c".to_string(), launcher_script(), LAUNCHER_NAME.to_string()];
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    //! These run the script with the host's `sh` and stand-in `python3`/`torchrun`
    //! programs that print how they were called.

    use std::fs;
    use std::path::Path;
    use std::process::{Command, Output};

    use super::*;

    const STAND_IN: &str = r#"#!/bin/sh
echo "$(basename "$0")"
for a in "$@"; do echo "[$a]"; done
if [ "$1" = "-m" ]; then exit "${FAKE_PIP_EXIT:-0}"; fi
exit "${FAKE_RUN_EXIT:-0}"
"#;

    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new(entry_exists: bool, requirements: bool) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            fs::create_dir_all(&bin).unwrap();
            for name in ["python3", "torchrun"] {
                let path = bin.join(name);
                fs::write(&path, STAND_IN).unwrap();
                make_executable(&path);
            }
            let src = dir.path().join("src");
            fs::create_dir_all(&src).unwrap();
            if entry_exists {
                fs::write(src.join("train.py"), "print('hi')\n").unwrap();
            }
            if requirements {
                fs::write(src.join("requirements.txt"), "numpy\n").unwrap();
            }
            Sandbox { dir }
        }

        fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
            let argv = launcher_argv(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let path =
                format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
            Command::new(&argv[0])
                .args(&argv[1..])
                .env("PATH", path)
                .env("EM_SOURCE_DIR", self.dir.path().join("src"))
                .env("EM_ENTRY_POINT", "train.py")
                .envs(env.iter().copied())
                .output()
                .unwrap()
        }
    }

    fn make_executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn stdout(o: &Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[test]
    fn runs_the_entry_point_with_arguments_intact() {
        let sb = Sandbox::new(true, false);
        let out = sb.run(&["--epochs", "10", "--note", "two words", "--empty", ""], &[("FAKE_RUN_EXIT", "5")]);
        assert_eq!(out.status.code(), Some(5), "the training's exit code passes through");
        assert_eq!(stdout(&out), "python3\n[train.py]\n[--epochs]\n[10]\n[--note]\n[two words]\n[--empty]\n[]\n");
    }

    #[test]
    fn installs_requirements_offline_first() {
        let sb = Sandbox::new(true, true);
        let out = sb.run(&["--a", "1"], &[]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            stdout(&out),
            "python3\n[-m]\n[pip]\n[install]\n[--no-index]\n[--find-links]\n[/gantry/wheels]\n[--target]\n\
             [/gantry/packages]\n[-r]\n[requirements.txt]\n\
             python3\n[train.py]\n[--a]\n[1]\n"
        );
    }

    #[test]
    fn failed_install_exits_86_without_running() {
        let sb = Sandbox::new(true, true);
        let out = sb.run(&[], &[("FAKE_PIP_EXIT", "1")]);
        assert_eq!(out.status.code(), Some(EXIT_REQUIREMENTS_FAILED as i32));
        assert!(String::from_utf8_lossy(&out.stderr).contains("gantry: requirements.txt install failed"));
        assert!(!stdout(&out).contains("[train.py]"));
    }

    #[test]
    fn missing_entry_point_exits_87() {
        let sb = Sandbox::new(false, false);
        let out = sb.run(&[], &[]);
        assert_eq!(out.status.code(), Some(EXIT_ENTRY_POINT_MISSING as i32));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("gantry: entry point train.py not found in "), "{stderr}");

        let out = sb.run(&[], &[("EM_SOURCE_DIR", "/nonexistent/gantry")]);
        assert_eq!(out.status.code(), Some(EXIT_ENTRY_POINT_MISSING as i32));
    }

    #[test]
    fn torchrun_when_asked() {
        let sb = Sandbox::new(true, false);
        let out = sb.run(&["--x", "1"], &[(TORCHRUN_NPROC_VAR, "4")]);
        assert_eq!(
            stdout(&out),
            "torchrun\n[--standalone]\n[--nnodes=1]\n[--nproc_per_node=4]\n[train.py]\n[--x]\n[1]\n"
        );
        let out = sb.run(
            &[],
            &[
                (TORCHRUN_NPROC_VAR, "2"),
                ("WORLD_SIZE", "3"),
                ("RANK", "1"),
                ("MASTER_ADDR", "t-0"),
                ("MASTER_PORT", "29500"),
            ],
        );
        assert_eq!(
            stdout(&out),
            "torchrun\n[--nnodes=3]\n[--node_rank=1]\n[--master_addr=t-0]\n[--master_port=29500]\n[--nproc_per_node=2]\n[train.py]\n"
        );
    }
}
