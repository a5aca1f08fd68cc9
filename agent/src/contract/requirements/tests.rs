use super::*;

fn ok(text: &str) -> Vec<Line> {
    match lint("requirements.txt", &[], text) {
        Ok(lines) => lines,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn refused(text: &str) -> LintError {
    match lint("requirements.txt", &[], text) {
        Ok(lines) => panic!("{text:?} was accepted: {lines:?}"),
        Err(e) => e,
    }
}

fn req(s: &str) -> Line {
    Line::Requirement(s.into())
}

#[test]
fn names_versions_extras_markers_hashes_comments_and_blank_lines_are_accepted() {
    let text = "# training deps\n\
                numpy>=1.26,<2\n\
                \n\
                torch[cuda, extra]==2.3.0  # pinned\n\
                pandas ; python_version >= \"3.10\" and sys_platform == 'linux'\n\
                scikit-learn~=1.4.0 --hash=sha256:0123abcd\n\
                my_pkg.sub-name===1.0+local\n\
                   \t\n\
                requests \\\n    >=2.31\n";
    assert_eq!(
        ok(text),
        [
            req("numpy>=1.26,<2"),
            req("torch[cuda, extra]==2.3.0"),
            req("pandas ; python_version >= \"3.10\" and sys_platform == 'linux'"),
            req("scikit-learn~=1.4.0 --hash=sha256:0123abcd"),
            req("my_pkg.sub-name===1.0+local"),
            req("requests >=2.31"),
        ]
    );
    assert_eq!(ok(""), []);
    assert_eq!(
        ok("x ; (os_name == 'posix' or extra == \"gpu\") and platform_machine not in 'arm64'\n"),
        [req("x ; (os_name == 'posix' or extra == \"gpu\") and platform_machine not in 'arm64'")]
    );
    assert_eq!(ok("#only a comment\n\n"), []);
    // '#' begins a comment only at the start or after whitespace (pip's rule).
    assert!(lint("requirements.txt", &[], "pkg#frag\n").is_err(), "not a specifier either way");
}

#[test]
fn every_index_and_source_option_is_refused_with_its_line_number() {
    let cases = [
        ("-i https://evil.example/simple", "-i", "package index"),
        ("--index-url https://evil.example/simple", "--index-url", "package index"),
        ("--index-url=https://evil.example/simple", "--index-url", "package index"),
        ("-ihttps://evil.example/simple", "-i", "package index"),
        ("--extra-index-url https://evil.example/simple", "--extra-index-url", "package index"),
        ("--no-index", "--no-index", "package index"),
        ("-e git+https://example.com/repo.git#egg=x", "-e", "building from a source runs its code"),
        ("--editable ./src", "--editable", "building from a source"),
        ("-f /srv/wheels", "-f", "package sources"),
        ("--find-links=https://evil.example/", "--find-links", "package sources"),
        ("--trusted-host evil.example", "--trusted-host", "TLS"),
        ("--no-binary :all:", "--no-binary", "wheels only"),
        ("--pre", "--pre", "may hold requirement specifiers"),
        ("--global-option=--x", "--global-option", "may hold"),
    ];
    for (line, what, why) in cases {
        let e = refused(&format!("numpy\n\n{line}\n"));
        assert_eq!(e.line, 3, "{line}");
        assert_eq!(e.file, "requirements.txt");
        assert_eq!(e.what, what, "{line}");
        assert!(e.why.contains(why), "{line}: {}", e.why);
        assert!(e.to_string().starts_with(&format!("requirements.txt line 3: {what} is not allowed (")), "{e}");
    }
}

#[test]
fn vcs_url_and_path_requirements_are_refused() {
    let cases = [
        ("git+https://github.com/psf/requests.git", "VCS"),
        ("requests @ git+https://github.com/psf/requests.git", "VCS"),
        ("hg+https://example.com/repo", "VCS"),
        ("https://example.com/pkg-1.0.tar.gz", "URL"),
        ("http://example.com/pkg.whl", "URL"),
        ("pkg @ https://example.com/pkg-1.0-py3-none-any.whl", "URL"),
        ("pkg@file:///srv/pkg", "URL"),
        ("file:///etc/passwd", "URL"),
        ("file:../x", "URL"),
        ("./localpkg", "local path"),
        ("../outside", "local path"),
        ("/srv/pkg", "local path"),
        ("~/pkg", "local path"),
        ("src/pkg", "local path"),
        ("pkg-1.0-py3-none-any.whl", "local path"),
        ("pkg-1.0.tar.gz", "local path"),
    ];
    for (line, kind) in cases {
        let e = refused(&format!("# deps\n{line}\n"));
        assert_eq!(e.line, 2, "{line}");
        assert!(e.why.starts_with(&format!("a {kind} requirement")), "{line}: {e}");
    }
}

#[test]
fn malformed_specifiers_and_options_after_a_requirement_are_refused() {
    for line in [
        "${SECRET}",
        "pkg==${VERSION}",
        "-",
        "[extra]",
        "pkg[extra",
        "pkg ; ",
        "pkg ; os.system('x')",
        "pkg ; python_version < '3' or __import__",
        "pkg ; python_version <",
        "pkg ; 'unterminated",
        "pkg --hash=md5:abc",
        "pkg --hash=sha256:xyz",
        "pkg --global-option=build_ext",
        "pkg --config-settings=x=y",
        "pkg -x",
        "pkg==1.0 $(rm -rf /)",
        "-é",
        "pkgé",
        "pkg ; python_version == 'é' and é",
    ] {
        let e = refused(line);
        assert_eq!(e.line, 1, "{line}");
    }
}

#[test]
fn includes_inside_the_algorithm_directory_are_accepted_and_normalized() {
    let dir = vec!["reqs".to_string()];
    let lines =
        lint("reqs/all.txt", &dir, "-r base.txt\n--requirement=./gpu/extra.txt\n-c ../constraints.txt\n-rlocal.txt\n")
            .unwrap();
    assert_eq!(
        lines,
        [
            Line::Include { constraint: false, path: vec!["reqs".into(), "base.txt".into()], line: 1 },
            Line::Include { constraint: false, path: vec!["reqs".into(), "gpu".into(), "extra.txt".into()], line: 2 },
            Line::Include { constraint: true, path: vec!["constraints.txt".into()], line: 3 },
            Line::Include { constraint: false, path: vec!["reqs".into(), "local.txt".into()], line: 4 },
        ]
    );
}

#[test]
fn includes_outside_the_algorithm_directory_are_refused() {
    for (line, why) in [
        ("-r ../etc/passwd", "inside the algorithm directory"),
        ("-r reqs/../../x.txt", "inside the algorithm directory"),
        ("-r /etc/shadow", "inside the algorithm directory"),
        ("-c ~/.pip/constraints.txt", "inside the algorithm directory"),
        ("-r https://evil.example/r.txt", "URL"),
        ("-r file:///etc/shadow", "URL"),
        ("-r $HOME/r.txt", "inside the algorithm directory"),
        ("-r .", "directory"),
        ("-r", "needs a file name"),
    ] {
        let e = refused(&format!("numpy\n{line}\n"));
        assert_eq!(e.line, 2, "{line}");
        assert!(e.why.contains(why), "{line}: {e}");
    }
}

#[test]
fn a_continued_line_is_numbered_by_its_first_line() {
    let e = refused("numpy\nrequests \\\n  --index-url \\\n  https://x\n");
    assert_eq!(e.line, 2);
    let e = refused("numpy \\\n>=1\n\n\n-e .\n");
    assert_eq!(e.line, 5);
}

proptest::proptest! {
    /// Whatever the file holds, the lint answers without panicking, and nothing it
    /// accepts names a URL, a path or a variable, or carries an option other than --hash.
    #[test]
    fn accepted_lines_never_name_a_source_or_an_option(text in "(([a-z0-9 ._/:@$#~=<>!;\\[\\]'\"-]|\\\\|\n|é){0,60})") {
        if let Ok(lines) = lint("requirements.txt", &[], &text) {
            for line in lines {
                match line {
                    Line::Requirement(r) => {
                        let spec = r.split(" --hash=").next().unwrap_or_default();
                        let head = spec.split(';').next().unwrap_or_default();
                        proptest::prop_assert!(!head.contains(['/', '@', '$', '~', ':']), "{r:?}");
                        proptest::prop_assert!(!r.contains("://"), "{r:?}");
                        proptest::prop_assert!(r.split_whitespace().all(|w| !w.starts_with('-') || w.starts_with("--hash=")), "{r:?}");
                    }
                    Line::Include { path, .. } => {
                        proptest::prop_assert!(!path.is_empty());
                        proptest::prop_assert!(path.iter().all(|s| s != ".." && s != "." && !s.is_empty() && !s.contains('/')), "{path:?}");
                    }
                }
            }
        }
    }
}
