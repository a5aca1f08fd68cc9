//! `prepare` against real directories: what is refused before anything is touched, and
//! what Docker is asked to mount.

use std::os::unix::fs::symlink;
use std::path::Path;

use gantry_proto::v1 as pb;

use super::*;
use crate::daemon::storage::DenyList;

struct Fixture {
    dir: tempfile::TempDir,
    storage: Storage,
    pip: PipConfig,
    hardening: crate::runtime::HardeningConfig,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("granted/algo")).unwrap();
        std::fs::write(dir.path().join("granted/algo/train.py"), "print(1)\n").unwrap();
        std::fs::create_dir_all(dir.path().join("granted/data")).unwrap();
        let deny = DenyList::new(&dir.path().join("state"), Path::new("/var/run/docker.sock"), &[]);
        Fixture {
            storage: Storage { nas: Default::default(), deny },
            pip: PipConfig::default(),
            hardening: Default::default(),
            dir,
        }
    }

    fn url(&self, rel: &str) -> String {
        format!("file://{}", self.dir.path().join(rel).display())
    }

    fn site(&self) -> Site<'_> {
        Site {
            cluster: "c",
            node_id: "node-1",
            region: "local",
            storage: &self.storage,
            pip: &self.pip,
            work_dir: self.dir.path().join("state/work/w/0"),
            tensorboard_dir: self.dir.path().join("state/tb/w/0"),
            hardening: &self.hardening,
        }
    }

    fn assignment(
        &self,
        edit: impl FnOnce(&mut pb::TrainingSpec),
        grants: Option<pb::StorageGrants>,
    ) -> WorkAssignment {
        let mut spec = pb::TrainingSpec {
            name: "t".into(),
            experiment: "e".into(),
            algorithm_path: self.url("granted/algo"),
            entry_point: "train.py".into(),
            image: "python311".into(),
            instance_type: "cpu-small".into(),
            instance_count: 1,
            nproc_per_node: 1,
            datasets: vec![pb::Dataset { name: "train".into(), path: self.url("granted/data") }],
            output_path: self.url("granted/out/t"),
            timeout_minutes: 60,
            ..Default::default()
        };
        edit(&mut spec);
        WorkAssignment {
            workload_id: "w".into(),
            project: "team-a".into(),
            training_name: "t".into(),
            spec: Some(spec),
            image: "gantry/python:3.11".into(),
            cpu_millis: 1000,
            memory_mib: 1024,
            grants,
            ..Default::default()
        }
    }

    fn granted(&self) -> Option<pb::StorageGrants> {
        Some(pb::StorageGrants { read: vec![], write: vec![self.url("granted")] })
    }
}

async fn reason(f: &Fixture, a: &WorkAssignment) -> String {
    match prepare(a, &f.site()).await {
        Ok(_) => panic!("prepared"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn without_grants_nothing_is_touched_and_the_reason_names_the_first_field() {
    let f = Fixture::new();
    let r = reason(&f, &f.assignment(|_| {}, None)).await;
    assert!(r.starts_with("algorithm_path: file://"), "{r}");
    assert!(r.contains("is outside the storage this project may read"), "{r}");
    assert!(!f.dir.path().join("granted/out").exists(), "no output made");
    assert!(!f.dir.path().join("state").exists(), "no work directory made");
}

#[tokio::test]
async fn an_output_outside_the_write_grant_or_on_the_deny_list_is_refused_before_anything_is_made() {
    let f = Fixture::new();
    let read_only = Some(pb::StorageGrants { read: vec![f.url("granted")], write: vec![] });
    let r = reason(&f, &f.assignment(|_| {}, read_only)).await;
    assert!(r.starts_with("output_path: ") && r.contains("may write"), "{r}");
    let everything = Some(pb::StorageGrants { read: vec![], write: vec!["file:///".into()] });
    let r = reason(&f, &f.assignment(|s| s.output_path = "file:///etc/cron.d".into(), everything)).await;
    assert!(r.starts_with("output_path: file:///etc/cron.d is refused by every agent"), "{r}");
    assert!(!f.dir.path().join("state").exists());
}

#[tokio::test]
async fn inputs_are_mounted_read_only_from_their_real_directories_and_outputs_are_made() {
    let f = Fixture::new();
    let p = prepare(&f.assignment(|_| {}, f.granted()), &f.site()).await.unwrap();
    let real = |rel: &str| std::fs::canonicalize(f.dir.path().join(rel)).unwrap().display().to_string();
    let mount = |target: &str| p.spec.mounts.iter().find(|m| m.container_path == target).unwrap().clone();
    let source = mount("/gantry/source");
    assert_eq!((source.host_path.as_str(), source.read_only), (real("granted/algo").as_str(), true));
    let data = mount("/gantry/datasets/train");
    assert_eq!((data.host_path.as_str(), data.read_only), (real("granted/data").as_str(), true));
    assert!(f.dir.path().join("granted/out/t").is_dir());
}

#[tokio::test]
async fn a_linked_algorithm_a_fifo_dataset_and_a_missing_entry_point_fail_clearly() {
    let f = Fixture::new();
    symlink("/etc", f.dir.path().join("granted/etc")).unwrap();
    let r = reason(&f, &f.assignment(|s| s.algorithm_path = f.url("granted/etc"), f.granted())).await;
    assert!(r.starts_with("algorithm_path: ") && r.contains("is a symbolic link"), "{r}");
    rustix::fs::mkfifoat(rustix::fs::CWD, f.dir.path().join("granted/pipe"), rustix::fs::Mode::from_raw_mode(0o644))
        .unwrap();
    let a = f.assignment(|s| s.datasets[0].path = f.url("granted/pipe"), f.granted());
    let r = reason(&f, &a).await;
    assert!(r.starts_with("datasets[0].path: ") && r.contains("is a FIFO"), "{r}");
    let r = reason(&f, &f.assignment(|s| s.entry_point = "nope/train.py".into(), f.granted())).await;
    assert!(r.starts_with("entry point nope/train.py not found in file://"), "{r}");
}

#[tokio::test]
async fn a_forbidden_requirements_line_fails_before_pip_runs() {
    let f = Fixture::new();
    std::fs::write(f.dir.path().join("granted/algo/requirements.txt"), "numpy\n-i http://127.0.0.1:9/\n").unwrap();
    let r = reason(&f, &f.assignment(|_| {}, f.granted())).await;
    assert!(r.starts_with("requirements.txt line 2: -i is not allowed"), "{r}");
    assert!(!f.dir.path().join("state").exists(), "no work directory made");
    assert!(!f.dir.path().join("granted/out").exists(), "no output made");
}
