//! The newest assignment set any replica sent. Replicas may lag one another; a set
//! older than one already taken, or than the one this agent acted on before a restart
//! (its floor, from [`super::acted`]), is ignored, so the agent never acts on stale
//! news (e.g. removes a container a lagging follower does not know about yet).

use gantry_proto::v1::WorkAssignment;
use tokio::sync::watch;

/// `None` until the first set arrives: until then the agent knows nothing and must
/// neither start nor remove anything.
pub type Assignments = Option<(u64, Vec<WorkAssignment>)>;

#[derive(Clone)]
pub struct Desired {
    tx: watch::Sender<Assignments>,
    /// The index of the newest set acted on before this start.
    floor: u64,
}

impl Default for Desired {
    fn default() -> Self {
        Desired::restored(0)
    }
}

impl Desired {
    /// Takes no set older than `floor`, the newest index acted on before.
    pub fn restored(floor: u64) -> Self {
        Desired { tx: watch::Sender::new(None), floor }
    }

    /// Takes the set if it is newer than the current one. Returns whether it did.
    pub fn offer(&self, applied_index: u64, items: Vec<WorkAssignment>) -> bool {
        if applied_index < self.floor {
            tracing::info!(applied_index, floor = self.floor, "ignored an assignment set older than one acted on");
            return false;
        }
        self.tx.send_if_modified(|current| {
            let newer = current.as_ref().is_none_or(|(index, _)| applied_index > *index);
            if newer {
                *current = Some((applied_index, items));
            }
            newer
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Assignments> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str) -> WorkAssignment {
        WorkAssignment { workload_id: id.into(), ..Default::default() }
    }

    #[test]
    fn older_sets_are_ignored() {
        let d = Desired::default();
        let rx = d.subscribe();
        assert!(rx.borrow().is_none());
        assert!(d.offer(5, vec![a("w1")]));
        assert!(!d.offer(4, vec![]), "a lagging replica's older set");
        assert!(!d.offer(5, vec![]), "the same index from another replica");
        assert_eq!(rx.borrow().as_ref().unwrap().1.len(), 1);
        assert!(d.offer(6, vec![]));
        assert!(rx.borrow().as_ref().unwrap().1.is_empty());
    }

    #[test]
    fn regression_a_restarted_agent_ignores_sets_older_than_it_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut acted = super::super::acted::ActedIndex::open(dir.path()).unwrap();
        acted.advance(10).unwrap();
        // The agent restarts; a lagging follower answers first, without w1.
        let acted = super::super::acted::ActedIndex::open(dir.path()).unwrap();
        let d = Desired::restored(acted.get());
        let rx = d.subscribe();
        assert!(!d.offer(7, vec![]), "a set older than the one acted on was taken");
        assert!(rx.borrow().is_none(), "nothing to act on yet");
        assert!(d.offer(10, vec![a("w1")]), "the same state as acted on is fine");
    }
}
