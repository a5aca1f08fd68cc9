//! A `gantry-agent` as a real process: written config, log file, start, SIGKILL,
//! SIGTERM and restart, for the node tests and fault suites.
//!
//! The agent's state directory (its identity, logs and work directories) survives
//! restarts, exactly as on a server; only [`AgentProcess`]'s drop removes it.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::binary::agent_binary;

/// How long a SIGTERM'd agent may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What an agent under test is configured with.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub node_name: String,
    /// Container label: unique per test so parallel tests never see each other.
    pub cluster: String,
    pub schedulers: Vec<String>,
    pub join_token: String,
    pub ca_cert: PathBuf,
    /// Extra TOML appended to the config (e.g. `[gpu]` or `[resources]` sections).
    pub extra_toml: String,
    pub heartbeat_interval: Duration,
    /// Extra environment of the agent process (e.g. pip settings for offline wheels).
    pub env: Vec<(String, String)>,
    /// Run the agent in this network namespace (a host of [`crate::hosts::HostNetwork`]).
    pub netns: Option<String>,
}

pub struct AgentProcess {
    binary: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    netns: Option<String>,
    log: PathBuf,
    state_dir: PathBuf,
    child: Mutex<Option<Child>>,
    starts: Mutex<u32>,
    _dir: tempfile::TempDir,
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl AgentProcess {
    /// Writes the config and starts the agent (it registers in the background).
    pub fn start(opts: &AgentOptions) -> anyhow::Result<AgentProcess> {
        let binary = agent_binary()?;
        let dir = tempfile::Builder::new().prefix(&format!("gantry-agent-{}-", opts.node_name)).tempdir()?;
        let state_dir = dir.path().join("state");
        let schedulers: Vec<String> = opts.schedulers.iter().map(|s| toml_string(s)).collect();
        let config = format!(
            "node_name = {}\ncluster = {}\nstate_dir = {}\nschedulers = [{}]\njoin_token = {}\n\
             heartbeat_interval = \"{}ms\"\nstop_grace = \"2s\"\n\n[tls]\nca_cert = {}\n\n{}\n",
            toml_string(&opts.node_name),
            toml_string(&opts.cluster),
            toml_string(&state_dir.display().to_string()),
            schedulers.join(", "),
            toml_string(&opts.join_token),
            opts.heartbeat_interval.as_millis(),
            toml_string(&opts.ca_cert.display().to_string()),
            opts.extra_toml,
        );
        let config_path = dir.path().join("agent.toml");
        std::fs::write(&config_path, config)?;
        let agent = AgentProcess {
            binary,
            config: config_path,
            env: opts.env.clone(),
            netns: opts.netns.clone(),
            log: dir.path().join("agent.log"),
            state_dir,
            child: Mutex::new(None),
            starts: Mutex::new(0),
            _dir: dir,
        };
        agent.spawn()?;
        Ok(agent)
    }

    fn spawn(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(c) = child.as_mut() {
            anyhow::ensure!(!matches!(c.try_wait(), Ok(None)), "the agent is already running");
        }
        let mut starts = self.starts.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        *starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        writeln!(log, "===== chaos: starting agent, start {} =====", *starts)?;
        let stderr = log.try_clone()?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--config")
            .arg(&self.config)
            .env("GANTRY_LOG", "info,gantry_agent=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("GANTRY_AGENT_") {
                cmd.env_remove(var);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        *child = Some(cmd.spawn().with_context(|| format!("cannot spawn {}", self.binary.display()))?);
        Ok(())
    }

    fn signal(&self, sig: Signal) -> anyhow::Result<()> {
        let child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(c) = child.as_ref() {
            let pid = Pid::from_raw(i32::try_from(c.id())?);
            match signal::kill(pid, sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => anyhow::bail!("signalling the agent: {e}"),
            }
        }
        Ok(())
    }

    fn reap(&self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                match child.as_mut().map(Child::try_wait) {
                    None | Some(Ok(Some(_))) | Some(Err(_)) => return Ok(true),
                    Some(Ok(None)) => {}
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the agent dies at whatever instruction it was on.
    pub fn kill(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGKILL)?;
        anyhow::ensure!(self.reap(STOP_TIMEOUT)?, "the agent survived SIGKILL");
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it does not exit in time.
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)?;
        if !self.reap(STOP_TIMEOUT)? {
            self.kill()?;
        }
        Ok(())
    }

    /// Starts the agent again with the same config and state directory.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.spawn()
    }

    pub fn is_running(&self) -> bool {
        self.child.lock().ok().and_then(|mut c| c.as_mut().map(|c| matches!(c.try_wait(), Ok(None)))).unwrap_or(false)
    }

    /// The agent's process id while it runs (for sampling its resource use).
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.child.lock().ok()?;
        let c = child.as_mut()?;
        matches!(c.try_wait(), Ok(None)).then(|| c.id())
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The agent's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.signal(Signal::SIGKILL);
        let _ = self.reap(STOP_TIMEOUT);
    }
}
