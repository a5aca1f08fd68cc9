//! Endpoints → stages → stage resources → pods (the guide's "엔드포인트"; design in
//! docs/adr/0003-serving-design.md).
//!
//! ```text
//!   spec      what a user asks for, with the field rules
//!   record    what is replicated
//!   status    the guide's status names
//!   derive    statuses computed from what runs (pure)
//! ```

pub mod derive;
pub mod record;
pub mod spec;
pub mod status;

pub use record::{ApiKey, Endpoint, GatewayReport, Pod, ServedModel, Stage, StageResource};
pub use spec::{EndpointSpec, StageResourceSpec, StageSpec};
pub use status::{EndpointStatus, GatewayStatus, StageResourceStatus, StageStatus};
