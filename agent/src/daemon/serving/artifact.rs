//! A pod's artifact directory on this host: the same checks as a training's inputs
//! (the assignment's grants, read access; the deny list; a walk below the grant root
//! that follows no link), so a pod mounts nothing a training could not read.

use gantry_domain::{Access, StoragePath};
use gantry_proto::convert;
use gantry_proto::v1::{ServingPod, WorkAssignment};

use super::super::storage::Storage;

/// The real directory to mount for `pod`, or the reason it cannot be (naming
/// `artifact_path`): a refusal retrying will not fix.
pub fn resolve(storage: &Storage, a: &WorkAssignment, pod: &ServingPod, node_id: &str) -> Result<String, String> {
    let grants = a
        .grants
        .as_ref()
        .map(|g| convert::storage_grants_parse("grants", g))
        .transpose()
        .map_err(|e| format!("the assignment's storage grants are malformed: {e}"))?;
    let path = StoragePath::parse("artifact_path", &pod.artifact_path).map_err(|e| e.to_string())?;
    let at = storage.locate(grants.as_ref(), "artifact_path", Access::Read, &path).map_err(|e| e.to_string())?;
    let opened = storage.open_dir(&at).map_err(|e| format!("{e} (node {node_id})"))?;
    Ok(opened.real.display().to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use gantry_proto::v1::StorageGrants;

    use super::*;

    fn assignment(read: &str) -> WorkAssignment {
        WorkAssignment {
            grants: Some(StorageGrants { read: vec![read.to_string()], write: vec![] }),
            ..Default::default()
        }
    }

    fn pod(path: &str) -> ServingPod {
        ServingPod { pod_id: "p".into(), artifact_path: path.into(), ..Default::default() }
    }

    #[test]
    fn only_a_granted_directory_reached_without_links_is_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("models");
        std::fs::create_dir_all(root.join("mnist")).unwrap();
        symlink("/etc", root.join("evil")).unwrap();
        let storage = Storage::default();
        let a = assignment(&format!("file://{}", root.display()));
        let ok = resolve(&storage, &a, &pod(&format!("file://{}/mnist", root.display())), "n1").unwrap();
        assert_eq!(ok, root.join("mnist").display().to_string());
        let refused = [
            format!("file://{}/evil", root.display()),
            format!("file://{}/mnist/../../..", root.display()),
            "file:///etc".to_string(),
            format!("file://{}/absent", root.display()),
            "obs://bucket/m".to_string(),
        ];
        for path in refused {
            let reason = resolve(&storage, &a, &pod(&path), "n1").expect_err(&path);
            assert!(reason.contains("artifact_path"), "{path}: {reason}");
        }
    }
}
