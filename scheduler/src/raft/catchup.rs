//! The catch-up floor of a replica that lost its disk: the highest commit index a
//! leader told it about while its log was behind it. Until the replica's durable log
//! reaches the floor it may hold only part of what it once acknowledged, so it must not
//! vote: a candidate missing the rest could otherwise win with its help. Kept in a small
//! file beside the log, so a restart in the middle of catching up does not forget it.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const FILE: &str = "catch-up-floor";

#[derive(Debug)]
pub struct CatchUpFloor {
    path: PathBuf,
    floor: u64,
}

impl CatchUpFloor {
    /// The floor recorded in `data_dir`, or none (0).
    pub fn load(data_dir: &Path) -> std::io::Result<CatchUpFloor> {
        let path = data_dir.join(FILE);
        let floor = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(CatchUpFloor { path, floor })
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Whether a replica whose durable log ends at `persisted` must still withhold votes.
    pub fn holds(&self, persisted: u64) -> bool {
        persisted < self.floor
    }

    /// Raises the floor to `commit` (durably, before returning) if it is higher.
    pub fn raise(&mut self, commit: u64) -> std::io::Result<()> {
        if commit <= self.floor {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        writeln!(f, "{commit}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        self.floor = commit;
        Ok(())
    }

    /// Forgets the floor once the durable log has reached it.
    pub fn clear_if_reached(&mut self, persisted: u64) -> std::io::Result<bool> {
        if self.floor == 0 || self.holds(persisted) {
            return Ok(false);
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(&self.path)?;
        self.floor = 0;
        Ok(true)
    }
}

fn sync_dir(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_survives_a_restart_and_clears_once_reached() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CatchUpFloor::load(dir.path()).unwrap();
        assert_eq!(f.floor(), 0);
        assert!(!f.holds(0));
        f.raise(100).unwrap();
        f.raise(40).unwrap();
        assert_eq!(f.floor(), 100);

        // A restart halfway through catching up still withholds votes.
        let mut f = CatchUpFloor::load(dir.path()).unwrap();
        assert_eq!(f.floor(), 100);
        assert!(f.holds(50));
        assert!(!f.clear_if_reached(50).unwrap());
        assert!(f.clear_if_reached(100).unwrap());
        assert!(!f.holds(0));
        assert_eq!(CatchUpFloor::load(dir.path()).unwrap().floor(), 0);
    }

    #[test]
    fn a_corrupt_floor_file_is_an_error_not_a_zero() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(CatchUpFloor::load(dir.path()).is_err());
    }
}
