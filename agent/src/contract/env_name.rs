//! User keys → environment variable names.
//!
//! `EM_HP_{KEY}` and `EM_DATASET_{NAME}` take the user's key with ASCII letters
//! upper-cased and every other character that may not appear in a portable variable
//! name (anything but `A-Z`, `0-9` and `_`) replaced by one `_` per character:
//! `learning-rate` → `LEARNING_RATE`, `batch.size` → `BATCH_SIZE`, `학습률` → `___`.
//! Distinct keys can therefore share a name (`batch-size`, `batch_size`); the first in
//! the user's order keeps it, later ones get no variable of their own (they remain in
//! `EM_HPS` / `EM_DATASETS` and, for hyperparameters, on the command line).

use std::collections::BTreeSet;

/// `key` as the suffix of a variable name (see the module doc).
pub fn env_suffix(key: &str) -> String {
    key.chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' { c } else { '_' }
        })
        .collect()
}

/// Hands out `{prefix}{suffix}` names, first come first served.
#[derive(Debug, Default)]
pub(super) struct EnvNames {
    taken: BTreeSet<String>,
}

impl EnvNames {
    /// The variable name for `key`, or `Err(name)` if an earlier key already has it.
    pub(super) fn claim(&mut self, prefix: &str, key: &str) -> Result<String, String> {
        let name = format!("{prefix}{}", env_suffix(key));
        if self.taken.insert(name.clone()) { Ok(name) } else { Err(name) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_portable_names() {
        assert_eq!(env_suffix("epochs"), "EPOCHS");
        assert_eq!(env_suffix("model_version"), "MODEL_VERSION");
        assert_eq!(env_suffix("learning-rate"), "LEARNING_RATE");
        assert_eq!(env_suffix("a.b/c:d"), "A_B_C_D");
        assert_eq!(env_suffix("x9"), "X9");
        assert_eq!(env_suffix("학습률"), "___");
        assert_eq!(env_suffix("Ünï"), "_N_");
    }

    #[test]
    fn first_claim_wins() {
        let mut names = EnvNames::default();
        assert_eq!(names.claim("EM_HP_", "batch-size"), Ok("EM_HP_BATCH_SIZE".into()));
        assert_eq!(names.claim("EM_HP_", "batch_size"), Err("EM_HP_BATCH_SIZE".into()));
        assert_eq!(names.claim("EM_HP_", "BATCH_SIZE"), Err("EM_HP_BATCH_SIZE".into()));
        assert_eq!(names.claim("EM_DATASET_", "batch_size"), Ok("EM_DATASET_BATCH_SIZE".into()));
    }
}
