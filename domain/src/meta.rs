//! What every resource carries: identity, owner project, name, description, tags, times.

use serde::{Deserialize, Serialize};

/// A key-value label. Keys are unique within one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Identity and bookkeeping common to all project resources.
///
/// `project` is EasyMaker's appkey: names are unique within it and nothing crosses it.
/// Times are milliseconds since the Unix epoch, stamped by the proposing replica into the
/// command so that every replica applies the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub project: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The client's idempotency key of the create: a retried create with the same key
    /// returns this record instead of failing with "already exists".
    pub request_id: String,
}
