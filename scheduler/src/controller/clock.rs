//! Time for controllers that measure durations against replicated timestamps.
//!
//! Replicated records carry wall-clock stamps (`created_at_ms`), the only time every
//! replica can agree on. Comparing them with a fresh wall-clock reading on every check
//! would let a step of the clock (NTP, a resumed VM, an operator's `date -s`) expire
//! every training at once. [`AnchoredClock`] reads the wall clock once, when it is made,
//! and moves on from there with the monotonic clock: a later step changes nothing, and
//! a new leader, which anchors its own clock, still measures from the same replicated
//! stamps (the error is what the replicas' clocks disagreed by when they anchored).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The two clocks of a host.
pub trait Clock: Send + Sync {
    /// Wall clock: milliseconds since the Unix epoch. May jump.
    fn wall_ms(&self) -> u64;
    /// Monotonic clock: time since an arbitrary fixed origin. Never goes back.
    fn monotonic(&self) -> Duration;
}

/// The host's clocks.
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock { origin: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// Wall-clock time as of the anchor, advanced by the monotonic clock since.
pub struct AnchoredClock<C> {
    clock: C,
    wall_at_anchor: u64,
    monotonic_at_anchor: Duration,
}

impl<C: Clock> AnchoredClock<C> {
    pub fn new(clock: C) -> Self {
        let (wall_at_anchor, monotonic_at_anchor) = (clock.wall_ms(), clock.monotonic());
        AnchoredClock { clock, wall_at_anchor, monotonic_at_anchor }
    }

    /// Milliseconds since the Unix epoch, immune to wall-clock steps after the anchor.
    pub fn now_ms(&self) -> u64 {
        let since = self.clock.monotonic().saturating_sub(self.monotonic_at_anchor);
        self.wall_at_anchor.saturating_add(since.as_millis() as u64)
    }

    /// The unanchored wall clock, for dating records people read.
    pub fn wall_ms(&self) -> u64 {
        self.clock.wall_ms()
    }
}

/// A clock tests move by hand: the wall clock and the monotonic clock separately.
#[derive(Clone, Default)]
pub struct FakeClock {
    inner: std::sync::Arc<(AtomicU64, AtomicU64)>,
}

impl FakeClock {
    pub fn new(wall_ms: u64) -> Self {
        let clock = FakeClock::default();
        clock.inner.0.store(wall_ms, Ordering::SeqCst);
        clock
    }

    /// Time passes: both clocks move on by `by`.
    pub fn advance(&self, by: Duration) {
        self.inner.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        self.inner.1.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// The wall clock is set to `wall_ms`; no time passes.
    pub fn set_wall(&self, wall_ms: u64) {
        self.inner.0.store(wall_ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn wall_ms(&self) -> u64 {
        self.inner.0.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.inner.1.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_step_after_the_anchor_changes_nothing() {
        let fake = FakeClock::new(1_000);
        let clock = AnchoredClock::new(fake.clone());
        fake.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        fake.set_wall(1_000_000_000);
        assert_eq!(clock.now_ms(), 3_000);
        assert_eq!(clock.wall_ms(), 1_000_000_000);
        fake.set_wall(0);
        fake.advance(Duration::from_millis(5));
        assert_eq!(clock.now_ms(), 3_005);
    }
}
