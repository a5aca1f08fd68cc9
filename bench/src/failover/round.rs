//! One failover round, the same for every system: a writer that retries across
//! members, a SIGKILL of the leader, and the time to the first acknowledged write
//! issued after the kill.
//!
//! ```text
//!   writer ──write(member, seq)──▶ ok: ack{issued, acked} ──▶ round
//!          └─fails / 200 ms────▶ next member                    │
//!   round: 20 acks ─▶ kill() ─▶ first ack with issued ≥ killed_at ─▶ acked − killed_at
//! ```
//!
//! The writer is the client both systems get: one connection per member, a 200 ms
//! bound on each write, and on any failure the next member. Every loop is bounded in
//! count and in time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bound on one write: short, so the writer moves on from a dead member quickly.
pub const OP_TIMEOUT: Duration = Duration::from_millis(200);
/// Acknowledged writes before the kill, so the writer is in steady state.
const WARMUP_ACKS: usize = 20;
/// Longest wait for the warm-up and, separately, for the first write after the kill.
pub const GIVE_UP: Duration = Duration::from_secs(30);
/// Upper bound on the writes one round issues (a 30 s round at ~1 ms per write stays far below).
const MAX_WRITES: u64 = 200_000;
/// Pause once every member failed in a row: a refused connection fails at once, and
/// spinning on it would take the CPU the surviving members need to elect a leader.
/// It bounds the resolution of the measurement, equally for every system.
const ALL_FAILED_PAUSE: Duration = Duration::from_millis(5);

/// One write to `member` with sequence number `seq` (unique within the round);
/// `Ok` means the system acknowledged it durably.
pub type WriteFn = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

struct Ack {
    issued: Instant,
    acked: Instant,
}

/// Runs one round: starts the writer on `members` members, calls `kill` once it is in
/// steady state, and returns the time from just before `kill` to the first
/// acknowledgement of a write issued after that instant.
pub async fn measure<K, KF>(members: usize, write: WriteFn, kill: K) -> anyhow::Result<Duration>
where
    K: FnOnce() -> KF,
    KF: Future<Output = anyhow::Result<()>>,
{
    anyhow::ensure!(members > 0, "no members to write to");
    // One write through every member first: connecting (TCP, TLS) to the member the
    // writer moves to after the kill must not count as failover time.
    for member in 0..members {
        match tokio::time::timeout(GIVE_UP, write(member, member as u64)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.context(format!("warm-up write through member {member}"))),
            Err(_) => bail!("warm-up write through member {member} took over {GIVE_UP:?}"),
        }
    }
    let (acks, mut acked) = mpsc::channel(64);
    // Warm-up, kill and recovery each take at most GIVE_UP.
    let deadline = Instant::now() + GIVE_UP * 3;
    let writer = tokio::spawn(writer(members, write, acks, deadline, members as u64));
    let result = async {
        let warm_deadline = Instant::now() + GIVE_UP;
        for _ in 0..WARMUP_ACKS {
            match tokio::time::timeout_at(warm_deadline, acked.recv()).await {
                Ok(Some(_)) => {}
                _ => bail!("the writer got fewer than {WARMUP_ACKS} acknowledgements before the kill"),
            }
        }
        // Taken before the signal: a conservative start (includes reaping the process).
        let killed_at = Instant::now();
        kill().await?;
        loop {
            match tokio::time::timeout_at(killed_at + GIVE_UP, acked.recv()).await {
                // Acks of writes issued before the kill may come from the old leader: skip.
                // Strictly after: a write issued at the very instant was issued before `kill`.
                Ok(Some(ack)) if ack.issued > killed_at => return Ok(ack.acked - killed_at),
                Ok(Some(_)) => {}
                Ok(None) => bail!("the writer stopped (write bound reached)"),
                Err(_) => bail!("no write acknowledged within {GIVE_UP:?} of the kill"),
            }
        }
    }
    .await;
    drop(acked);
    writer.abort();
    let _ = writer.await;
    result
}

/// Writes (sequence numbers from `first_seq`) until `deadline`, [`MAX_WRITES`] writes, or
/// nobody listens; moves to the next member whenever a write fails or takes longer than
/// [`OP_TIMEOUT`].
async fn writer(members: usize, write: WriteFn, acks: mpsc::Sender<Ack>, deadline: Instant, first_seq: u64) {
    let mut member = 0;
    let mut failed_in_a_row = 0;
    for seq in first_seq..first_seq + MAX_WRITES {
        if Instant::now() >= deadline || acks.is_closed() {
            return;
        }
        let issued = Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, write(member, seq)).await {
            Ok(Ok(())) => {
                failed_in_a_row = 0;
                if acks.send(Ack { issued, acked: Instant::now() }).await.is_err() {
                    return;
                }
            }
            _ => {
                member = (member + 1) % members;
                failed_in_a_row += 1;
                if failed_in_a_row % members == 0 {
                    tokio::time::sleep(ALL_FAILED_PAUSE).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Member 0 "dies" at the kill; the writer must move to member 1 and the measured
    /// time covers the 200 ms timeout of the write stuck on the dead member.
    #[tokio::test(start_paused = true)]
    async fn moves_to_the_next_member_after_the_kill() -> anyhow::Result<()> {
        let dead = Arc::new(AtomicBool::new(false));
        let d = dead.clone();
        let write: WriteFn = Arc::new(move |member, _| {
            let dead = d.load(Ordering::SeqCst);
            Box::pin(async move {
                if member == 0 && dead {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            })
        });
        let took = measure(2, write, || async {
            dead.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        assert!(took >= OP_TIMEOUT, "{took:?}");
        assert!(took < OP_TIMEOUT + Duration::from_millis(50), "{took:?}");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_system_that_never_recovers_fails_the_round() {
        let dead = Arc::new(AtomicBool::new(false));
        let d = dead.clone();
        let write: WriteFn = Arc::new(move |_, _| {
            let dead = d.load(Ordering::SeqCst);
            Box::pin(async move {
                anyhow::ensure!(!dead, "down");
                Ok(())
            })
        });
        let result = measure(3, write, || async {
            dead.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert!(result.is_err());
    }
}
