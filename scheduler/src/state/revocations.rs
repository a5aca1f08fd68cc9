//! Node identities in the replicated state: who may join under a name, and which
//! certificates of a node are refused.
//!
//! ```text
//!   JoinNode (join token)  ── new name ─────────────────▶ node READY
//!                          ── existing name ────────────▶ AlreadyExists
//!                          ── revoked + admitted name ──▶ node READY, admission used up
//!   RevokeNode             ── revoked_before = now, node DOWN (its trainings end)
//!   AdmitNode              ── one fresh join allowed; old certificates stay refused
//! ```
//!
//! The rule for certificates is one comparison: a certificate of node N issued before
//! N's `revoked_before_ms` is refused. It needs no list of serials, survives snapshots
//! as one number per node, and a re-admitted node's new certificate passes it because
//! it was issued later.

use gantry_domain::{NodeInventory, NodeStatus};
use serde::{Deserialize, Serialize};

use super::{Applied, Outcome, Rejected, State};

/// A revoked node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRevocation {
    /// Every certificate of the node issued before this (Unix ms) is refused.
    pub revoked_before_ms: u64,
    /// The operator allowed one fresh join with the join token (`gantryctl node admit`).
    pub rejoin_allowed: bool,
    /// When the node joined again after the revocation. Without TLS there are no
    /// certificates to date, so this is what lets a dev-mode node speak again.
    pub rejoined_at_ms: Option<u64>,
}

/// Why a node's call is refused, if it is.
///
/// `issued_at_ms` is the issue time of the certificate the call came with, or `None`
/// when there is none (TLS off, the join token stands in for every node).
pub fn refusal(state: &State, node_id: &str, issued_at_ms: Option<u64>) -> Option<String> {
    let r = state.node_revocations.get(node_id)?;
    let refused = match issued_at_ms {
        Some(issued) => issued < r.revoked_before_ms,
        None => r.rejoined_at_ms.is_none(),
    };
    refused.then(|| format!("node '{node_id}' was revoked: its certificates issued before the revocation are refused"))
}

/// The earliest issue time a new certificate of `node_id` may carry: after its
/// revocation even if this replica's clock is behind the one that stamped it.
pub fn earliest_issue_ms(state: &State, node_id: &str, now_ms: u64) -> u64 {
    match state.node_revocations.get(node_id) {
        Some(r) => now_ms.max(r.revoked_before_ms),
        None => now_ms,
    }
}

/// Registration with the join token: admits a new name, or a revoked one the operator
/// admitted again (once). Checked here, not only by the API, so two joins racing for one
/// name cannot both win.
pub fn join_node(
    state: &mut State,
    hostname: String,
    address: String,
    inventory: NodeInventory,
    now_ms: u64,
    key: String,
) -> Outcome {
    // Validated before anything changes: a rejection must leave the state as it was.
    gantry_domain::validate::non_empty_bounded("hostname", &hostname, 253)?;
    // Before the admission below is used up: a join refused for its inventory must leave
    // the operator's admission in place.
    super::nodes::check_gpus_unique(state, &hostname, &inventory)?;
    if let Some(node) = is_retry(state, &hostname, &address, &inventory, &key) {
        return Ok(Applied::Node(node));
    }
    if state.nodes.contains_key(&hostname) {
        match state.node_revocations.get_mut(&hostname) {
            Some(r) if r.rejoin_allowed => {
                r.rejoin_allowed = false;
                r.rejoined_at_ms = Some(now_ms);
            }
            Some(_) => {
                return Err(Rejected::PermissionDenied {
                    reason: format!("node '{hostname}' was revoked: an operator must admit it again first"),
                });
            }
            None => {
                return Err(Rejected::PermissionDenied {
                    reason: format!(
                        "node '{hostname}' is registered: the join token admits a new name once; \
                         re-register with the node's own certificate"
                    ),
                });
            }
        }
    }
    let outcome = super::nodes::register_node(state, hostname.clone(), address, inventory, now_ms)?;
    if key.is_empty() {
        state.join_keys.remove(&hostname);
    } else {
        state.join_keys.insert(hostname, key);
    }
    Ok(outcome)
}

/// The node, when this join repeats the one that created it: same key (whose private
/// half only the node holds; the CSR's signature proved it), same address and
/// inventory, and the node not revoked since. Such a retry changes nothing; it only
/// lets an agent whose first answer was lost get its certificate.
pub fn is_retry(
    state: &State,
    hostname: &str,
    address: &str,
    inventory: &NodeInventory,
    key: &str,
) -> Option<gantry_domain::Node> {
    let node = state.nodes.get(hostname)?;
    let same = !key.is_empty()
        && state.join_keys.get(hostname).is_some_and(|k| k == key)
        && node.address == address
        && &node.inventory == inventory
        && !state.node_revocations.contains_key(hostname);
    same.then(|| node.clone())
}

/// Refuses the node's certificates issued until now and marks it DOWN, which ends its
/// trainings as for a lost node.
pub fn revoke_node(state: &mut State, node_id: &str, reason: &str, now_ms: u64) -> Outcome {
    if !state.nodes.contains_key(node_id) {
        return Err(Rejected::not_found(format!("node '{node_id}'")));
    }
    let revoked_before_ms = state.node_revocations.get(node_id).map_or(now_ms, |r| r.revoked_before_ms.max(now_ms));
    state
        .node_revocations
        .insert(node_id.to_string(), NodeRevocation { revoked_before_ms, rejoin_allowed: false, rejoined_at_ms: None });
    let reason = if reason.is_empty() { format!("node {node_id} was revoked") } else { reason.to_string() };
    super::nodes::set_node_status(state, node_id, NodeStatus::Down, &reason, now_ms)
}

/// Allows one fresh join of a revoked node with the join token.
pub fn admit_node(state: &mut State, node_id: &str) -> Outcome {
    let node = state.nodes.get(node_id).ok_or_else(|| Rejected::not_found(format!("node '{node_id}'")))?.clone();
    let r = state
        .node_revocations
        .get_mut(node_id)
        .ok_or_else(|| Rejected::precondition(format!("node '{node_id}' is not revoked")))?;
    r.rejoin_allowed = true;
    Ok(Applied::Node(node))
}

/// A revoked node comes back only by joining again, not by an agent reconnecting with
/// a session opened before the revocation was applied.
pub fn blocks_ready(state: &State, node_id: &str) -> bool {
    state.node_revocations.get(node_id).is_some_and(|r| r.rejoined_at_ms.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::cpu_catalog;
    use crate::state::{CommandV1, apply};

    fn inventory() -> NodeInventory {
        NodeInventory { cpu_millis: 8000, memory_mib: 8192, disk_mib: 0, gpus: vec![] }
    }

    fn join(name: &str, address: &str, now_ms: u64) -> CommandV1 {
        CommandV1::JoinNode {
            hostname: name.into(),
            address: address.into(),
            inventory: inventory(),
            now_ms,
            key: String::new(),
        }
    }

    #[test]
    fn regression_a_join_retried_with_its_key_after_a_lost_answer_is_the_same_join() {
        let mut state = cpu_catalog();
        let keyed = |address: &str, key: &str, now_ms| CommandV1::JoinNode {
            hostname: "a".into(),
            address: address.into(),
            inventory: inventory(),
            now_ms,
            key: key.into(),
        };
        apply(&mut state, 10, keyed("10.0.0.1", "k1", 1).into()).expect("first join");
        let before = state.clone();
        // The agent never got its certificate and asks again for the same key: a no-op.
        apply(&mut state, 11, keyed("10.0.0.1", "k1", 2).into()).expect("the retry");
        assert_eq!((&state.nodes, &state.join_keys), (&before.nodes, &before.join_keys));
        // Another key, or the same key changing what is registered, is a second join.
        for (i, (address, key)) in [("10.0.0.1", "k2"), ("10.6.6.6", "k1"), ("10.0.0.1", "")].into_iter().enumerate() {
            let refused = apply(&mut state, 12 + i as u64, keyed(address, key, 3).into()).expect_err("refused");
            assert!(matches!(refused, Rejected::PermissionDenied { .. }), "{refused:?}");
        }
        assert_eq!(state.nodes, before.nodes);
        // Once revoked, the join key does not bring the node back.
        apply(&mut state, 20, CommandV1::RevokeNode { node_id: "a".into(), reason: String::new(), now_ms: 4 }.into())
            .expect("revoke");
        apply(&mut state, 21, keyed("10.0.0.1", "k1", 5).into()).expect_err("revoked");
    }

    #[test]
    fn the_join_token_admits_a_name_once() {
        let mut state = cpu_catalog();
        apply(&mut state, 10, join("a", "10.0.0.1", 1).into()).expect("apply in test");
        let again = apply(&mut state, 11, join("a", "10.6.6.6", 2).into()).expect_err("a rejection");
        assert!(
            matches!(&again, Rejected::PermissionDenied { reason } if reason.contains("own certificate")),
            "{again:?}"
        );
        assert_eq!(state.nodes["a"].address, "10.0.0.1");
    }

    #[test]
    fn a_revocation_refuses_older_certificates_until_an_admitted_rejoin() {
        let mut state = cpu_catalog();
        apply(&mut state, 10, join("a", "10.0.0.1", 1).into()).expect("apply in test");
        assert_eq!(refusal(&state, "a", Some(5)), None);
        let revoke = CommandV1::RevokeNode { node_id: "a".into(), reason: String::new(), now_ms: 100 };
        apply(&mut state, 11, revoke.into()).expect("apply in test");
        assert_eq!(state.nodes["a"].status, NodeStatus::Down);
        assert!(refusal(&state, "a", Some(99)).is_some());
        assert!(refusal(&state, "a", None).is_some(), "without TLS the name itself is refused");
        assert!(blocks_ready(&state, "a"));
        // Not admitted yet: the join token cannot take the name back.
        let denied = apply(&mut state, 12, join("a", "10.6.6.6", 101).into()).expect_err("a rejection");
        assert!(matches!(denied, Rejected::PermissionDenied { .. }), "{denied:?}");
        let ready = CommandV1::SetNodeStatus {
            node_id: "a".into(),
            status: NodeStatus::Ready,
            now_ms: 102,
            reason: String::new(),
        };
        assert!(apply(&mut state, 13, ready.clone().into()).is_err(), "an old session cannot mark it READY");

        apply(&mut state, 14, CommandV1::AdmitNode { node_id: "a".into() }.into()).expect("apply in test");
        apply(&mut state, 15, join("a", "10.0.0.2", 103).into()).expect("apply in test");
        assert_eq!((state.nodes["a"].status, state.nodes["a"].address.as_str()), (NodeStatus::Ready, "10.0.0.2"));
        assert!(refusal(&state, "a", Some(99)).is_some(), "old certificates stay refused");
        assert_eq!(refusal(&state, "a", Some(100)), None);
        assert_eq!(refusal(&state, "a", None), None);
        assert!(!blocks_ready(&state, "a"));
        // The admission was for one join.
        assert!(apply(&mut state, 16, join("a", "10.6.6.6", 104).into()).is_err());
        assert_eq!(earliest_issue_ms(&state, "a", 50), 100, "a slow clock still issues after the revocation");
        assert_eq!(earliest_issue_ms(&state, "b", 50), 50);
    }

    #[test]
    fn revoking_ends_the_trainings_on_the_node_and_unknown_nodes_are_not_found() {
        let mut state = crate::state::tests::cpu_catalog();
        let err = apply(
            &mut state,
            10,
            CommandV1::RevokeNode { node_id: "x".into(), reason: String::new(), now_ms: 1 }.into(),
        )
        .expect_err("a rejection");
        assert!(matches!(err, Rejected::NotFound { .. }));
        let err = apply(&mut state, 11, CommandV1::AdmitNode { node_id: "x".into() }.into()).expect_err("a rejection");
        assert!(matches!(err, Rejected::NotFound { .. }));
        apply(&mut state, 12, join("a", "10.0.0.1", 1).into()).expect("apply in test");
        let err = apply(&mut state, 13, CommandV1::AdmitNode { node_id: "a".into() }.into()).expect_err("a rejection");
        assert!(matches!(err, Rejected::FailedPrecondition { .. }), "only a revoked node is admitted");

        let create = crate::state::tests::create_t("w1", 1);
        apply(&mut state, 14, create.into()).expect("apply in test");
        let placement = gantry_domain::Placement {
            assignments: vec![gantry_domain::Assignment { node_id: "a".into(), gpu_uuids: vec![] }],
        };
        apply(&mut state, 15, CommandV1::Place { workload_id: "w1".into(), placement, now_ms: 3, ports: None }.into())
            .expect("apply in test");
        let revoke = CommandV1::RevokeNode { node_id: "a".into(), reason: "stolen".into(), now_ms: 4 };
        apply(&mut state, 16, revoke.into()).expect("apply in test");
        let t = state.training("p", "t").expect("apply in test");
        assert_eq!((t.status, t.status_reason.as_str()), (gantry_domain::TrainingStatus::FailTrain, "stolen"));
        // Its GPUs and CPUs stay held until its agent, admitted again, reports the
        // container gone: the node is DOWN, so nothing is placed there meanwhile.
        assert!(state.workloads["w1"].ended);
    }
}
