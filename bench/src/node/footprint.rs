//! The agent's own footprint while it runs idle containers: resident memory and CPU of
//! the `gantry-agent` process, read from `/proc` (the containers themselves are not
//! counted: they are the engine's children, not the agent's).
//!
//! ```text
//!   PutInstanceType 50m / 64 MiB ─► N × CreateTraining (sleep 3600) ─► all RUNNING
//!     ─► settle 5 s ─► /proc/<agent>/stat (utime+stime) over 10 s, VmRSS every second
//! ```
//!
//! Nothing polls the API during the window; the agent keeps its sessions, heartbeats
//! (500 ms in the kit, 2 s by default), metrics samples, resyncs and log followers.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_agent::runtime::ContainerState;
use gantry_proto::v1::{self as pb, PutInstanceTypeRequest};
use gantry_tests::nodes::NodeKit;

use super::with_node;

const INSTANCE_TYPE: &str = "bench-50m";
const CPU_MILLIS: u64 = 50;
const MEMORY_MIB: u64 = 64;
const SCRIPT: &str = "import time\ntime.sleep(3600)\n";
const START_WITHIN: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(10);
/// `/proc/<pid>/stat` counts CPU time in USER_HZ, which Linux fixes at 100 on every
/// architecture it exports to user space.
const USER_HZ: f64 = 100.0;

pub struct Report {
    pub containers: usize,
    pub pid: u32,
    /// VmRSS at the end of the window.
    pub rss_mib: f64,
    /// Highest VmRSS sampled during the window.
    pub rss_max_mib: f64,
    /// VmHWM: the process's peak RSS since it started (includes the starts).
    pub rss_peak_mib: f64,
    pub threads: u64,
    /// utime + stime over the window, as a percentage of one core.
    pub cpu_pct: f64,
    /// CPU seconds the agent used from its start to the end of the window.
    pub cpu_total_s: f64,
    pub start_all: Duration,
}

impl Report {
    pub fn bench_line(&self) -> String {
        format!(
            "bench: agent_footprint containers={} rss_mib={:.1} cpu_pct={:.2}",
            self.containers, self.rss_mib, self.cpu_pct
        )
    }

    fn print(&self) {
        let rows = [
            ("agent pid", self.pid.to_string()),
            ("running containers", self.containers.to_string()),
            ("all RUNNING after", format!("{:.1} s", self.start_all.as_secs_f64())),
            ("VmRSS at the end (target < 30 MiB)", format!("{:.1} MiB", self.rss_mib)),
            ("VmRSS max in the window", format!("{:.1} MiB", self.rss_max_mib)),
            ("VmHWM (peak since start)", format!("{:.1} MiB", self.rss_peak_mib)),
            ("threads", self.threads.to_string()),
            ("CPU over the window (target < 1%)", format!("{:.2} % of a core", self.cpu_pct)),
            ("CPU since start", format!("{:.2} s", self.cpu_total_s)),
        ];
        for (what, value) in rows {
            println!("{what:<36} {value:>18}");
        }
    }
}

pub async fn run(containers: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(containers > 0, "--containers must be at least 1");
    with_node("", async |kit| {
        println!(
            "one agent with {containers} idle trainings of {CPU_MILLIS}m CPU / {MEMORY_MIB} MiB; settle {} s, \
             sample {} s",
            SETTLE.as_secs(),
            WINDOW.as_secs()
        );
        let report = measure(kit, containers).await?;
        report.print();
        Ok(report)
    })
    .await
}

async fn measure(kit: &NodeKit, containers: usize) -> anyhow::Result<Report> {
    let tiny = pb::InstanceType {
        name: INSTANCE_TYPE.into(),
        cpu_millis: CPU_MILLIS,
        memory_mib: MEMORY_MIB,
        ..Default::default()
    };
    kit.admin().catalog.put_instance_type(PutInstanceTypeRequest { instance_type: Some(tiny) }).await?;
    let algo = kit.algorithm("idle", &[("train.py", SCRIPT)])?;
    let started = Instant::now();
    let names: Vec<String> = (0..containers).map(|i| format!("idle-{i}")).collect();
    for name in &names {
        let mut spec = kit.training(name, &algo, "train.py");
        spec.instance_type = INSTANCE_TYPE.into();
        kit.create(spec).await?;
    }
    for name in &names {
        let left = START_WITHIN.saturating_sub(started.elapsed());
        kit.wait_status(name, "RUNNING", left).await?;
    }
    let start_all = started.elapsed();
    let running = kit.containers().await?.iter().filter(|c| c.state == ContainerState::Running).count();
    anyhow::ensure!(running == containers, "the engine runs {running} of the {containers} containers");

    tokio::time::sleep(SETTLE).await;
    let pid = kit.agent(0).pid().context("the agent is not running")?;
    let before = cpu_ticks(pid)?;
    let window_start = Instant::now();
    let mut rss_max = 0.0f64;
    for _ in 0..WINDOW.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(status_kib(pid, "VmRSS")? as f64 / 1024.0);
    }
    let after = cpu_ticks(pid)?;
    let window = window_start.elapsed();
    let rss_mib = status_kib(pid, "VmRSS")? as f64 / 1024.0;
    anyhow::ensure!(kit.agent(0).pid() == Some(pid), "the agent restarted or died during the window");
    Ok(Report {
        containers,
        pid,
        rss_mib,
        rss_max_mib: rss_max.max(rss_mib),
        rss_peak_mib: status_kib(pid, "VmHWM")? as f64 / 1024.0,
        threads: status_kib(pid, "Threads")?,
        cpu_pct: (after - before) as f64 / USER_HZ / window.as_secs_f64() * 100.0,
        cpu_total_s: after as f64 / USER_HZ,
        start_all,
    })
}

/// utime + stime of `pid`, in USER_HZ ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))
}

/// Fields 14 and 15 of `/proc/<pid>/stat`, counted after the `)` that ends the command
/// name (which may itself hold spaces and parentheses).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The number of a `/proc/<pid>/status` line (`VmRSS:   12345 kB` → 12345).
fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&status, key).with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn parse_status(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (gantry (a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 37 12 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(49));
    }

    #[test]
    fn status_values_are_found_by_key() {
        let status = "Name:\tgantry-agent\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n";
        assert_eq!(parse_status(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status(status, "Threads"), Some(5));
        assert_eq!(parse_status(status, "VmSwap"), None);
    }
}
