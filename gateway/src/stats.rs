//! Per-stage, per-minute API statistics kept by this gateway until they are reported.
//!
//! A minute is *finished* once the clock is past it; only finished minutes are taken
//! for a report. A failed report puts its minutes back ([`StageStats::restore`]), so
//! nothing is lost while no scheduler answers; minutes older than [`RETENTION_MS`] are
//! dropped then, as the scheduler keeps no more than that anyway.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_domain::api_stats::{MinuteStats, minute_start_ms};
use gantry_proto::v1;

/// Statistics older than this (24 h) are dropped unreported.
pub const RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// Milliseconds since the epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The statistics of every stage this gateway served.
#[derive(Debug, Default)]
pub struct StageStats {
    // std Mutex: held for a map update only, never across an await.
    minutes: Mutex<BTreeMap<(u64, String), MinuteStats>>,
}

impl StageStats {
    /// Counts one call to `stage_id` that ended at `at_ms`.
    pub fn record(&self, stage_id: &str, at_ms: u64, latency_us: u64, error: bool) {
        let key = (minute_start_ms(at_ms), stage_id.to_string());
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        minutes.entry(key).or_default().record(latency_us, error);
    }

    /// Takes every minute that finished before the current one.
    pub fn take_finished_minutes(&self) -> Vec<v1::StageMinute> {
        self.take_minutes_before(minute_start_ms(now_ms()))
    }

    /// Takes every minute starting before `before_ms` (the clock-free form of
    /// [`Self::take_finished_minutes`]).
    pub fn take_minutes_before(&self, before_ms: u64) -> Vec<v1::StageMinute> {
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let later = minutes.split_off(&(before_ms, String::new()));
        let taken = std::mem::replace(&mut *minutes, later);
        taken
            .into_iter()
            .map(|((minute_ms, stage_id), s)| v1::StageMinute {
                stage_id,
                minute_ms,
                calls: s.calls,
                errors: s.errors,
                latency_buckets: s.latency_buckets,
            })
            .collect()
    }

    /// Puts back minutes a report could not deliver (merged with anything counted for
    /// them since), dropping those past retention.
    pub fn restore(&self, taken: Vec<v1::StageMinute>, now_ms: u64) {
        let oldest = now_ms.saturating_sub(RETENTION_MS);
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        for m in taken {
            if m.minute_ms < oldest {
                continue;
            }
            if let Some(stats) = MinuteStats::from_parts(m.calls, m.errors, m.latency_buckets) {
                minutes.entry((m.minute_ms, m.stage_id)).or_default().merge(&stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::api_stats::LATENCY_BUCKETS;

    use super::*;

    #[test]
    fn only_minutes_before_the_cut_are_taken() {
        let s = StageStats::default();
        s.record("st1", 60_000, 150, false);
        s.record("st1", 119_999, 150, true);
        s.record("st2", 61_000, 50, false);
        s.record("st1", 120_000, 50, false);
        let taken = s.take_minutes_before(120_000);
        assert_eq!(taken.len(), 2);
        let st1 = taken.iter().find(|m| m.stage_id == "st1").unwrap();
        assert_eq!((st1.minute_ms, st1.calls, st1.errors), (60_000, 2, 1));
        assert_eq!(st1.latency_buckets.len(), LATENCY_BUCKETS);
        assert_eq!(st1.latency_buckets[1], 2);
        assert!(s.take_minutes_before(120_000).is_empty());
        let rest = s.take_minutes_before(u64::MAX);
        assert_eq!((rest.len(), rest[0].minute_ms), (1, 120_000));
    }

    #[test]
    fn restored_minutes_merge_and_old_ones_drop() {
        let s = StageStats::default();
        s.record("st1", 60_000, 150, false);
        let taken = s.take_minutes_before(u64::MAX);
        s.record("st1", 60_001, 150, true);
        s.restore(taken.clone(), 60_000 + 1000);
        let again = s.take_minutes_before(u64::MAX);
        assert_eq!((again[0].calls, again[0].errors), (2, 1));
        s.restore(again, 60_000 + RETENTION_MS + 1);
        assert!(s.take_minutes_before(u64::MAX).is_empty());
    }
}
