//! Gantry's wire contracts: the gRPC services and messages generated from `proto/`, and
//! the conversions between wire messages and domain types.
//!
//! Conversions from the wire *validate*: a malformed request becomes a
//! [`gantry_domain::ValidationError`] naming the field as the request spells it, never a
//! panic and never a half-filled domain value.

pub mod convert;

#[allow(clippy::all, clippy::unwrap_used)]
pub mod v1 {
    tonic::include_proto!("gantry.v1");
}

/// Metadata key of the join token on agent calls made without TLS (`insecure_dev`),
/// where no node certificate can identify the agent.
pub const JOIN_TOKEN_HEADER: &str = "x-gantry-join-token";

/// Encoded `FileDescriptorSet` of every Gantry service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gantry_descriptor.bin"));
