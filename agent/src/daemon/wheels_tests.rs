use std::os::unix::fs::symlink;

use super::*;

fn algorithm(files: &[(&str, &str)]) -> (tempfile::TempDir, OwnedFd) {
    let t = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = t.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let fd = open_root(t.path()).unwrap().0;
    (t, fd)
}

#[test]
fn no_requirements_file_means_nothing_to_download() {
    let (_t, fd) = algorithm(&[("train.py", "")]);
    assert_eq!(collect(&fd).unwrap(), None);
}

#[test]
fn includes_are_followed_inside_the_algorithm_and_constraints_kept_apart() {
    let (_t, fd) = algorithm(&[
        ("requirements.txt", "numpy\n-r reqs/extra.txt\n-c constraints.txt\n"),
        ("reqs/extra.txt", "pandas>=2\n-r ../requirements.txt\n"),
        ("constraints.txt", "numpy<2\n-r pins.txt\n"),
        ("pins.txt", "pandas==2.2.0\n"),
    ]);
    let c = collect(&fd).unwrap().unwrap();
    assert_eq!(c.requirements, ["numpy", "pandas>=2"]);
    assert_eq!(c.constraints, ["numpy<2", "pandas==2.2.0"], "a file included from constraints is constraints");
}

#[test]
fn a_forbidden_line_in_an_included_file_names_that_file_and_line() {
    let (_t, fd) =
        algorithm(&[("requirements.txt", "-r sub/more.txt\n"), ("sub/more.txt", "x\n\n--index-url http://e\n")]);
    let e = collect(&fd).unwrap_err();
    assert!(e.starts_with("sub/more.txt line 3: --index-url is not allowed"), "{e}");
}

#[test]
fn a_missing_include_and_includes_through_links_or_fifos_are_refused_without_hanging() {
    let (t, fd) = algorithm(&[("requirements.txt", "-r missing.txt\n")]);
    let e = collect(&fd).unwrap_err();
    assert!(e.contains("requirements.txt line 1: -r missing.txt") && e.contains("does not exist"), "{e}");
    drop(fd);

    std::fs::write(t.path().join("requirements.txt"), "-r shadow.txt\n").unwrap();
    symlink("/etc/shadow", t.path().join("shadow.txt")).unwrap();
    let fd = open_root(t.path()).unwrap().0;
    let e = collect(&fd).unwrap_err();
    assert!(e.contains("symbolic link"), "{e}");

    std::fs::write(t.path().join("requirements.txt"), "-r linked/x.txt\n").unwrap();
    symlink("/etc", t.path().join("linked")).unwrap();
    assert!(collect(&fd).unwrap_err().contains("symbolic link"));

    std::fs::write(t.path().join("requirements.txt"), "-r pipe.txt\n").unwrap();
    rustix::fs::mkfifoat(rustix::fs::CWD, t.path().join("pipe.txt"), rustix::fs::Mode::from_raw_mode(0o644)).unwrap();
    assert!(collect(&fd).unwrap_err().contains("FIFO"));
}

#[test]
fn a_requirements_file_that_is_a_link_or_fifo_is_refused() {
    let t = tempfile::tempdir().unwrap();
    symlink("/etc/passwd", t.path().join("requirements.txt")).unwrap();
    let fd = open_root(t.path()).unwrap().0;
    let e = collect(&fd).unwrap_err();
    assert!(e.starts_with("requirements.txt: ") && e.contains("symbolic link"), "{e}");
    std::fs::remove_file(t.path().join("requirements.txt")).unwrap();
    rustix::fs::mkfifoat(rustix::fs::CWD, t.path().join("requirements.txt"), rustix::fs::Mode::from_raw_mode(0o644))
        .unwrap();
    assert!(collect(&fd).unwrap_err().contains("FIFO"));
}

#[test]
fn include_chains_are_bounded() {
    let mut files: Vec<(String, String)> =
        (0..8).map(|i| (format!("r{i}.txt"), format!("-r r{}.txt\n", i + 1))).collect();
    files.push(("requirements.txt".into(), "-r r0.txt\n".into()));
    files.push(("r8.txt".into(), "numpy\n".into()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (_t, fd) = algorithm(&refs);
    assert!(collect(&fd).unwrap_err().contains("nested more than 5 deep"));
}

#[test]
fn a_package_without_a_wheel_is_refused_by_name_with_the_reason() {
    let stderr = "Collecting sdistonly==1.0\nERROR: Could not find a version that satisfies the requirement \
                  sdistonly==1.0 (from versions: none)\nERROR: No matching distribution found for sdistonly==1.0\n";
    let r = failure(stderr, &PipConfig::default());
    assert!(r.starts_with("requirements.txt could not be installed: no wheel of sdistonly==1.0 for cp3.11"), "{r}");
    assert!(r.contains("never builds a source distribution"), "{r}");
    let other = failure("ERROR: something else\n", &PipConfig::default());
    assert_eq!(other, "requirements.txt could not be installed (pip download failed): ERROR: something else");
}
