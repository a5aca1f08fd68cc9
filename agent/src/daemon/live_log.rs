//! The output of a container whose training has log management off (`use_log =
//! false`): passed on to whoever follows it at that moment, and kept nowhere. Only the
//! last few lines stay in memory, for a failure's reason, and go with the worker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

/// Batches of lines buffered per follower before a slow one starts losing output.
const FOLLOWER_BUFFER: usize = 1024;

pub type Batch = Arc<Vec<String>>;

#[derive(Clone)]
pub struct LiveLog {
    // std Mutex: held only to push or copy, never across an await.
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// `None` once the container's output has ended: followers then see the end.
    tx: Option<broadcast::Sender<Batch>>,
    tail: VecDeque<String>,
    keep: usize,
}

impl LiveLog {
    /// Keeps the last `keep` lines in memory.
    pub fn new(keep: usize) -> Self {
        let (tx, _) = broadcast::channel(FOLLOWER_BUFFER);
        LiveLog { inner: Arc::new(Mutex::new(Inner { tx: Some(tx), tail: VecDeque::new(), keep })) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Passes `lines` to the current followers (none: they are dropped).
    pub fn publish(&self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let keep = inner.keep;
        for line in lines.iter().rev().take(keep).rev() {
            if inner.tail.len() == keep {
                inner.tail.pop_front();
            }
            inner.tail.push_back(line.clone());
        }
        if let Some(tx) = &inner.tx {
            let _ = tx.send(Arc::new(lines));
        }
    }

    /// Output from now on; `None` once it has ended.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Batch>> {
        self.lock().tx.as_ref().map(broadcast::Sender::subscribe)
    }

    /// The output has ended: followers get the end once they have read what was sent.
    pub fn finish(&self) {
        self.lock().tx = None;
    }

    /// The last (at most) `n` lines, oldest first.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let inner = self.lock();
        inner.tail.iter().skip(inner.tail.len().saturating_sub(n)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_what_is_published_after_they_came_and_then_the_end() {
        let log = LiveLog::new(2);
        log.publish(vec!["before".into()]);
        let mut rx = log.subscribe().expect("live");
        log.publish(vec!["a".into(), "b".into(), "c".into()]);
        log.finish();
        assert_eq!(*rx.recv().await.expect("a batch"), ["a", "b", "c"]);
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Closed)));
        assert!(log.subscribe().is_none());
        assert_eq!(log.last_lines(5), ["b", "c"], "only the tail is kept, in memory");
    }
}
