//! The one place errors become gRPC status codes.

use tonic::Status;

use crate::raft::ProposeError;
use crate::state::Rejected;

pub fn rejected(r: Rejected) -> Status {
    match &r {
        Rejected::InvalidArgument { .. } => Status::invalid_argument(r.to_string()),
        Rejected::NotFound { .. } => Status::not_found(r.to_string()),
        Rejected::AlreadyExists { .. } => Status::already_exists(r.to_string()),
        Rejected::FailedPrecondition { .. } => Status::failed_precondition(r.to_string()),
        Rejected::PermissionDenied { .. } => Status::permission_denied(r.to_string()),
        Rejected::Unsupported(_) => Status::unimplemented(r.to_string()),
    }
}

pub fn propose(e: ProposeError) -> Status {
    crate::raft::propose_error_status(&e)
}

/// A path outside the project's grants; fields are named as in the request (`spec.…`).
pub fn grant_denied(e: gantry_domain::GrantDenied) -> Status {
    Status::permission_denied(format!("spec.{e}"))
}

pub fn invalid(e: gantry_domain::ValidationError) -> Status {
    Status::invalid_argument(e.to_string())
}
