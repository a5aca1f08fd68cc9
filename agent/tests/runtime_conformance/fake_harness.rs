//! The suite's view of `FakeRuntime`: scripts stand in for the shell commands.

use gantry_agent::runtime::{ContainerRuntime, ContainerSpec, FakeRuntime, FakeScript, GpuMode};

use crate::suite::Harness;

pub const IMAGE: &str = "gantry-test/fake:1";

pub struct FakeHarness {
    runtime: FakeRuntime,
}

impl FakeHarness {
    pub fn new() -> Self {
        FakeHarness { runtime: FakeRuntime::new().with_images(&[IMAGE]) }
    }
}

impl Harness for FakeHarness {
    fn runtime(&self) -> &dyn ContainerRuntime {
        &self.runtime
    }

    fn name(&self, suffix: &str) -> String {
        format!("gantry-test-fake-{suffix}")
    }

    fn cluster(&self) -> &str {
        "fake-cluster"
    }

    fn exiting(&self, name: &str, lines: &[&str], code: i64) -> ContainerSpec {
        self.runtime.script(name, FakeScript::exits(code, lines));
        ContainerSpec::new(name, IMAGE, vec!["true".into()])
    }

    fn long_running(&self, name: &str) -> ContainerSpec {
        self.runtime.script(name, FakeScript::default());
        ContainerSpec::new(name, IMAGE, vec!["sleep".into()])
    }

    fn gpu_mode(&self) -> GpuMode {
        GpuMode::Nvidia
    }
}
