//! The highest raft index whose assignment set this agent acted on, kept in its state
//! directory: a restarted agent must not act on an older set (a replica that lags sends
//! one) and remove containers a newer set had it start.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

const FILE: &str = "assignments-index";

pub struct ActedIndex {
    path: PathBuf,
    index: u64,
}

impl ActedIndex {
    /// Reads the recorded index (0 when none was recorded yet). A file that cannot be
    /// read or parsed is an error: guessing 0 would trust any replica again.
    pub fn open(state_dir: &Path) -> io::Result<ActedIndex> {
        let path = state_dir.join(FILE);
        let index = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: not an index: {e}", path.display()))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ActedIndex { path, index })
    }

    pub fn get(&self) -> u64 {
        self.index
    }

    /// Records `index` durably (write, fsync, rename, fsync the directory) before the
    /// agent acts on it; an older or equal index is already covered.
    pub fn advance(&mut self, index: u64) -> io::Result<()> {
        if index <= self.index {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(index.to_string().as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        self.index = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_survives_a_restart_and_never_goes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut acted = ActedIndex::open(dir.path()).expect("open");
        assert_eq!(acted.get(), 0);
        acted.advance(12).expect("advance");
        acted.advance(7).expect("an older index");
        assert_eq!(ActedIndex::open(dir.path()).expect("reopen").get(), 12);
        fs::write(dir.path().join(FILE), "garbage").expect("write");
        assert!(ActedIndex::open(dir.path()).is_err());
    }
}
