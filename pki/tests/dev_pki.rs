//! The development PKI on disk: idempotence, private key modes, reissuing,
//! concurrent callers, and errors that name the offending file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gantry_pki::{Error, TlsFiles, ensure_dev_pki, issue_leaf, server_tls};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn contents(files: &TlsFiles) -> [Vec<u8>; 3] {
    [&files.ca_cert, &files.cert, &files.key].map(|p| fs::read(p).expect("read"))
}

#[test]
fn second_call_reuses_the_same_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ensure_dev_pki(dir.path(), &names(&["sched-1"])).expect("first");
    let before = contents(&first);
    let second = ensure_dev_pki(dir.path(), &names(&["sched-1"])).expect("second");
    assert_eq!(first, second);
    assert_eq!(before, contents(&second));
    assert_eq!(first.ca_cert, dir.path().join("ca.pem"));
    assert_eq!(first.cert, dir.path().join("node.pem"));
    assert_eq!(first.key, dir.path().join("node-key.pem"));
}

#[test]
fn private_keys_are_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ensure_dev_pki(dir.path(), &[]).expect("dev pki");
    let agent = issue_leaf(dir.path(), &dir.path().join("a"), "agent-1", &[]).expect("leaf");
    assert_eq!(mode(&dir.path().join("ca-key.pem")), 0o600);
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&agent.key), 0o600);
}

#[test]
fn missing_leaf_is_reissued_from_the_existing_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ensure_dev_pki(dir.path(), &[]).expect("first");
    let ca_before = fs::read(&first.ca_cert).expect("read ca");
    let cert_before = fs::read(&first.cert).expect("read cert");
    fs::remove_file(&first.cert).expect("remove leaf");

    let second = ensure_dev_pki(dir.path(), &[]).expect("second");
    assert_eq!(fs::read(&second.ca_cert).expect("read ca"), ca_before);
    assert_ne!(fs::read(&second.cert).expect("read cert"), cert_before);
}

#[test]
fn new_server_name_reissues_the_leaf_but_keeps_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ensure_dev_pki(dir.path(), &names(&["sched-1"])).expect("first");
    let [ca_before, cert_before, _] = contents(&first);

    let second = ensure_dev_pki(dir.path(), &names(&["sched-1", "sched-2"])).expect("second");
    let [ca_after, cert_after, _] = contents(&second);
    assert_eq!(ca_after, ca_before);
    assert_ne!(cert_after, cert_before);

    // A subset of the names already covered changes nothing.
    ensure_dev_pki(dir.path(), &names(&["sched-2"])).expect("third");
    assert_eq!(fs::read(&second.cert).expect("read cert"), cert_after);
}

#[test]
fn concurrent_callers_share_one_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let files = ensure_dev_pki(dir.path(), &[]).expect("dev pki");
                    fs::read(files.ca_cert).expect("read ca")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn issuing_without_a_ca_names_the_missing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = issue_leaf(dir.path(), dir.path(), "agent-1", &[]).expect_err("no ca");
    assert!(matches!(&err, Error::Read { path, .. } if path == &dir.path().join("ca-key.pem")), "{err:?}");
}

#[test]
fn invalid_san_is_a_generate_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ensure_dev_pki(dir.path(), &names(&["not ascii é"])).expect_err("bad san");
    assert!(matches!(err, Error::Generate { .. }), "{err:?}");
}

#[test]
fn bad_files_are_reported_by_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = ensure_dev_pki(dir.path(), &[]).expect("dev pki");

    let missing = dir.path().join("missing.pem");
    let err = server_tls(&TlsFiles { cert: missing.clone(), ..good.clone() }, true).expect_err("missing cert");
    assert!(matches!(&err, Error::Read { path, .. } if path == &missing), "{err:?}");
    assert_eq!(err.to_string(), format!("reading {}", missing.display()));

    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, "not a certificate").expect("write");
    let err = server_tls(&TlsFiles { ca_cert: garbage.clone(), ..good.clone() }, true).expect_err("garbage ca");
    assert!(matches!(&err, Error::Certificate { path, .. } if path == &garbage), "{err:?}");

    let err = server_tls(&TlsFiles { key: good.cert.clone(), ..good }, true).expect_err("cert as key");
    assert!(matches!(err, Error::PrivateKey { .. }), "{err:?}");
}
