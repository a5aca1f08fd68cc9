//! [`SysinfoHost`]: [`HostProbe`] over the `sysinfo` crate.

use std::path::{Path, PathBuf};

use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

use super::{HostProbe, HostSample, InventoryError, LoadAverage};

/// Samples this host. Keeps its `sysinfo` state between samples because CPU usage is
/// the difference between two readings.
pub struct SysinfoHost {
    system: System,
    disks: Disks,
    data_dir: PathBuf,
}

impl std::fmt::Debug for SysinfoHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysinfoHost").field("data_dir", &self.data_dir).finish()
    }
}

impl SysinfoHost {
    /// `data_dir` is where the agent keeps workload data; its filesystem is the
    /// node's disk. It must exist.
    pub fn new(data_dir: &Path) -> Result<Self, InventoryError> {
        let data_dir = data_dir.canonicalize().map_err(|e| InventoryError::Probe {
            what: "data directory",
            message: format!("{}: {e}", data_dir.display()),
        })?;
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(refresh).map_err(probe("system"))?;
        let disks = Disks::new_with_refreshed_list().map_err(probe("disks"))?;
        Ok(SysinfoHost { system, disks, data_dir })
    }
}

impl HostProbe for SysinfoHost {
    fn sample(&mut self) -> Result<HostSample, InventoryError> {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        // Re-list: the data directory's filesystem may be mounted after start.
        self.disks.refresh(true);
        let mounts: Vec<(PathBuf, u64, u64)> =
            self.disks.iter().map(|d| (d.mount_point().to_path_buf(), d.total_space(), d.available_space())).collect();
        let (disk_total_bytes, disk_available_bytes) = filesystem_of(&mounts, &self.data_dir)
            .ok_or_else(|| InventoryError::DataDirFilesystem(self.data_dir.display().to_string()))?;
        let load = System::load_average()
            .map(|l| LoadAverage { one: l.one, five: l.five, fifteen: l.fifteen })
            .unwrap_or_default();
        let cpus = self.system.cpus();
        Ok(HostSample {
            cpu_count: u32::try_from(cpus.len()).unwrap_or(u32::MAX),
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            disk_total_bytes,
            disk_available_bytes,
            load,
            cpu_usage_pct: cpus.iter().map(|c| c.usage()).collect(),
        })
    }
}

fn probe(what: &'static str) -> impl Fn(sysinfo::Error) -> InventoryError {
    move |e| InventoryError::Probe { what, message: e.to_string() }
}

/// `(total, available)` of the mount with the longest mount point containing `path`.
fn filesystem_of(mounts: &[(PathBuf, u64, u64)], path: &Path) -> Option<(u64, u64)> {
    mounts
        .iter()
        .filter(|(mount, _, _)| path.starts_with(mount))
        .max_by_key(|(mount, _, _)| mount.components().count())
        .map(|(_, total, available)| (*total, *available))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_mount_holding_the_path_wins() {
        let mounts = vec![
            (PathBuf::from("/"), 100, 10),
            (PathBuf::from("/var/lib"), 200, 20),
            (PathBuf::from("/var/lib/gantry-other"), 300, 30),
        ];
        assert_eq!(filesystem_of(&mounts, Path::new("/var/lib/gantry")), Some((200, 20)));
        assert_eq!(filesystem_of(&mounts, Path::new("/home/x")), Some((100, 10)));
        assert_eq!(filesystem_of(&mounts[1..], Path::new("/home/x")), None);
    }

    #[test]
    fn samples_this_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = SysinfoHost::new(dir.path()).unwrap();
        let first = host.sample().unwrap();
        assert!(first.cpu_count >= 1);
        assert_eq!(first.cpu_usage_pct.len(), first.cpu_count as usize);
        assert!(first.memory_total_bytes > 0 && first.memory_used_bytes <= first.memory_total_bytes);
        assert!(first.disk_total_bytes > 0 && first.disk_available_bytes <= first.disk_total_bytes);
        let inv = crate::inventory::node_inventory(&first, vec![], &Default::default()).unwrap();
        assert_eq!(inv.cpu_millis, u64::from(first.cpu_count) * 1000);
        assert!(SysinfoHost::new(Path::new("/nonexistent/gantry")).is_err());
    }
}
