//! The operator's catalogs, standing in for the cloud's menus: instance types (resource
//! shapes) and images (what runs in a container).

use serde::{Deserialize, Serialize};

use crate::resources::Resources;
use crate::validate::{self, Validated, ValidationError};

/// The core type of CPU-only instance types, as the guide spells it.
pub const CPU_CORE_TYPE: &str = "CPU";

/// A named resource shape. Every container of a workload gets exactly this much.
///
/// `gpu_model` is the GPU *core type* (e.g. `A100-80GB`); it is `None` exactly when
/// `gpu_count` is 0, and then the core type is `CPU`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceType {
    pub name: String,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpu_count: u32,
    pub gpu_model: Option<String>,
}

impl InstanceType {
    pub fn resources(&self) -> Resources {
        Resources::new(self.cpu_millis, self.memory_mib, self.gpu_count)
    }

    /// `CPU` or the GPU model: what the guide calls the core type.
    pub fn core_type(&self) -> &str {
        self.gpu_model.as_deref().unwrap_or(CPU_CORE_TYPE)
    }

    pub fn image_core_type(&self) -> ImageCoreType {
        if self.gpu_count > 0 { ImageCoreType::Gpu } else { ImageCoreType::Cpu }
    }

    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        if self.cpu_millis == 0 {
            return Err(ValidationError::new("cpu_millis", "must be greater than 0"));
        }
        if self.memory_mib == 0 {
            return Err(ValidationError::new("memory_mib", "must be greater than 0"));
        }
        match (&self.gpu_model, self.gpu_count) {
            (None, 0) => Ok(()),
            (Some(model), n) if n > 0 => {
                validate::non_empty_bounded("gpu_model", model, 64)?;
                if model == CPU_CORE_TYPE {
                    return Err(ValidationError::new("gpu_model", "must name a GPU model, not CPU"));
                }
                Ok(())
            }
            (Some(_), _) => Err(ValidationError::new("gpu_count", "must be greater than 0 when gpu_model is set")),
            (None, _) => Err(ValidationError::new("gpu_model", "is required when gpu_count is greater than 0")),
        }
    }
}

/// Whether an image is built for CPU or GPU instance types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ImageCoreType {
    Cpu,
    Gpu,
}

impl ImageCoreType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageCoreType::Cpu => "CPU",
            ImageCoreType::Gpu => "GPU",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "CPU" => Some(ImageCoreType::Cpu),
            "GPU" => Some(ImageCoreType::Gpu),
            _ => None,
        }
    }
}

/// The framework preinstalled in an image (the guide's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Framework {
    Tensorflow,
    Pytorch,
    Python,
}

impl Framework {
    pub fn as_str(&self) -> &'static str {
        match self {
            Framework::Tensorflow => "TENSORFLOW",
            Framework::Pytorch => "PYTORCH",
            Framework::Python => "PYTHON",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TENSORFLOW" => Some(Framework::Tensorflow),
            "PYTORCH" => Some(Framework::Pytorch),
            "PYTHON" => Some(Framework::Python),
            _ => None,
        }
    }
}

/// A named container image in the catalog. `reference` is what the agent hands to
/// Docker (built locally; there is no registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    pub reference: String,
    pub core_type: ImageCoreType,
    pub framework: Framework,
    pub framework_version: String,
    pub python_version: String,
}

impl Image {
    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        validate::non_empty_bounded("reference", &self.reference, 255)?;
        if self.reference.chars().any(char::is_whitespace) {
            return Err(ValidationError::new("reference", "must not contain whitespace"));
        }
        if self.framework != Framework::Python || !self.framework_version.is_empty() {
            validate::non_empty_bounded("framework_version", &self.framework_version, 32)?;
        }
        validate::non_empty_bounded("python_version", &self.python_version, 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(gpu_count: u32, gpu_model: Option<&str>) -> InstanceType {
        InstanceType {
            name: "m1".into(),
            cpu_millis: 1000,
            memory_mib: 1024,
            gpu_count,
            gpu_model: gpu_model.map(Into::into),
        }
    }

    #[test]
    fn gpu_model_and_count_go_together() {
        assert!(it(0, None).validate().is_ok());
        assert!(it(2, Some("A100-80GB")).validate().is_ok());
        assert_eq!(it(2, None).validate().unwrap_err().field, "gpu_model");
        assert_eq!(it(0, Some("A100-80GB")).validate().unwrap_err().field, "gpu_count");
        assert_eq!(it(2, Some("A100-80GB")).core_type(), "A100-80GB");
        assert_eq!(it(0, None).core_type(), "CPU");
    }
}
