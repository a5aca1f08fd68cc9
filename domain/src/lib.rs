//! Gantry's domain model: the resources users and operators manage, the rules their
//! fields obey, and the resource shapes placement works with.
//!
//! Pure data and pure functions only: no tokio, no tonic, no I/O. Everything above
//! (proto conversion, the replicated state machine, placement, the CLI) builds on it.
//!
//! ```text
//!   domain  <-  proto  <-  scheduler / cli  <-  chaos / tests / bench
//! ```

pub mod api_stats;
pub mod catalog;
pub mod endpoint;
pub mod experiment;
pub mod meta;
pub mod model;
pub mod node;
pub mod ports;
pub mod resources;
pub mod status;
pub mod storage_grant;
pub mod storage_path;
pub mod training;
pub mod validate;
pub mod workload;

pub use catalog::{Framework, Image, ImageCoreType, InstanceType};
pub use experiment::{Experiment, ExperimentSpec};
pub use meta::{Meta, Tag};
pub use model::{Model, ModelFramework, ModelSource, ModelSpec};
pub use node::{Gpu, GpuFault, Node, NodeInventory, NodeStatus};
pub use ports::{GangPorts, PortRange};
pub use resources::Resources;
pub use status::{ExperimentStatus, TrainingStatus};
pub use storage_grant::{Access, GrantDenied, StorageGrants};
pub use storage_path::StoragePath;
pub use training::{Algorithm, Dataset, Hyperparameter, Training, TrainingSpec};
pub use validate::ValidationError;
pub use workload::{Assignment, Placement, WorkloadDemand};
