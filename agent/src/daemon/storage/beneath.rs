//! Walking beneath a directory without following symlinks: every component is opened
//! with `O_NOFOLLOW` relative to the one before (`openat`), so a link anywhere below the
//! granted root stops the walk instead of leading out of it. `O_PATH` opens never block,
//! so a FIFO on the way is reported, not waited on.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is a symbolic link; links below a granted root are never followed")]
    Symlink { path: PathBuf },
    #[error("{path} is a {kind}, not a directory")]
    NotADirectory { path: PathBuf, kind: &'static str },
    #[error("{path} is a {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What a file type is called in reasons.
pub fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

pub fn file_type(fd: impl AsFd) -> io::Result<FileType> {
    Ok(FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode))
}

/// The type of `name` in `dir`, not following a link; `None` when it does not exist.
pub fn type_at(dir: impl AsFd, name: &OsStr) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens a directory the operator named (a granted root or the agent's own), following
/// links in it as the operator wrote it. Returns the descriptor and the real path.
pub fn open_root(root: &Path) -> Result<(OwnedFd, PathBuf), WalkError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(rustix::fs::CWD, root, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::NOENT => WalkError::Missing(root.to_path_buf()),
        rustix::io::Errno::NOTDIR => WalkError::NotADirectory { path: root.to_path_buf(), kind: "file" },
        e => WalkError::Io { path: root.to_path_buf(), source: e.into() },
    })?;
    let real = real_path(&fd).map_err(|source| WalkError::Io { path: root.to_path_buf(), source })?;
    Ok((fd, real))
}

/// Where an open descriptor is: the kernel's own record, not a re-resolution of a name.
pub fn real_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens `segments` beneath `root` (an `O_PATH` directory descriptor), each one a real
/// directory, none a link. With `create`, missing directories are made (mode 0755).
/// `shown` is `root`'s path as reasons show it.
pub fn walk(root: &OwnedFd, shown: &Path, segments: &[&OsStr], create: bool) -> Result<OwnedFd, WalkError> {
    let mut cur = root.try_clone().map_err(|source| WalkError::Io { path: shown.to_path_buf(), source })?;
    let mut path = shown.to_path_buf();
    for seg in segments {
        path.push(seg);
        cur = step(&cur, seg, &path, create)?;
    }
    Ok(cur)
}

fn step(dir: &OwnedFd, name: &OsStr, path: &Path, create: bool) -> Result<OwnedFd, WalkError> {
    let io = |source: io::Error| WalkError::Io { path: path.to_path_buf(), source };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) if create => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(io(e.into())),
            }
            rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| io(e.into()))?
        }
        Err(rustix::io::Errno::NOENT) => return Err(WalkError::Missing(path.to_path_buf())),
        Err(e) => return Err(io(e.into())),
    };
    match file_type(&fd).map_err(io)? {
        FileType::Directory => Ok(fd),
        FileType::Symlink => Err(WalkError::Symlink { path: path.to_path_buf() }),
        other => Err(WalkError::NotADirectory { path: path.to_path_buf(), kind: kind_name(other) }),
    }
}

/// Reopens an `O_PATH` directory descriptor for reading its entries or creating in it.
pub fn reopen_dir(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(fd, ".", flags, Mode::empty())?)
}

/// Reads a regular file `name` in `dir` (no link followed, a FIFO never waited on), at
/// most `limit` bytes. `Ok(None)` when it does not exist.
pub fn read_file_at(dir: &OwnedFd, name: &OsStr, limit: u64, shown: &Path) -> Result<Option<Vec<u8>>, WalkError> {
    use std::io::Read as _;
    let io = |source: io::Error| WalkError::Io { path: shown.to_path_buf(), source };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(WalkError::Symlink { path: shown.to_path_buf() }),
        Err(e) => return Err(io(e.into())),
    };
    match file_type(&fd).map_err(io)? {
        FileType::RegularFile => {}
        other => return Err(WalkError::NotAFile { path: shown.to_path_buf(), kind: kind_name(other) }),
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd).take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(io(io::Error::other(format!("larger than {limit} bytes"))));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn segs(s: &str) -> Vec<&OsStr> {
        s.split('/').map(OsStr::new).collect()
    }

    #[test]
    fn a_walk_reaches_real_directories_and_reports_the_real_path() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        let (root, real) = open_root(t.path()).unwrap();
        let fd = walk(&root, t.path(), &segs("a/b"), false).unwrap();
        assert_eq!(real_path(&fd).unwrap(), real.join("a/b"));
    }

    #[test]
    fn a_link_anywhere_below_the_root_stops_the_walk() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        symlink("/etc", t.path().join("a/etc")).unwrap();
        symlink(t.path().join("a"), t.path().join("inside")).unwrap();
        let (root, _) = open_root(t.path()).unwrap();
        for (rel, create) in [("a/etc", false), ("a/etc/cron.d", true), ("inside", false), ("inside/x", true)] {
            let e = walk(&root, t.path(), &segs(rel), create).unwrap_err();
            assert!(matches!(e, WalkError::Symlink { .. }), "{rel}: {e}");
        }
        assert!(!Path::new("/etc/cron.d/x").exists());
        assert!(!t.path().join("a/x").exists(), "nothing created through the inside link");
    }

    #[test]
    fn a_fifo_is_reported_not_waited_on_and_a_missing_path_is_named() {
        let t = tempfile::tempdir().unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, t.path().join("pipe"), Mode::from_raw_mode(0o644)).unwrap();
        std::fs::write(t.path().join("file"), b"x").unwrap();
        let (root, _) = open_root(t.path()).unwrap();
        let e = walk(&root, t.path(), &segs("pipe"), false).unwrap_err();
        assert!(e.to_string().ends_with("pipe is a FIFO, not a directory"), "{e}");
        let e = walk(&root, t.path(), &segs("file"), true).unwrap_err();
        assert!(e.to_string().contains("is a regular file"), "{e}");
        let e = walk(&root, t.path(), &segs("nope/deeper"), false).unwrap_err();
        assert!(matches!(e, WalkError::Missing(p) if p.ends_with("nope")));
        let e = read_file_at(&reopen_dir(&root).unwrap(), OsStr::new("pipe"), 10, Path::new("pipe")).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn create_makes_the_missing_directories() {
        let t = tempfile::tempdir().unwrap();
        let (root, _) = open_root(t.path()).unwrap();
        walk(&root, t.path(), &segs("x/y/z"), true).unwrap();
        assert!(t.path().join("x/y/z").is_dir());
    }

    #[test]
    fn read_file_at_refuses_links_and_oversized_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("req.txt"), b"numpy\n").unwrap();
        symlink("/etc/passwd", t.path().join("evil.txt")).unwrap();
        let (root, _) = open_root(t.path()).unwrap();
        let dir = reopen_dir(&root).unwrap();
        let shown = Path::new("x");
        assert_eq!(read_file_at(&dir, OsStr::new("req.txt"), 100, shown).unwrap().unwrap(), b"numpy\n");
        assert!(read_file_at(&dir, OsStr::new("none.txt"), 100, shown).unwrap().is_none());
        assert!(matches!(read_file_at(&dir, OsStr::new("evil.txt"), 100, shown), Err(WalkError::Symlink { .. })));
        assert!(read_file_at(&dir, OsStr::new("req.txt"), 3, shown).is_err());
    }
}
