//! Per-minute API statistics of an endpoint stage: calls, errors and a latency
//! histogram in fixed log-scale buckets.
//!
//! Gateways count; the scheduler merges what every gateway reported for the same stage
//! and minute and derives percentiles. Fixed buckets (the same bounds everywhere) are
//! what makes the merge exact: adding counts bucket by bucket.

/// Upper bounds (exclusive), in microseconds, of the latency buckets: bucket `i` holds
/// latencies below `LATENCY_BUCKET_BOUNDS_US[i]` (and at or above the previous bound);
/// one more bucket after the last holds everything slower. A 1-2.5-5 series from
/// 100 µs to 60 s: a percentile is known within one step of the series.
pub const LATENCY_BUCKET_BOUNDS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Number of latency buckets: one per bound plus the overflow bucket.
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKET_BOUNDS_US.len() + 1;

/// Index of the bucket a latency falls in.
pub fn bucket_index(latency_us: u64) -> usize {
    LATENCY_BUCKET_BOUNDS_US.partition_point(|&bound| bound <= latency_us)
}

/// One stage's statistics for one minute (or several merged reports of it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinuteStats {
    pub calls: u64,
    /// Calls that ended in a 5xx answer or a transport failure.
    pub errors: u64,
    /// Always [`LATENCY_BUCKETS`] long.
    pub latency_buckets: Vec<u64>,
}

impl Default for MinuteStats {
    fn default() -> Self {
        MinuteStats { calls: 0, errors: 0, latency_buckets: vec![0; LATENCY_BUCKETS] }
    }
}

impl MinuteStats {
    /// Statistics from reported counts; `None` when the bucket count is not
    /// [`LATENCY_BUCKETS`] (a report from a gateway with other bounds cannot be merged).
    pub fn from_parts(calls: u64, errors: u64, latency_buckets: Vec<u64>) -> Option<MinuteStats> {
        (latency_buckets.len() == LATENCY_BUCKETS).then_some(MinuteStats { calls, errors, latency_buckets })
    }

    /// Counts one call.
    pub fn record(&mut self, latency_us: u64, error: bool) {
        self.calls += 1;
        if error {
            self.errors += 1;
        }
        self.latency_buckets[bucket_index(latency_us)] += 1;
    }

    /// Adds another report of the same stage and minute (saturating: a corrupt report
    /// cannot wrap the counters).
    pub fn merge(&mut self, other: &MinuteStats) {
        self.calls = self.calls.saturating_add(other.calls);
        self.errors = self.errors.saturating_add(other.errors);
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// The latency below which a fraction `q` (0 < q ≤ 1, e.g. 0.99) of the calls fell,
    /// as the upper bound of the bucket holding that call; the overflow bucket reports
    /// the last bound. `None` without calls in the histogram.
    pub fn percentile_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // Rank of the call that reaches the fraction: ceil(q * total), at least the first.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (i, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let last = LATENCY_BUCKET_BOUNDS_US.len() - 1;
                return Some(LATENCY_BUCKET_BOUNDS_US[i.min(last)]);
            }
        }
        None
    }

    pub fn p50_us(&self) -> Option<u64> {
        self.percentile_us(0.50)
    }

    pub fn p90_us(&self) -> Option<u64> {
        self.percentile_us(0.90)
    }

    pub fn p99_us(&self) -> Option<u64> {
        self.percentile_us(0.99)
    }
}

/// Start of the UTC minute holding `ms` (ms since the epoch).
pub fn minute_start_ms(ms: u64) -> u64 {
    ms - ms % 60_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_strictly_increasing() {
        assert!(LATENCY_BUCKET_BOUNDS_US.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bucket_index_puts_a_bound_in_the_next_bucket() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(99), 0);
        assert_eq!(bucket_index(100), 1);
        assert_eq!(bucket_index(249), 1);
        assert_eq!(bucket_index(60_000_000), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_index(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_merged_buckets() {
        let mut a = MinuteStats::default();
        for _ in 0..50 {
            a.record(80, false);
        }
        let mut b = MinuteStats::default();
        for _ in 0..40 {
            b.record(3_000, false);
        }
        for _ in 0..10 {
            b.record(200_000, true);
        }
        a.merge(&b);
        assert_eq!((a.calls, a.errors), (100, 10));
        assert_eq!(a.p50_us(), Some(100));
        assert_eq!(a.p90_us(), Some(5_000));
        assert_eq!(a.p99_us(), Some(250_000));
    }

    #[test]
    fn empty_stats_have_no_percentile() {
        assert_eq!(MinuteStats::default().p50_us(), None);
    }

    #[test]
    fn overflow_reports_the_last_bound() {
        let mut s = MinuteStats::default();
        s.record(u64::MAX, true);
        assert_eq!(s.p99_us(), Some(60_000_000));
    }

    #[test]
    fn from_parts_rejects_other_bucket_counts() {
        assert!(MinuteStats::from_parts(1, 0, vec![0; 3]).is_none());
        assert!(MinuteStats::from_parts(1, 0, vec![0; LATENCY_BUCKETS]).is_some());
    }

    #[test]
    fn minute_start_truncates_to_the_minute() {
        assert_eq!(minute_start_ms(120_000), 120_000);
        assert_eq!(minute_start_ms(179_999), 120_000);
    }
}
