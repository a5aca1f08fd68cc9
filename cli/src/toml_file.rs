//! Reading TOML files (client config, training specs) with one-line errors that name
//! the file and line: the toml crate's own message is a multi-line source excerpt.

use std::path::Path;

use anyhow::anyhow;
use serde::de::DeserializeOwned;

/// Parses `text`, read from `path`, reporting errors as `<path>:<line>: <message>`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| line_of(text, span.start));
        let message = e.message().trim_end().replace('\n', " ");
        match line {
            Some(line) => anyhow!("{}:{line}: {message}", path.display()),
            None => anyhow!("{}: {message}", path.display()),
        }
    })
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Small {
        a: Option<u32>,
    }

    #[test]
    fn errors_are_one_line_with_file_and_line() {
        let err = parse::<Small>(Path::new("x.toml"), "a = 1\nb = 2\n").unwrap_err().to_string();
        assert!(err.starts_with("x.toml:2: unknown field `b`"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
