//! `requirements.txt` linted before the agent lets pip read it on the host.
//!
//! pip on the host must fetch packages, never run or read anything the user chose:
//! options in a requirements file can point pip at another index, at local files
//! (`-r /etc/shadow`), at VCS checkouts or source trees whose build runs arbitrary code.
//! So a file may hold only
//!
//! - requirement specifiers by name (`numpy>=1.26`, `torch[cuda]==2.3; python_version >= "3.10"`),
//!   optionally with `--hash=…`;
//! - `-r`/`-c` (`--requirement`/`--constraint`) naming another file inside the algorithm
//!   directory, linted the same way;
//! - comments, blank lines and `\` continuations.
//!
//! Everything else is refused with the file, the line number and the reason. [`lint`] is
//! pure; the agent reads the files (no link followed) and downloads with the linted lines
//! only, in a file of its own.

/// One accepted line of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A requirement specifier, re-assembled from what was checked (`name… [--hash=…]`).
    Requirement(String),
    /// `-r`/`-c` naming `path` (segments relative to the algorithm directory, already
    /// normalized and kept inside it).
    Include { constraint: bool, path: Vec<String>, line: usize },
}

/// A line that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {what} is not allowed ({why})")]
pub struct LintError {
    pub file: String,
    pub line: usize,
    pub what: String,
    pub why: String,
}

const INDEX: &str = "the package index is the node operator's choice, not the training's";
const SOURCE: &str = "only packages by name are installed, as wheels from the node's index; \
                      building from a source runs its code on the node";
const INCLUDE_ONLY: &str = "-r and -c may only name files inside the algorithm directory";

/// Lints `text`, the file at `dir` + `name` relative to the algorithm directory (`file`
/// is how reasons name it).
pub fn lint(file: &str, dir: &[String], text: &str) -> Result<Vec<Line>, LintError> {
    let mut out = Vec::new();
    for (line, logical) in logical_lines(text) {
        let err = |what: &str, why: &str| LintError { file: file.into(), line, what: what.into(), why: why.into() };
        let content = strip_comment(&logical);
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        if content.starts_with('-') {
            let (opt, value) = split_option(content);
            match opt {
                "-r" | "--requirement" | "-c" | "--constraint" => {
                    let constraint = matches!(opt, "-c" | "--constraint");
                    let value = value.ok_or_else(|| err(opt, "it needs a file name"))?;
                    let path = include_path(dir, value).map_err(|why| err(&format!("{opt} {value}"), why))?;
                    out.push(Line::Include { constraint, path, line });
                }
                "-i" | "--index-url" | "--extra-index-url" | "--no-index" => return Err(err(opt, INDEX)),
                "-f" | "--find-links" => return Err(err(opt, "the node's package sources are the operator's choice")),
                "--trusted-host" => {
                    return Err(err(opt, "turning off TLS checks of an index is not the training's choice"));
                }
                "-e" | "--editable" => return Err(err(opt, SOURCE)),
                "--no-binary" | "--only-binary" | "--prefer-binary" | "--use-pep517" | "--no-use-pep517" => {
                    return Err(err(opt, "the agent always downloads wheels only"));
                }
                _ => {
                    return Err(err(
                        opt,
                        "a requirements file may hold requirement specifiers (with --hash), -r/-c naming files in the \
                         algorithm directory, and comments",
                    ));
                }
            }
            continue;
        }
        out.push(Line::Requirement(requirement(content).map_err(|(what, why)| err(&what, why))?));
    }
    Ok(out)
}

/// Lines joined at a trailing `\`, each numbered by its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                pending = Some((start, acc));
            }
            None => {
                acc.push_str(raw);
                out.push((start, acc));
            }
        }
    }
    out.extend(pending);
    out
}

/// pip's rule: `#` at the start or after whitespace begins a comment.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// `--opt=value`, `--opt value`, `-rvalue`, `-r value`.
fn split_option(content: &str) -> (&str, Option<&str>) {
    let (head, rest) = match content.find(char::is_whitespace) {
        Some(i) => (&content[..i], Some(content[i..].trim())),
        None => (content, None),
    };
    if let Some((opt, value)) = head.split_once('=').filter(|_| head.starts_with("--")) {
        return (opt, Some(value));
    }
    if !head.starts_with("--") && head.len() > 2 && head.is_char_boundary(2) {
        // A short option with its value attached: `-rbase.txt`.
        let (opt, value) = head.split_at(2);
        return (opt, Some(value));
    }
    (head, rest.filter(|r| !r.is_empty()))
}

/// The segments of an included file, relative to the algorithm directory.
fn include_path(dir: &[String], value: &str) -> Result<Vec<String>, &'static str> {
    if value.contains("://") || value.starts_with("file:") {
        return Err("it names a URL; -r and -c may only name files inside the algorithm directory");
    }
    if value.starts_with('/') || value.starts_with('~') || value.contains('\\') || value.contains('$') {
        return Err(INCLUDE_ONLY);
    }
    let mut path = dir.to_vec();
    for seg in value.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                path.pop().ok_or(INCLUDE_ONLY)?;
            }
            s => path.push(s.to_string()),
        }
    }
    if path.is_empty() {
        return Err("it names a directory, not a file");
    }
    Ok(path)
}

/// Checks a requirement line (specifier, then per-requirement options) and returns it
/// re-assembled. The error is (what, why).
fn requirement(content: &str) -> Result<String, (String, &'static str)> {
    // pip splits a requirement from its options at the first word starting with '-'.
    let words: Vec<&str> = content.split_whitespace().collect();
    let split = words.iter().position(|w| w.starts_with('-')).unwrap_or(words.len());
    let spec = words[..split].join(" ");
    let mut options = Vec::new();
    let mut rest = words[split..].iter();
    while let Some(word) = rest.next() {
        let hash = match word.strip_prefix("--hash") {
            Some("") => rest.next().map(|v| (*v).to_string()),
            Some(v) => v.strip_prefix('=').map(str::to_string),
            None => None,
        };
        match hash {
            Some(h) if valid_hash(&h) => options.push(format!("--hash={h}")),
            Some(_) => return Err(((*word).to_string(), "--hash must be --hash=<algorithm>:<hex digest>")),
            None => {
                let opt = word.split('=').next().unwrap_or(word).to_string();
                return Err((opt, "per-requirement build options do nothing for wheels and are refused"));
            }
        }
    }
    check_specifier(&spec).map_err(|why| (spec.clone(), why))?;
    options.insert(0, spec);
    Ok(options.join(" "))
}

fn valid_hash(h: &str) -> bool {
    match h.split_once(':') {
        Some((alg, hex)) => {
            matches!(alg, "sha256" | "sha384" | "sha512")
                && !hex.is_empty()
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// A PEP 508 specifier by name: `name[extras] <version specifiers> ; <markers>`.
fn check_specifier(spec: &str) -> Result<(), &'static str> {
    let lower = spec.to_ascii_lowercase();
    let (head, markers) = match spec.split_once(';') {
        Some((h, m)) => (h, Some(m)),
        None => (spec, None),
    };
    if ["git+", "hg+", "svn+", "bzr+"].iter().any(|v| lower.contains(v)) {
        return Err("a VCS requirement: only packages by name are installed, as wheels from the node's index");
    }
    if lower.contains("://") || lower.starts_with("file:") || head.contains('@') {
        return Err("a URL requirement: only packages by name are installed, as wheels from the node's index");
    }
    let looks_like_path = head.starts_with(['.', '/', '~', '\\'])
        || head.contains(['/', '\\'])
        || [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2"].iter().any(|s| lower.trim_end().ends_with(s));
    if looks_like_path {
        return Err("a local path requirement: only packages by name are installed, as wheels from the node's index");
    }
    let name_end =
        head.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(head.len());
    let name = &head[..name_end];
    let valid_name =
        name.starts_with(|c: char| c.is_ascii_alphanumeric()) && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let mut after = head[name_end..].trim_start();
    if let Some(extras) = after.strip_prefix('[') {
        let Some((list, tail)) = extras.split_once(']') else { return Err(INVALID) };
        if !list.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ',' | ' ')) {
            return Err(INVALID);
        }
        after = tail;
    }
    let version_ok = after.chars().all(|c| c.is_ascii_alphanumeric() || " <>=!~.,*+()_-".contains(c));
    let markers_ok = markers.is_none_or(valid_markers);
    if valid_name && version_ok && markers_ok { Ok(()) } else { Err(INVALID) }
}

/// PEP 508 environment markers: variables, quoted strings, comparison operators,
/// `and`/`or`/`not in`/`in` and parentheses, nothing else.
fn valid_markers(m: &str) -> bool {
    const VARIABLES: [&str; 12] = [
        "python_version",
        "python_full_version",
        "os_name",
        "sys_platform",
        "platform_release",
        "platform_system",
        "platform_version",
        "platform_machine",
        "platform_python_implementation",
        "implementation_name",
        "implementation_version",
        "extra",
    ];
    let mut rest = m.trim_start();
    let mut tokens = 0;
    // Alternating operand / operator is the parser's business (pip's); here only the
    // vocabulary is checked, which is what keeps anything else out.
    while !rest.is_empty() {
        let c = rest.as_bytes()[0];
        let len = if c == b'\'' || c == b'"' {
            match rest[1..].find(c as char) {
                Some(end) => end + 2,
                None => return false,
            }
        } else if c == b'(' || c == b')' {
            1
        } else if b"<>=!~".contains(&c) {
            rest.find(|ch: char| !"<>=!~".contains(ch)).unwrap_or(rest.len())
        } else {
            let word = rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len());
            if word == 0 || !(VARIABLES.contains(&&rest[..word]) || ["and", "or", "not", "in"].contains(&&rest[..word]))
            {
                return false;
            }
            word
        };
        if c != b'\''
            && c != b'"'
            && b"<>=!~".contains(&c)
            && !["<", "<=", ">", ">=", "==", "!=", "~=", "==="].contains(&&rest[..len])
        {
            return false;
        }
        tokens += 1;
        rest = rest[len..].trim_start();
    }
    // The smallest marker is `variable op value`.
    tokens >= 3
}

const INVALID: &str = "not a requirement specifier: expected a package name with optional [extras], version \
                       specifiers and '; markers'";

#[cfg(test)]
mod tests;
