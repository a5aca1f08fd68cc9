//! A small loop-mounted ext4 filesystem as a process's data dir, which a fault can fill.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::cmd::run;

const BALLAST: &str = "ballast";

/// `size_mib` of ext4 (no root reserve: the scheduler runs as root) mounted at `mount`.
pub struct SmallDisk {
    image: PathBuf,
    mount: PathBuf,
}

impl SmallDisk {
    pub fn create(image: &Path, mount: &Path, size_mib: u64) -> anyhow::Result<SmallDisk> {
        let file = std::fs::File::create(image).with_context(|| format!("cannot create {}", image.display()))?;
        file.set_len(size_mib << 20)?;
        drop(file);
        let img = image.display().to_string();
        run("mkfs.ext4", &["-q", "-F", "-m", "0", &img])?;
        std::fs::create_dir_all(mount)?;
        run("mount", &["-o", "loop", &img, &mount.display().to_string()])?;
        Ok(SmallDisk { image: image.to_path_buf(), mount: mount.to_path_buf() })
    }

    pub fn mount_point(&self) -> &Path {
        &self.mount
    }

    /// Fills the filesystem to the last block: every later write fails with ENOSPC.
    pub fn fill(&self) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.mount.join(BALLAST))?;
        let chunk = vec![0u8; 1 << 16];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => return Err(e).context("filling the small disk"),
            }
        }
        // Smaller writes take the last partial blocks.
        loop {
            match f.write(&chunk[..512]) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let _ = f.sync_all();
        Ok(())
    }

    /// Frees what [`SmallDisk::fill`] took.
    pub fn drain(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.mount.join(BALLAST)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process that still has files open there must not keep the mount.
        let _ = run("umount", &["-l", &self.mount.display().to_string()]);
        let _ = std::fs::remove_file(&self.image);
    }
}
