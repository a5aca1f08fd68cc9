//! How a training container is confined: the [`Hardening`] of every training on this
//! node, from the agent's `[docker.hardening]` configuration (pure).
//!
//! | setting | value | why |
//! | --- | --- | --- |
//! | user | `training_user` (default `1000:1000`), never root | a process escaping the container lands as an unprivileged uid |
//! | root filesystem | read-only (`read_only_rootfs`, default true) | the image cannot be altered; writes go to the mounts below |
//! | `/tmp` | tmpfs, mode 1777 | scratch space |
//! | `HOME` (`/gantry/home`) | tmpfs owned by the user, mode 0700 | caches (`~/.cache`), config files |
//! | capabilities | none added | a non-root training needs none |
//! | PID limit | `pids_limit` (default 4096) | a fork bomb stays inside its container |

use crate::runtime::hardening::{Hardening, HardeningConfig, TmpfsMount};

use super::paths;

/// The hardening of a training container on a node configured with `config`.
pub fn training_hardening(config: &HardeningConfig) -> Hardening {
    let size_bytes = i64::try_from(config.tmp_size_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let user = config.training_user;
    Hardening {
        user: Some(user),
        read_only_rootfs: config.read_only_rootfs,
        tmpfs: vec![
            TmpfsMount { container_path: paths::TMP_DIR.into(), size_bytes, mode: 0o1777, owner: None },
            TmpfsMount { container_path: paths::HOME_DIR.into(), size_bytes, mode: 0o700, owner: Some(user) },
        ],
        pids_limit: config.pids_limit,
        // Deliberately empty: see the module doc.
        cap_add: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::UserId;

    #[test]
    fn trainings_run_unprivileged_on_a_read_only_root_with_writable_tmp_and_home() {
        let h = training_hardening(&HardeningConfig::default());
        let user = UserId { uid: 1000, gid: 1000 };
        assert_eq!(h.user, Some(user));
        assert!(h.read_only_rootfs);
        assert!(h.cap_add.is_empty());
        assert_eq!(h.pids_limit, 4096);
        let home = h.tmpfs.iter().find(|t| t.container_path == paths::HOME_DIR).unwrap();
        assert_eq!((home.owner, home.mode), (Some(user), 0o700));
        let tmp = h.tmpfs.iter().find(|t| t.container_path == "/tmp").unwrap();
        assert_eq!((tmp.owner, tmp.mode), (None, 0o1777));

        let config = HardeningConfig { tmp_size_mib: 64, pids_limit: 9, read_only_rootfs: false, ..Default::default() };
        let h = training_hardening(&config);
        assert!(h.tmpfs.iter().all(|t| t.size_bytes == 64 << 20));
        assert_eq!((h.pids_limit, h.read_only_rootfs), (9, false));
    }
}
