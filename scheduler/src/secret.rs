//! [`Secret`]: how tokens live in memory. Its `Debug` and `Display` print
//! `[redacted]`, so a token cannot reach a log line or an error message by
//! accident (`?config`, `{auth:?}`); its comparison takes the same time
//! wherever the first differing byte is; its bytes are zeroed when dropped.
//!
//! The value is reachable only through [`Secret::expose`], so each place that
//! needs the plain text (writing the 0600 token file, handing the join token
//! to the embedded agent) is explicit and easy to find.

use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

/// A token or other credential. See the module docs.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The plain text. Every call site is a place the secret leaves this type:
    /// keep them few, and never log what it returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes (not secret: config validation reports it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `candidate` equals this secret, in time that depends only on
    /// the lengths: `subtle` compares every byte and never branches on them.
    pub fn ct_eq(&self, candidate: &[u8]) -> subtle::Choice {
        self.0.as_bytes().ct_eq(candidate)
    }

    /// [`Secret::ct_eq`] as a `bool`, for the places that decide on one secret.
    pub fn matches(&self, candidate: &str) -> bool {
        self.ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// `presented == secret` compares in constant time ([`Secret::matches`]), so a
/// plain `==` against a token presented by a caller is safe.
impl PartialEq<Secret> for &str {
    fn eq(&self, secret: &Secret) -> bool {
        secret.matches(self)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::from("gantry_0123456789abcdef");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
    }

    #[test]
    fn only_the_same_bytes_match() {
        let s = Secret::from("join-0123456789abcdef");
        assert!(s.matches("join-0123456789abcdef"));
        assert!("join-0123456789abcdef" == s);
        // Same length, one byte differs: first, middle, last.
        for wrong in ["Join-0123456789abcdef", "join-0123456789Abcdef", "join-0123456789abcdeF"] {
            assert_eq!(wrong.len(), s.len());
            assert!(!s.matches(wrong), "{wrong}");
            assert!(wrong != s);
        }
        assert!(!s.matches("join-0123456789abcde"));
        assert!(!s.matches(""));
        assert!(!Secret::default().matches("x"));
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        #[derive(Debug, Deserialize)]
        struct C {
            token: Secret,
        }
        let c: C = toml::from_str("token = \"abc\"").unwrap();
        assert_eq!(c.token.expose(), "abc");
        assert_eq!(format!("{c:?}"), "C { token: [redacted] }");
    }
}
