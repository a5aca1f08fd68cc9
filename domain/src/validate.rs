//! Field rules shared by every resource: names, descriptions, tags, key-value lists.
//!
//! Every rule failure is a [`ValidationError`] naming the field (as the API spells it,
//! with list positions such as `tags[3].key`) and the rule, so a caller can fix the
//! input without guessing.

use crate::meta::Tag;

/// A rejected field: which one, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{field}: {rule}")]
pub struct ValidationError {
    pub field: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self { field: field.into(), rule: rule.into() }
    }
}

pub type Validated<T = ()> = Result<T, ValidationError>;

/// Longest resource name (EasyMaker's console limit).
pub const NAME_MAX: usize = 50;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 255;
/// At most this many tags on any resource (guide: "태그는 최대 10개").
pub const TAGS_MAX: usize = 10;
pub const TAG_KEY_MAX: usize = 64;
pub const TAG_VALUE_MAX: usize = 255;

/// Resource names: 1..=50 characters, lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter. They appear in container names, paths and URLs, so the
/// alphabet is kept to what is safe in all three.
pub fn name(field: &str, value: &str) -> Validated {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > NAME_MAX {
        return Err(ValidationError::new(field, format!("must be at most {NAME_MAX} characters")));
    }
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok {
        return Err(ValidationError::new(
            field,
            "must start with a lowercase letter and contain only lowercase letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

pub fn description(field: &str, value: &str) -> Validated {
    if value.chars().count() > DESCRIPTION_MAX {
        return Err(ValidationError::new(field, format!("must be at most {DESCRIPTION_MAX} characters")));
    }
    Ok(())
}

pub fn tags(field: &str, tags: &[Tag]) -> Validated {
    if tags.len() > TAGS_MAX {
        return Err(ValidationError::new(field, format!("at most {TAGS_MAX} tags are allowed, got {}", tags.len())));
    }
    for (i, tag) in tags.iter().enumerate() {
        non_empty_bounded(&format!("{field}[{i}].key"), &tag.key, TAG_KEY_MAX)?;
        if tag.value.chars().count() > TAG_VALUE_MAX {
            return Err(ValidationError::new(
                format!("{field}[{i}].value"),
                format!("must be at most {TAG_VALUE_MAX} characters"),
            ));
        }
    }
    unique_keys(field, tags.iter().map(|t| t.key.as_str()))
}

/// A non-empty string of at most `max` characters.
pub fn non_empty_bounded(field: &str, value: &str, max: usize) -> Validated {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Longest node name: a DNS label (node names become certificate names and labels).
pub const NODE_NAME_MAX: usize = 63;

/// A node name: 1-63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`
/// (it becomes a certificate CommonName, a file name and a container label).
pub fn node_name(field: &str, value: &str) -> Validated {
    let ok = !value.is_empty()
        && value.len() <= NODE_NAME_MAX
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !value.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!(
                "must be 1-{NODE_NAME_MAX} characters of letters, digits, '.', '_' and '-', not starting with '.' or '-'"
            ),
        ))
    }
}

/// Keys of a key-value list must be unique; the error names the first repeated key.
pub fn unique_keys<'a>(field: &str, keys: impl Iterator<Item = &'a str>) -> Validated {
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in keys.enumerate() {
        if !seen.insert(key) {
            return Err(ValidationError::new(format!("{field}[{i}].key"), format!("duplicate key '{key}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_at_and_past_the_edges() {
        assert!(name("name", &"a".repeat(NAME_MAX)).is_ok());
        let err = name("name", &"a".repeat(NAME_MAX + 1)).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.rule.contains("50"));
        assert!(name("name", "").is_err());
        assert!(name("name", "1abc").is_err());
        assert!(name("name", "Abc").is_err());
        assert!(name("name", "a b").is_err());
        assert!(name("name", "mnist-train_2").is_ok());
    }

    #[test]
    fn tags_at_and_past_the_limit() {
        let mk = |n: usize| (0..n).map(|i| Tag { key: format!("k{i}"), value: "v".into() }).collect::<Vec<_>>();
        assert!(tags("tags", &mk(10)).is_ok());
        let err = tags("tags", &mk(11)).unwrap_err();
        assert_eq!(err.field, "tags");
        let mut dup = mk(2);
        dup[1].key = "k0".into();
        assert_eq!(tags("tags", &dup).unwrap_err().field, "tags[1].key");
    }
}
