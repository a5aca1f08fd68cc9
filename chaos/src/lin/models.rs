//! The objects the nemesis workload exercises, as sequential models.

use super::Model;

/// A named resource that is created, read and deleted (an experiment): create answers
/// `AlreadyExists` when it exists, delete `NotFound` when it does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Membership;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipInput {
    Create,
    Delete,
    Get,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipOutput {
    Ok,
    AlreadyExists,
    NotFound,
    /// A get that found the resource.
    Found,
}

impl Model for Membership {
    type State = bool;
    type Input = MembershipInput;
    type Output = MembershipOutput;

    fn init(&self) -> bool {
        false
    }

    fn step(&self, exists: &bool, input: &MembershipInput, output: Option<&MembershipOutput>) -> Option<bool> {
        use MembershipInput as I;
        use MembershipOutput as O;
        let (next, expected) = match (input, *exists) {
            (I::Create, false) => (true, O::Ok),
            (I::Create, true) => (true, O::AlreadyExists),
            (I::Delete, true) => (false, O::Ok),
            (I::Delete, false) => (false, O::NotFound),
            (I::Get, true) => (true, O::Found),
            (I::Get, false) => (false, O::NotFound),
        };
        match output {
            Some(o) if *o != expected => None,
            _ => Some(next),
        }
    }
}

/// A register written with whole values and read back (an instance type's memory size):
/// a read of a never-written register answers `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterInput {
    Write(u64),
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutput {
    Written,
    Value(Option<u64>),
}

impl Model for Register {
    type State = Option<u64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, value: &Option<u64>, input: &RegisterInput, output: Option<&RegisterOutput>) -> Option<Option<u64>> {
        match (input, output) {
            (RegisterInput::Write(v), None | Some(RegisterOutput::Written)) => Some(Some(*v)),
            (RegisterInput::Read, None) => Some(*value),
            (RegisterInput::Read, Some(RegisterOutput::Value(seen))) if seen == value => Some(*value),
            _ => None,
        }
    }
}
