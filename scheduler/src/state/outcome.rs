//! What applying a command produced. A rejection is replicated data, not an error: every
//! replica rejects the same command the same way, and the proposer reports it to the
//! client with the matching gRPC code.

use gantry_domain::{Experiment, Image, InstanceType, Model, Node, Placement, Training, ValidationError};
use serde::{Deserialize, Serialize};

// An outcome lives from apply to the waiting client's answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    InstanceType(InstanceType),
    Image(Image),
    Node(Node),
    Experiment(Experiment),
    Training { training: Training, placement: Option<Placement> },
    Model(Model),
    Endpoint(gantry_domain::endpoint::Endpoint),
    ApiKey(gantry_domain::endpoint::ApiKey),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejected {
    #[error("{field}: {rule}")]
    InvalidArgument { field: String, rule: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{reason}")]
    FailedPrecondition { reason: String },
    /// A path outside the project's storage grants.
    #[error("{reason}")]
    PermissionDenied { reason: String },
    #[error("command from a newer scheduler version: {0}")]
    Unsupported(String),
}

impl From<ValidationError> for Rejected {
    fn from(e: ValidationError) -> Self {
        Rejected::InvalidArgument { field: e.field, rule: e.rule }
    }
}

impl Rejected {
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Rejected::InvalidArgument { field: field.into(), rule: rule.into() }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Rejected::NotFound { what: what.into() }
    }
    pub fn precondition(reason: impl Into<String>) -> Self {
        Rejected::FailedPrecondition { reason: reason.into() }
    }
}

pub type Outcome = Result<Applied, Rejected>;
