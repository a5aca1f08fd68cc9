//! Routes: the scheduler's wire route table compiled into a [`RouteTable`] (pure), and
//! matching a request to a stage resource and the pod path to call.

mod matching;
mod path;
mod table;
#[cfg(test)]
mod tests;

pub use matching::{Route, RouteError};
pub use path::{MAX_RESOURCE_PATH_LEN, is_valid_id, resource_path_error};
pub use table::{KeyOwner, Resource, RouteTable, Stage};
