//! The `[gpu]` section of the agent's configuration.
//!
//! ```toml
//! [gpu]
//! source = "fake"            # "nvml" | "fake" | "none"
//! fake = [
//!   { uuid = "GPU-00000000-0000-0000-0000-000000000001", model = "A100-80GB", memory_mib = 81920 },
//! ]
//! ```

use std::collections::BTreeSet;

use gantry_domain::Gpu;
use serde::Deserialize;

use super::GpuError;

/// Parsed through [`RawGpuConfig`]: serde's tagged enums ignore unknown fields on
/// unit variants (`source = "nvml"` with a stray `fake = [...]` would pass silently).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawGpuConfig")]
pub enum GpuConfig {
    /// Ask the NVIDIA driver (GPU servers).
    Nvml,
    /// Report these GPUs (machines without GPUs that should look like GPU servers).
    Fake { fake: Vec<FakeGpuConfig> },
    /// The node has no GPUs.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    Nvml,
    Fake,
    None,
}

/// The section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpuConfig {
    source: SourceKind,
    fake: Option<Vec<FakeGpuConfig>>,
}

impl TryFrom<RawGpuConfig> for GpuConfig {
    type Error = GpuError;

    fn try_from(raw: RawGpuConfig) -> Result<Self, GpuError> {
        let config = match (raw.source, raw.fake) {
            (SourceKind::Fake, Some(fake)) => GpuConfig::Fake { fake },
            (SourceKind::Fake, None) => {
                return Err(GpuError::InvalidConfig("source = \"fake\" needs a `fake = [...]` list".into()));
            }
            (_, Some(_)) => {
                return Err(GpuError::InvalidConfig("`fake` is only allowed with source = \"fake\"".into()));
            }
            (SourceKind::Nvml, None) => GpuConfig::Nvml,
            (SourceKind::None, None) => GpuConfig::None,
        };
        config.validate()?;
        Ok(config)
    }
}

/// One configured fake GPU.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeGpuConfig {
    pub uuid: String,
    /// The GPU core type placement matches (e.g. `A100-80GB`).
    pub model: String,
    pub memory_mib: u64,
    /// Reads of this GPU fail with this error (tests of unhealthy GPUs).
    #[serde(default)]
    pub unhealthy: Option<String>,
    /// Critical XIDs this GPU reports once, right after start (tests of XID events).
    #[serde(default)]
    pub xids: Vec<u64>,
}

impl FakeGpuConfig {
    pub fn to_gpu(&self) -> Gpu {
        Gpu { uuid: self.uuid.clone(), model: self.model.clone(), memory_mib: self.memory_mib }
    }
}

impl GpuConfig {
    /// Fake GPUs need unique, non-empty UUIDs (they end up in `NVIDIA_VISIBLE_DEVICES`
    /// and a comma-separated label), a model and memory.
    pub fn validate(&self) -> Result<(), GpuError> {
        let GpuConfig::Fake { fake } = self else { return Ok(()) };
        let mut seen = BTreeSet::new();
        for (i, gpu) in fake.iter().enumerate() {
            let bad = |msg: &str| Err(GpuError::InvalidConfig(format!("gpu.fake[{i}]: {msg}")));
            if gpu.uuid.is_empty() || gpu.uuid.contains(',') || gpu.uuid.contains(char::is_whitespace) {
                return bad("uuid must be non-empty without ',' or whitespace");
            }
            if !seen.insert(gpu.uuid.as_str()) {
                return bad(&format!("duplicate uuid {}", gpu.uuid));
            }
            if gpu.model.trim().is_empty() {
                return bad("model must not be empty");
            }
            if gpu.memory_mib == 0 {
                return bad("memory_mib must be positive");
            }
            if gpu.unhealthy.as_deref().is_some_and(|w| w.trim().is_empty()) {
                return bad("unhealthy must say why");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapper {
        gpu: GpuConfig,
    }

    fn parse(s: &str) -> Result<GpuConfig, toml::de::Error> {
        toml::from_str::<Wrapper>(s).map(|w| w.gpu)
    }

    #[test]
    fn parses_each_source() {
        assert_eq!(parse("[gpu]\nsource = \"nvml\"").unwrap(), GpuConfig::Nvml);
        assert_eq!(parse("[gpu]\nsource = \"none\"").unwrap(), GpuConfig::None);
        let fake =
            parse("[gpu]\nsource = \"fake\"\nfake = [{ uuid = \"GPU-1\", model = \"A100-80GB\", memory_mib = 81920 }]")
                .unwrap();
        assert_eq!(
            fake,
            GpuConfig::Fake {
                fake: vec![FakeGpuConfig {
                    uuid: "GPU-1".into(),
                    model: "A100-80GB".into(),
                    memory_mib: 81920,
                    unhealthy: None,
                    xids: vec![],
                }]
            }
        );
        assert_eq!(fake.validate(), Ok(()));
    }

    #[test]
    fn rejects_unknown_and_inconsistent_settings() {
        for bad in [
            "[gpu]\nsource = \"cuda\"",
            "[gpu]\nsource = \"nvml\"\nfake = []",
            "[gpu]\nsource = \"none\"\ncount = 2",
            "[gpu]\nsource = \"fake\"",
            "[gpu]\nsource = \"fake\"\nfake = [{ uuid = \"a\", model = \"m\", memory_mib = 1, color = \"red\" }]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let dup = parse(
            "[gpu]\nsource = \"fake\"\nfake = [{ uuid = \"a\", model = \"m\", memory_mib = 1 }, { uuid = \"a\", model = \"m\", memory_mib = 1 }]",
        );
        assert!(dup.unwrap_err().to_string().contains("duplicate uuid a"));
    }
}
