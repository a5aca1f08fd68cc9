//! `[catalog]`: the instance types and images the first leader seeds.

use gantry_domain::{Framework, Image, ImageCoreType, InstanceType};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Seeded by the first leader when absent from the replicated catalog.
    pub instance_types: Vec<InstanceType>,
    pub images: Vec<Image>,
}

fn serving_image(name: &str, reference: &str, framework: Framework, version: &str) -> Image {
    Image {
        name: name.into(),
        reference: reference.into(),
        core_type: ImageCoreType::Cpu,
        framework,
        framework_version: version.into(),
        python_version: "3.11".into(),
    }
}

impl Default for CatalogConfig {
    fn default() -> Self {
        let cpu = |name: &str, cpus: u64, mem_gib: u64| InstanceType {
            name: name.into(),
            cpu_millis: cpus * 1000,
            memory_mib: mem_gib * 1024,
            gpu_count: 0,
            gpu_model: None,
        };
        CatalogConfig {
            instance_types: vec![cpu("cpu-small", 1, 2), cpu("cpu-medium", 2, 4), cpu("cpu-large", 4, 8)],
            images: vec![
                Image {
                    name: "python311".into(),
                    reference: "gantry/python:3.11".into(),
                    core_type: ImageCoreType::Cpu,
                    framework: Framework::Python,
                    framework_version: String::new(),
                    python_version: "3.11".into(),
                },
                // The serving images deploy/images/build.sh makes (docs/serving.md):
                // endpoints find them by reference, and the PyTorch and TensorFlow ones
                // double as CPU training images.
                serving_image("serving-pytorch", "gantry/serving-pytorch:cpu", Framework::Pytorch, "1.13"),
                serving_image("serving-tensorflow", "gantry/serving-tensorflow:cpu", Framework::Tensorflow, "2.15"),
                serving_image("serving-sklearn-onnx", "gantry/serving-sklearn-onnx:cpu", Framework::Python, ""),
            ],
        }
    }
}
