//! Failures of container operations, one variant per thing a caller decides on.

/// What went wrong talking to the container engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// No container with this id or name exists.
    #[error("container {0} not found")]
    NotFound(String),
    /// Another container already has this name.
    #[error("container name {0} is already in use")]
    NameConflict(String),
    /// The image is not on this node; there is no registry to pull from, images are
    /// loaded by the operator or the agent beforehand.
    #[error("image {0} is not present on this node")]
    ImageMissing(String),
    /// The spec breaks a rule the engine would reject (or silently misread).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// The engine's socket cannot be reached.
    #[error("container engine unreachable: {0}")]
    Unreachable(String),
    /// The engine answered with an error not covered above.
    #[error("container engine {op} failed: {message}")]
    Engine { op: &'static str, message: String },
}
