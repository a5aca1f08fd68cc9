//! Containers: the operations an agent performs on its node's container engine.
//!
//! [`ContainerRuntime`] is the I/O edge. [`DockerRuntime`] implements it over the Docker
//! Engine API (bollard); [`FakeRuntime`] implements it in memory for controller tests.
//! Both pass the same conformance suite (`agent/tests/runtime_conformance`).
//!
//! ```text
//!   ContainerSpec (pure data) ──create_and_start──► engine ──► ContainerId
//!                                                     │
//!        list / wait / logs / events / stats / inspect_limits ◄─┘
//! ```
//!
//! Every container Gantry starts carries the labels of [`labels`]; after a restart the
//! agent rediscovers its containers by listing with a [`LabelSelector`], so the labels
//! are the record of ownership, not a decoration.
//!
//! Every container is confined ([`hardening`]: init, `no-new-privileges`, all
//! capabilities dropped, a PID limit, never the engine's socket) and sits on its
//! workload group's own network ([`Network::Workload`], created with the group's first
//! container and removed with its last), never on the engine's default bridge.

mod docker;
mod error;
mod fake;
pub mod hardening;
pub mod labels;
mod spec;
mod types;

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use docker::{DockerConfig, DockerRuntime};
pub use error::RuntimeError;
pub use fake::{FakeExit, FakeRuntime, FakeScript};
pub use hardening::{Capability, Hardening, HardeningConfig, TmpfsMount, UserId};
pub use labels::{GantryLabels, LabelSelector};
pub use spec::{BindMount, ContainerSpec, GpuMode, Network, PublishedPort, workload_network_name};
pub use types::{
    AppliedHardening, ContainerEvent, ContainerEventKind, ContainerId, ContainerInfo, ContainerState, ContainerStats,
    Limits, LogLine, LogStream, NetworkInfo,
};

/// A container engine as the agent uses it.
///
/// Methods taking a [`ContainerId`] also accept the container's name. Streams are
/// `'static` so a task can own them; they end when the engine closes them.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Creates and starts a container. If the start fails the created container is
    /// removed again, so a failed call leaves nothing behind. A
    /// [`Network::Workload`] is created first if it does not exist yet.
    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerId, RuntimeError>;

    /// Sends SIGTERM, then SIGKILL after `grace`. Stopping a container that already
    /// exited succeeds; an unknown container is [`RuntimeError::NotFound`].
    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError>;

    /// Removes the container (killing it if still running) and its anonymous volumes,
    /// then its workload network if no other container is attached to it. Removing a
    /// container that does not exist succeeds: reconcilers call this repeatedly.
    async fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError>;

    /// All containers (running or not) whose labels match `selector`.
    async fn list(&self, selector: &LabelSelector) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Waits until the container is not running and returns its exit code. A non-zero
    /// exit code is a result, not an error.
    async fn wait(&self, id: &ContainerId) -> Result<i64, RuntimeError>;

    /// The container's output, one item per line in the order written. With `follow`
    /// the stream stays open until the container exits.
    fn logs(&self, id: &ContainerId, follow: bool) -> BoxStream<'static, Result<LogLine, RuntimeError>>;

    /// Start, die and OOM events of containers matching `selector`, from now on.
    fn events(&self, selector: &LabelSelector) -> BoxStream<'static, Result<ContainerEvent, RuntimeError>>;

    /// A sample of the container's CPU and memory use.
    async fn stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError>;

    /// The limits the engine actually applied (tests compare them with the spec).
    async fn inspect_limits(&self, id: &ContainerId) -> Result<Limits, RuntimeError>;

    /// The security settings the engine actually applied.
    async fn inspect_hardening(&self, id: &ContainerId) -> Result<AppliedHardening, RuntimeError>;

    /// Workload networks whose labels match `selector`.
    async fn list_networks(&self, selector: &LabelSelector) -> Result<Vec<NetworkInfo>, RuntimeError>;

    /// Removes the workload networks matching `selector` that no container uses (left
    /// by an agent that died between removing a container and its network) and returns
    /// their names. Idempotent.
    async fn remove_unused_networks(&self, selector: &LabelSelector) -> Result<Vec<String>, RuntimeError>;
}
