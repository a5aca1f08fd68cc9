//! A replica that lost its disk (its data directory wiped or rolled back, same id).
//!
//! It comes back with an empty log and no memory of its votes or of the entries it
//! acknowledged, yet raft-rs would let it act as the voter it was. Two guards:
//! - until it holds any log (the leader's snapshot or entries), it withholds its vote
//!   (and pre-vote) from any candidate whose log is not empty too, so it can never help
//!   elect a candidate that lacks entries it once counted towards commit;
//! - a heartbeat showing that it acknowledged entries it no longer has makes it ask the
//!   leader to re-admit it (`Rejoin`): the leader removes and re-adds it, tracks it from
//!   an empty log and sends it a snapshot.
//!
//! - catching up can stop halfway (the leader dies while streaming entries), leaving a
//!   log that is no longer empty yet lacks entries it once acknowledged: so the highest
//!   commit index a leader reported while this replica was behind it is kept durably as
//!   its catch-up floor (`raft::catchup`), and votes stay withheld until the durable log
//!   reaches it, across restarts.
//!
//! A brand-new cluster still elects its first leader: every log is empty then. An empty
//! replica's acknowledgements need no guard: it acknowledges only entries it holds.

use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};

use super::RaftTask;

impl RaftTask {
    /// A heartbeat promising a commit index beyond our last entry means this replica lost
    /// log entries it had acknowledged (its data directory was wiped or rolled back).
    /// Stepping it would make raft-rs abort; instead drop it and ask the leader to remove
    /// and re-add us, after which the leader tracks us from an empty log and sends a
    /// snapshot.
    pub(super) fn lost_data(&mut self, m: &Message) -> bool {
        let last_index = self.raw.raft.raft_log.last_index();
        if last_index == 0 && leader_message(m) && m.commit > 0 {
            // An empty log hearing of committed entries: new, or its disk was lost. Being
            // wrong costs a new replica only a vote withheld until it has caught up.
            self.raise_catch_up_floor(m.commit);
        }
        if m.get_msg_type() != MessageType::MsgHeartbeat || m.commit <= last_index {
            return false;
        }
        self.raise_catch_up_floor(m.commit);
        let now = Instant::now();
        if self.last_rejoin_request.is_none_or(|t| now.duration_since(t) > Duration::from_secs(1)) {
            self.last_rejoin_request = Some(now);
            tracing::warn!(
                leader = m.from,
                commit = m.commit,
                last_index = self.raw.raft.raft_log.last_index(),
                "this replica lost log entries; asking the leader to re-add it"
            );
            let transport = self.transport.clone();
            let (me, leader) = (self.cfg.id, m.from);
            tokio::spawn(async move {
                if let Err(e) = transport.rejoin(leader, me).await {
                    tracing::warn!(leader, error = %e.message(), "rejoin request failed");
                }
            });
        }
        true
    }

    /// Drops a vote request this replica must not answer (see the module docs).
    pub(super) fn withhold_vote(&mut self, m: &Message) -> bool {
        let own_last = self.raw.raft.raft_log.last_index();
        let persisted = self.raw.raft.raft_log.persisted;
        let below_floor = is_vote_request(m) && self.catch_up.holds(persisted);
        if !must_withhold_vote(own_last, m) && !below_floor {
            return false;
        }
        let now = Instant::now();
        if self.last_withheld_vote.is_none_or(|t| now.duration_since(t) > Duration::from_secs(1)) {
            self.last_withheld_vote = Some(now);
            tracing::warn!(
                candidate = m.from,
                candidate_last_index = m.index,
                floor = self.catch_up.floor(),
                persisted,
                "not voting: this replica's log is empty or below its catch-up floor (its disk was lost); \
                 waiting to catch up from the leader"
            );
        }
        true
    }

    fn raise_catch_up_floor(&mut self, commit: u64) {
        if let Err(e) = self.catch_up.raise(commit) {
            // Voting without the floor could elect a candidate missing acknowledged
            // entries: stop, as for any other storage failure.
            tracing::error!(error = %e, "cannot record the catch-up floor");
            std::process::exit(super::STORAGE_FAILED_EXIT);
        }
    }

    /// Forgets the catch-up floor once the durable log has reached it.
    pub(super) fn clear_catch_up_floor(&mut self) {
        let persisted = self.raw.raft.raft_log.persisted;
        match self.catch_up.clear_if_reached(persisted) {
            Ok(true) => tracing::info!(persisted, "caught up after a lost disk: voting again"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot remove the catch-up floor; still not voting"),
        }
    }
}

fn is_vote_request(m: &Message) -> bool {
    matches!(m.get_msg_type(), MessageType::MsgRequestVote | MessageType::MsgRequestPreVote)
}

/// Messages only a leader sends, whose `commit` is the leader's commit index.
fn leader_message(m: &Message) -> bool {
    matches!(m.get_msg_type(), MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot)
}

/// True for a vote or pre-vote request that a replica whose last index is `own_last`
/// must not grant: its log is empty and the candidate's is not.
fn must_withhold_vote(own_last: u64, m: &Message) -> bool {
    is_vote_request(m) && own_last == 0 && (m.index > 0 || m.log_term > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(msg_type: MessageType, index: u64, log_term: u64) -> Message {
        let mut m = Message { index, log_term, from: 2, to: 1, term: 5, ..Default::default() };
        m.set_msg_type(msg_type);
        m
    }

    #[test]
    fn an_empty_log_votes_only_for_an_empty_log() {
        for kind in [MessageType::MsgRequestVote, MessageType::MsgRequestPreVote] {
            assert!(must_withhold_vote(0, &request(kind, 7, 2)), "{kind:?}");
            assert!(must_withhold_vote(0, &request(kind, 0, 1)), "{kind:?}");
            // A new cluster's first election: every log is empty.
            assert!(!must_withhold_vote(0, &request(kind, 0, 0)), "{kind:?}");
            // Holding a snapshot or entries, the usual up-to-date check applies.
            assert!(!must_withhold_vote(3, &request(kind, 7, 2)), "{kind:?}");
        }
        assert!(!must_withhold_vote(0, &request(MessageType::MsgAppend, 7, 2)));
        assert!(!must_withhold_vote(0, &request(MessageType::MsgHeartbeat, 7, 2)));
    }
}
