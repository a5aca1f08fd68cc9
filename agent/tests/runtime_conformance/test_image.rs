//! The image the Docker conformance tests run: built here, with no registry and no
//! Dockerfile, from the host's own `sh`, `sleep` and `cat` and the shared libraries
//! `ldd` names, imported with `POST /images/create?fromSrc=-` (= `docker import`).
//!
//! `/usr/bin/python3` in it is a stand-in `sh` script that prints its arguments and
//! the `EM_*` variables, so the launcher can be run end to end.
//!
//! The tag is a hash of the contents: an unchanged image is imported once per engine.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::Command;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::{Docker, body_full};
use futures::TryStreamExt;

const REPO: &str = "gantry-test/sh";
const PROGRAMS: [&str; 3] = ["/bin/sh", "/bin/sleep", "/bin/cat"];

const PYTHON_STAND_IN: &str = r#"#!/bin/sh
echo "python3 $*"
for a in "$@"; do echo "arg=[$a]"; done
echo "EM_HP_EPOCHS=$EM_HP_EPOCHS"
echo "EM_HPS=$EM_HPS"
echo "EM_DATASET_TRAIN=$EM_DATASET_TRAIN"
echo "pwd=$(pwd)"
cat "$EM_DATASET_TRAIN/data.csv"
echo done > "$EM_MODEL_DIR/model.txt"
if echo x > "$EM_SOURCE_DIR/written"; then echo "source is writable"; fi
exit "${EXIT_WITH:-0}"
"#;

/// Ensures the test image exists on the engine and returns its reference.
pub async fn ensure(docker: &Docker) -> String {
    let files = contents();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    let tag = format!("{:016x}", hasher.finish());
    let reference = format!("{REPO}:{tag}");
    if docker.inspect_image(&reference).await.is_ok() {
        return reference;
    }
    let tar = tarball(&files);
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(REPO).tag(&tag).build();
    docker
        .create_image(Some(options), Some(body_full(bytes::Bytes::from(tar))), None)
        .try_collect::<Vec<_>>()
        .await
        .expect("importing the test image");
    reference
}

/// `(path in image, mode, bytes)` of every file, sorted.
fn contents() -> Vec<(String, u32, Vec<u8>)> {
    let mut paths = BTreeSet::new();
    for program in PROGRAMS {
        paths.insert(program.to_string());
        let out = Command::new("ldd").arg(program).output().expect("running ldd");
        for token in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if token.starts_with('/') {
                paths.insert(token.to_string());
            }
        }
    }
    let mut files: Vec<(String, u32, Vec<u8>)> = paths
        .into_iter()
        // Reading follows symlinks (/bin/sh -> dash, /lib64/ld-linux… -> /lib/…).
        .map(|p| {
            let bytes = std::fs::read(Path::new(&p)).unwrap_or_else(|e| panic!("reading {p}: {e}"));
            (p, 0o755, bytes)
        })
        .collect();
    files.push(("/usr/bin/python3".into(), 0o755, PYTHON_STAND_IN.as_bytes().to_vec()));
    files
}

fn tarball(files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["tmp", "etc", "proc", "sys", "dev"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(if dir == "tmp" { 0o1777 } else { 0o755 });
        header.set_size(0);
        builder.append_data(&mut header, format!("{dir}/"), std::io::empty()).expect("tar dir");
    }
    for (path, mode, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(*mode);
        header.set_size(bytes.len() as u64);
        builder.append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice()).expect("tar file");
    }
    builder.into_inner().expect("tar finish")
}
