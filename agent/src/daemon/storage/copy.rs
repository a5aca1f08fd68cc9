//! Copying a tree the container wrote (model, checkpoints) or pip downloaded onto the
//! host, where the source is untrusted: regular files and directories only.
//!
//! Symlinks, FIFOs, sockets and devices in the source are skipped with a warning: never
//! followed, never recreated on the host, never opened (a FIFO would block the copy).
//! Every open on both sides is `O_NOFOLLOW` relative to an already opened directory, and
//! whatever stands in the destination under a copied file's name (a link someone planted,
//! a hard link to another file) is unlinked first and the file created afresh with
//! `O_EXCL`, so a copy writes only beneath its destination directory.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::beneath::{file_type, kind_name, reopen_dir, type_at};

/// Nesting deeper than this fails the copy: the tree is the container's to shape, and a
/// recursion must stay bounded.
const MAX_DEPTH: usize = 64;

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    /// `relative/path: kind` of every entry skipped.
    pub skipped: Vec<String>,
}

/// Copies the contents of directory `from` into the directory `to` (an open descriptor,
/// `O_PATH` or not), replacing files of the same name.
pub fn copy_tree(from: &Path, to: &OwnedFd) -> io::Result<Copied> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let src = rustix::fs::openat(rustix::fs::CWD, from, flags, Mode::empty())?;
    let dst = reopen_dir(to)?;
    let mut out = Copied::default();
    copy_dir(&src, &dst, Path::new(""), 0, &mut out)?;
    Ok(out)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, rel: &Path, depth: usize, out: &mut Copied) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!("{} is nested more than {MAX_DEPTH} directories deep", rel.display())));
    }
    let mut names: Vec<OsString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(src)? {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    names.sort();
    for name in names {
        let path = rel.join(&name);
        match type_at(src, &name)? {
            None => {} // removed since it was listed
            Some(FileType::Directory) => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let child = rustix::fs::openat(src, &name, flags, Mode::empty())?;
                let target = dest_dir(dst, &name, &path)?;
                copy_dir(&child, &target, &path, depth + 1, out)?;
            }
            Some(FileType::RegularFile) => copy_file(src, dst, &name, &path, out)?,
            Some(other) => skip(out, &path, other),
        }
    }
    Ok(())
}

fn skip(out: &mut Copied, path: &Path, kind: FileType) {
    tracing::warn!(path = %path.display(), kind = kind_name(kind), "not copied: only regular files and directories are");
    out.skipped.push(format!("{}: {}", path.display(), kind_name(kind)));
}

/// The destination directory `name` in `dst`: kept when it is one, made when missing,
/// replaced when something else (a link, a file) stands there.
fn dest_dir(dst: &OwnedFd, name: &OsStr, path: &Path) -> io::Result<OwnedFd> {
    match type_at(dst, name)? {
        Some(FileType::Directory) => {}
        Some(_) => {
            rustix::fs::unlinkat(dst, name, AtFlags::empty())?;
            rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o755))?;
        }
        None => rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o755))?,
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dst, name, flags, Mode::empty())
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", path.display())))
}

/// Copies one regular file, or skips it when it turned out not to be one (swapped since
/// it was listed).
fn copy_file(src: &OwnedFd, dst: &OwnedFd, name: &OsStr, path: &Path, out: &mut Copied) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let from = match rustix::fs::openat(src, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            skip(out, path, FileType::Symlink);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&from)?;
    let kind = file_type(&from)?;
    if kind != FileType::RegularFile {
        skip(out, path, kind);
        return Ok(());
    }
    match type_at(dst, name)? {
        Some(FileType::Directory) => {
            return Err(io::Error::other(format!("{}: a directory of that name is in the way", path.display())));
        }
        Some(_) => rustix::fs::unlinkat(dst, name, AtFlags::empty())?,
        None => {}
    }
    // Permission bits only: no set-uid, set-gid or sticky bit reaches the host.
    let mode = Mode::from_raw_mode(st.st_mode & 0o777);
    let wflags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let to = rustix::fs::openat(dst, name, wflags, mode)?;
    io::copy(&mut std::fs::File::from(from), &mut std::fs::File::from(to))?;
    out.files += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    use super::super::beneath::open_root;
    use super::*;

    fn dest(p: &Path) -> OwnedFd {
        open_root(p).unwrap().0
    }

    #[test]
    fn regular_files_and_directories_are_copied() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("sub/deeper")).unwrap();
        std::fs::write(src.path().join("model.bin"), b"weights").unwrap();
        std::fs::write(src.path().join("sub/deeper/config.json"), b"{}").unwrap();
        std::fs::write(dst.path().join("model.bin"), b"old").unwrap();
        let c = copy_tree(src.path(), &dest(dst.path())).unwrap();
        assert_eq!(c, Copied { files: 2, skipped: vec![] });
        assert_eq!(std::fs::read(dst.path().join("model.bin")).unwrap(), b"weights");
        assert_eq!(std::fs::read(dst.path().join("sub/deeper/config.json")).unwrap(), b"{}");
    }

    #[test]
    fn links_fifos_and_sockets_in_the_source_are_skipped_not_followed_or_recreated() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
        std::fs::write(src.path().join("ok.txt"), b"ok").unwrap();
        symlink("/etc/passwd", src.path().join("passwd")).unwrap();
        symlink(outside.path(), src.path().join("dirlink")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, src.path().join("fifo"), Mode::from_raw_mode(0o644)).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
        let c = copy_tree(src.path(), &dest(dst.path())).unwrap();
        assert_eq!(c.files, 1);
        assert_eq!(c.skipped, ["dirlink: symbolic link", "fifo: FIFO", "passwd: symbolic link", "sock: socket"]);
        let mut left: Vec<String> = std::fs::read_dir(dst.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["ok.txt"]);
    }

    #[test]
    fn a_link_planted_in_the_destination_is_replaced_not_written_through() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        std::fs::create_dir(outside.path().join("dir")).unwrap();
        std::fs::write(src.path().join("model.bin"), b"weights").unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/x"), b"x").unwrap();
        symlink(&victim, dst.path().join("model.bin")).unwrap();
        symlink(outside.path().join("dir"), dst.path().join("sub")).unwrap();
        copy_tree(src.path(), &dest(dst.path())).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(!outside.path().join("dir/x").exists());
        assert_eq!(std::fs::read(dst.path().join("model.bin")).unwrap(), b"weights");
        assert!(dst.path().join("sub").is_dir() && !dst.path().join("sub").is_symlink());
    }

    #[test]
    fn a_hard_link_in_the_destination_is_not_written_through() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let victim = dst.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        std::fs::hard_link(&victim, dst.path().join("model.bin")).unwrap();
        std::fs::write(src.path().join("model.bin"), b"weights").unwrap();
        copy_tree(src.path(), &dest(dst.path())).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    }

    #[test]
    fn set_uid_bits_do_not_reach_the_host_and_a_linked_source_root_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let f = src.path().join("tool");
        std::fs::write(&f, b"#!").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        copy_tree(src.path(), &dest(dst.path())).unwrap();
        let mode = std::fs::metadata(dst.path().join("tool")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
        let link = src.path().join("link");
        symlink(dst.path(), &link).unwrap();
        assert!(copy_tree(&link, &dest(dst.path())).is_err());
    }
}
