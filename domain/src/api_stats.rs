//! API statistics of a stage per minute: calls, errors and a latency histogram with
//! fixed log-scale buckets, so minutes from several gateway processes add up exactly
//! and percentiles come from the sum.

use serde::{Deserialize, Serialize};

/// Upper bounds (exclusive, µs) of the latency buckets: bucket `i` counts latencies
/// below `LATENCY_BUCKET_BOUNDS_US[i]` (and at least the previous bound); one more
/// bucket after the last bound holds everything slower. Roughly ×2 steps from 100 µs
/// to ~105 s.
pub const LATENCY_BUCKET_BOUNDS_US: [u64; 21] = [
    100,
    200,
    400,
    800,
    1_600,
    3_200,
    6_400,
    12_800,
    25_600,
    51_200,
    102_400,
    204_800,
    409_600,
    819_200,
    1_638_400,
    3_276_800,
    6_553_600,
    13_107_200,
    26_214_400,
    52_428_800,
    104_857_600,
];

/// Number of buckets: one per bound plus the overflow bucket.
pub const BUCKETS: usize = LATENCY_BUCKET_BOUNDS_US.len() + 1;

/// The bucket a latency falls in.
pub fn bucket_of(latency_us: u64) -> usize {
    LATENCY_BUCKET_BOUNDS_US.iter().position(|b| latency_us < *b).unwrap_or(LATENCY_BUCKET_BOUNDS_US.len())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteStats {
    pub calls: u64,
    pub errors: u64,
    /// Counts per bucket ([`BUCKETS`] long; a shorter one counts as zeros).
    pub buckets: Vec<u64>,
}

impl MinuteStats {
    pub fn record(&mut self, latency_us: u64, error: bool) {
        self.calls += 1;
        if error {
            self.errors += 1;
        }
        if self.buckets.len() < BUCKETS {
            self.buckets.resize(BUCKETS, 0);
        }
        self.buckets[bucket_of(latency_us)] += 1;
    }

    /// Adds `other` into `self` (saturating; extra buckets beyond [`BUCKETS`] are
    /// folded into the last one).
    pub fn merge(&mut self, other: &MinuteStats) {
        self.calls = self.calls.saturating_add(other.calls);
        self.errors = self.errors.saturating_add(other.errors);
        if self.buckets.len() < BUCKETS {
            self.buckets.resize(BUCKETS, 0);
        }
        for (i, n) in other.buckets.iter().enumerate() {
            let slot = i.min(BUCKETS - 1);
            self.buckets[slot] = self.buckets[slot].saturating_add(*n);
        }
    }

    /// The latency (µs) below which a fraction `q` (0..=1) of the calls fell: the upper
    /// bound of the bucket holding that rank (the last bound for the overflow bucket);
    /// 0 without calls.
    pub fn percentile(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let q = if q.is_finite() { q.clamp(0.0, 1.0) } else { 1.0 };
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                let last = LATENCY_BUCKET_BOUNDS_US.len() - 1;
                return LATENCY_BUCKET_BOUNDS_US[i.min(last)];
            }
        }
        LATENCY_BUCKET_BOUNDS_US[LATENCY_BUCKET_BOUNDS_US.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(99), 0);
        assert_eq!(bucket_of(100), 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut m = MinuteStats::default();
        assert_eq!(m.percentile(0.5), 0);
        for _ in 0..90 {
            m.record(150, false);
        }
        for _ in 0..10 {
            m.record(5_000, true);
        }
        assert_eq!((m.calls, m.errors), (100, 10));
        assert_eq!(m.percentile(0.5), 200);
        assert_eq!(m.percentile(0.9), 200);
        assert_eq!(m.percentile(0.99), 6_400);
    }

    #[test]
    fn merging_adds_counts_and_buckets() {
        let mut a = MinuteStats::default();
        a.record(50, false);
        let mut b = MinuteStats { calls: 2, errors: 1, buckets: vec![0, 2] };
        b.buckets.resize(BUCKETS + 3, 1);
        a.merge(&b);
        assert_eq!((a.calls, a.errors), (3, 1));
        assert_eq!(a.buckets.len(), BUCKETS);
        assert_eq!(a.buckets[0], 1);
        assert_eq!(a.buckets[1], 2);
        assert_eq!(a.buckets[BUCKETS - 1], 4, "overflow folds into the last bucket");
    }
}
