//! The host directories a training writes (model, checkpoints, TensorBoard, installed
//! packages) are handed to the training's uid:gid, since the training does not run as
//! the agent's user.
//!
//! Decision: the agent (normally root) `lchown`s each directory it created to the
//! training user with mode 0750, rather than making it group- or world-writable: no
//! other uid on the node can write there, and the agent still reads everything as
//! root when it uploads. An agent that is not root can only run trainings as its own
//! uid; any other `training_user` is a clear start failure, never a silently
//! unwritable directory.

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::runtime::UserId;

/// Owner rwx, group r-x, others nothing.
const MODE: u32 = 0o750;

/// Makes each of `dirs` (existing directories the agent created) owned by `user`.
/// The error is the user-facing reason.
pub fn hand_over(dirs: &[&Path], user: UserId) -> Result<(), String> {
    for dir in dirs {
        let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if meta.uid() != user.uid || meta.gid() != user.gid {
            // lchown: never follow a link, although the agent just created these.
            std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid)).map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied => format!(
                    "the agent cannot give {} to the training user {user}: run the agent as root, or set \
                     docker.hardening.training_user to the agent's own uid:gid",
                    dir.display()
                ),
                _ => format!("giving {} to {user}: {e}", dir.display()),
            })?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(MODE))
            .map_err(|e| format!("setting the mode of {}: {e}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The uid:gid new files of this process get.
    fn me() -> UserId {
        let probe = tempfile::tempdir().unwrap();
        let m = std::fs::metadata(probe.path()).unwrap();
        UserId { uid: m.uid(), gid: m.gid() }
    }

    #[test]
    fn directories_end_owned_by_the_user_and_closed_to_others() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        std::fs::create_dir(&dir).unwrap();
        let user = me();
        hand_over(&[&dir], user).unwrap();
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (user.uid, user.gid, MODE));
    }

    #[test]
    fn another_user_needs_root_and_a_link_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ckpt");
        std::fs::create_dir(&dir).unwrap();
        let other = UserId { uid: 4242, gid: 4343 };
        match hand_over(&[&dir], other) {
            // Running as root (CI, this machine): the directory changes hands.
            Ok(()) => assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 4242),
            Err(reason) => assert!(reason.contains("run the agent as root"), "{reason}"),
        }
        let link = root.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        assert!(hand_over(&[&link], other).unwrap_err().contains("is not a directory"));
        assert_ne!(std::fs::metadata("/etc").unwrap().uid(), 4242, "the link's target is untouched");
    }
}
