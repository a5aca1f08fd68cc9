//! Attacks on the agent's host-path boundary, through the real scheduler, a real
//! `gantry-agent` process and the machine's Docker engine. The project is granted the
//! kit's storage directory only; every path below is inside that grant as written, so
//! the scheduler accepts it and the agent alone must refuse it on the host.
//!
//! Each refused training must fail with a reason naming the field and the rule, before
//! any container starts (its history never shows RUNNING), and leave the host unchanged.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use gantry_proto::v1 as pb;
use gantry_tests::SandboxOptions;
use gantry_tests::nodes::{NodeKit, wait_for};

const RUN: Duration = Duration::from_secs(90);

fn dataset(name: &str, path: String) -> pb::Dataset {
    pb::Dataset { name: name.into(), path }
}

/// Waits for FAIL TRAIN, asserts the reason holds every one of `needles`, that no
/// container of it ever ran, and returns the reason.
async fn refused(kit: &NodeKit, name: &str, needles: &[&str]) -> anyhow::Result<String> {
    let t = kit.wait_status(name, "FAIL TRAIN", RUN).await?;
    for n in needles {
        assert!(t.status_reason.contains(n), "{name}: the reason lacks {n:?}: {}", t.status_reason);
    }
    let statuses: Vec<&str> = t.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["CREATE REQUESTED", "CREATE IN PROGRESS", "FAIL TRAIN"], "{name}: no container ran");
    wait_for(RUN, "no container left", || async {
        let left = kit.containers_of(&t.id).await?;
        anyhow::ensure!(left.is_empty(), "{name}: containers {left:?}");
        Ok(())
    })
    .await?;
    Ok(t.status_reason)
}

/// A change to a training spec.
type Edit<'a> = dyn Fn(&mut pb::TrainingSpec) + 'a;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_fifos_and_linked_outputs_in_a_granted_root_fail_the_training_before_it_starts() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("plain", &[("train.py", "print('ran', flush=True)\n")])?;
    let data = kit.dir("data");
    symlink("/etc/shadow", data.join("shadow"))?;
    symlink("/etc", data.join("etc"))?;
    mkfifo(&data.join("pipe"))?;
    // A host directory outside the grant, reached through a link inside it.
    let host = tempfile::Builder::new().prefix("gantry-attack-host-").tempdir()?;
    std::fs::write(host.path().join("keep"), "host file")?;
    symlink(host.path(), kit.dir("out").join("evil"))?;

    let cases: [(&str, &Edit, &[&str]); 5] = [
        (
            "shadow-file",
            &|s| s.datasets = vec![dataset("train", kit.url("data/shadow"))],
            &["datasets[0].path", "data/shadow is a symbolic link", "never followed"],
        ),
        (
            "etc-dir",
            &|s| s.datasets = vec![dataset("train", kit.url("data/etc/ssh"))],
            &["datasets[0].path", "data/etc is a symbolic link"],
        ),
        ("fifo", &|s| s.datasets = vec![dataset("train", kit.url("data/pipe"))], &["datasets[0].path", "is a FIFO"]),
        (
            "linked-output",
            &|s| s.output_path = kit.url("out/evil/run-1"),
            &["output_path", "out/evil is a symbolic link"],
        ),
        (
            "linked-ckpt",
            &|s| s.checkpoint_output_path = kit.url("out/evil"),
            &["checkpoint_output_path", "out/evil is a symbolic link"],
        ),
    ];
    for (name, edit, _) in &cases {
        let mut spec = kit.training(name, &algo, "train.py");
        edit(&mut spec);
        kit.create(spec).await?;
    }
    for (name, _, needles) in &cases {
        refused(&kit, name, needles).await?;
    }
    assert_eq!(entries(host.path()), ["keep"], "nothing written into the linked host directory");
    assert_eq!(std::fs::read_to_string(host.path().join("keep"))?, "host file");
    kit.finish().await
}

/// A wheelhouse pip on the node may read (world-readable: pip runs as nobody) with a
/// wheel `gantryprobe-1.0` and a source distribution `gantrysdist-1.0` whose `setup.py`
/// would create `marker` if anything ever built it.
fn wheelhouse(marker: &Path) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("gantry-attack-wheels-").tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let script = r#"
import io, sys, tarfile, zipfile
out, marker = sys.argv[1], sys.argv[2]
di = "gantryprobe-1.0.dist-info"
with zipfile.ZipFile(f"{out}/gantryprobe-1.0-py3-none-any.whl", "w") as z:
    z.writestr("gantryprobe.py", "VALUE = 'probe-ok'\n")
    z.writestr(f"{di}/METADATA", "Metadata-Version: 2.1\nName: gantryprobe\nVersion: 1.0\n")
    z.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: gantry-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{di}/RECORD", "")
with tarfile.open(f"{out}/gantrysdist-1.0.tar.gz", "w:gz") as t:
    for name, text in [
        ("PKG-INFO", "Metadata-Version: 2.1\nName: gantrysdist\nVersion: 1.0\n"),
        ("setup.py", f"open({marker!r}, 'w').write('built')\nfrom setuptools import setup\nsetup(name='gantrysdist', version='1.0')\n"),
    ]:
        data = text.encode()
        info = tarfile.TarInfo(f"gantrysdist-1.0/{name}")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
"#;
    let status = std::process::Command::new("python3").arg("-c").arg(script).arg(dir.path()).arg(marker).status()?;
    anyhow::ensure!(status.success(), "building the wheelhouse failed");
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_with_index_vcs_path_or_outside_includes_are_refused_by_line() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let marker = std::env::temp_dir().join(format!("gantry-attack-built-{:016x}", rand::random::<u64>()));
    let wheels = wheelhouse(&marker)?;
    // The node's pip sees only the test's wheelhouse: no network, deterministic.
    let env = vec![
        ("PIP_NO_INDEX".to_string(), "1".to_string()),
        ("PIP_FIND_LINKS".to_string(), wheels.path().display().to_string()),
    ];
    kit.add_agent_with_env("node-1", "", env).await?;
    std::fs::write(kit.dir("algo").join("outside.txt"), "numpy\n")?;
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "index-url",
            "numpy\n--index-url http://127.0.0.1:9/simple\n",
            &["requirements.txt line 2: --index-url is not allowed", "package index"],
        ),
        (
            "vcs",
            "# deps\ngit+https://github.com/psf/requests.git#egg=requests\n",
            &["requirements.txt line 2: git+https://github.com/psf/requests.git#egg=requests is not allowed", "VCS"],
        ),
        ("local-path", "./vendored/pkg\n", &["requirements.txt line 1: ./vendored/pkg is not allowed", "local path"]),
        (
            "abs-path",
            "gantryprobe\n/etc/passwd\n",
            &["requirements.txt line 2: /etc/passwd is not allowed", "local path"],
        ),
        ("editable", "-e .\n", &["requirements.txt line 1: -e is not allowed"]),
        (
            "outside-include",
            "numpy\n\n-r ../outside.txt\n",
            &["requirements.txt line 3: -r ../outside.txt is not allowed", "inside the algorithm directory"],
        ),
        (
            "sdist-only",
            "gantrysdist==1.0\n",
            &["no wheel of gantrysdist==1.0 for cp3.11", "never builds a source distribution"],
        ),
    ];
    for (name, requirements, _) in &cases {
        let algo = kit.algorithm(name, &[("requirements.txt", requirements), ("train.py", "print('ran')\n")])?;
        kit.create(kit.training(name, &algo, "train.py")).await?;
    }
    // A wheel by name still installs: pip runs as nobody and the wheel reaches the container.
    let good = kit.algorithm(
        "wheel-ok",
        &[
            ("requirements.txt", "gantryprobe==1.0\n"),
            ("train.py", "import gantryprobe\nprint('imported', gantryprobe.VALUE, flush=True)\n"),
        ],
    )?;
    kit.create(kit.training("wheel-ok", &good, "train.py")).await?;
    for (name, _, needles) in &cases {
        refused(&kit, name, needles).await?;
    }
    assert!(!marker.exists(), "a source distribution was built on the host");
    kit.wait_status("wheel-ok", "COMPLETE", RUN).await?;
    let logs = kit.logs("wheel-ok", false).await?;
    assert!(logs.contains("imported probe-ok"), "{logs}");
    kit.finish().await
}

/// Writes a model plus a link to `/etc/passwd`, a link to a host directory, a FIFO and
/// a socket into the model and checkpoint directories.
const HOSTILE_SCRIPT: &str = r#"
import os, socket
for d in (os.environ["EM_MODEL_DIR"], os.environ["EM_CHECKPOINT_DIR"]):
    with open(os.path.join(d, "model.bin"), "w") as f:
        f.write("weights")
    os.makedirs(os.path.join(d, "sub"), exist_ok=True)
    with open(os.path.join(d, "sub", "config.json"), "w") as f:
        f.write("{}")
    os.symlink("/etc/passwd", os.path.join(d, "passwd"))
    os.symlink("/tmp", os.path.join(d, "hostdir"))
    os.symlink("/etc/cron.d", os.path.join(d, "sub", "cron"))
    os.mkfifo(os.path.join(d, "pipe"))
    socket.socket(socket.AF_UNIX).bind(os.path.join(d, "sock"))
print("planted", flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_fifos_and_sockets_a_training_writes_are_not_copied_out_and_a_planted_link_is_not_written_through()
-> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("hostile", &[("train.py", HOSTILE_SCRIPT)])?;
    let host = tempfile::Builder::new().prefix("gantry-attack-host-").tempdir()?;
    let victim = host.path().join("victim");
    std::fs::write(&victim, "untouched")?;
    // Someone with write access to the output root planted a link where the model goes.
    let out = kit.dir("out/hostile");
    symlink(&victim, out.join("model.bin"))?;
    let passwd_before = std::fs::read("/etc/passwd")?;

    let mut spec = kit.training("hostile", &algo, "train.py");
    spec.checkpoint_output_path = kit.url("ckpt/hostile");
    kit.create(spec).await?;
    let t = kit.wait_status("hostile", "COMPLETE", RUN).await?;
    assert!(t.history.iter().any(|h| h.status == "RUNNING"));

    for dir in [out.clone(), kit.dir("ckpt/hostile")] {
        assert_eq!(entries(&dir), ["model.bin", "sub"], "{}: only regular files and directories", dir.display());
        assert_eq!(entries(&dir.join("sub")), ["config.json"]);
        let meta = std::fs::symlink_metadata(dir.join("model.bin"))?;
        assert!(meta.file_type().is_file(), "the planted link was replaced by the file");
        assert_eq!(std::fs::read_to_string(dir.join("model.bin"))?, "weights");
    }
    assert_eq!(std::fs::read_to_string(&victim)?, "untouched", "nothing written through the planted link");
    assert_eq!(entries(host.path()), ["victim"]);
    assert_eq!(std::fs::read("/etc/passwd")?, passwd_before);
    kit.finish().await
}

fn mkfifo(path: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("mkfifo").arg(path).status()?;
    anyhow::ensure!(status.success(), "mkfifo {} failed", path.display());
    Ok(())
}
