//! Human forms of the wire's raw numbers: timestamps, durations, CPU and memory.

use std::time::{Duration, UNIX_EPOCH};

const MIB_PER_GIB: u64 = 1024;

/// Milliseconds since the epoch as RFC 3339 UTC to the second (`2025-01-02T03:04:05Z`);
/// 0, the wire's "not set", as an empty string.
pub fn timestamp(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A duration as `1h2m3s`, `3m12s` or `45s` (Go's style, to the second).
pub fn elapsed(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// How long before `now_ms` the moment `then_ms` was, as `2s ago` or `3m12s ago`; `-`
/// for 0, the wire's "never". A moment after `now_ms` (the server's clock is ahead of
/// ours) counts as now.
pub fn ago(then_ms: u64, now_ms: u64) -> String {
    if then_ms == 0 {
        return "-".to_string();
    }
    format!("{} ago", elapsed(now_ms.saturating_sub(then_ms)))
}

/// Minutes as `45m`, `2h` or `1h30m`.
pub fn minutes(m: u32) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Millicores as cores: 4000 → `4`, 500 → `0.5`, 1250 → `1.25`.
pub fn cpu(millis: u64) -> String {
    let (whole, frac) = (millis / 1000, millis % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// MiB as `16Gi`, `1.5Gi` or `512Mi`: GiB once it is at least one, rounded to a tenth.
pub fn mib(mib: u64) -> String {
    if mib < MIB_PER_GIB {
        format!("{mib}Mi")
    } else if mib.is_multiple_of(MIB_PER_GIB) {
        format!("{}Gi", mib / MIB_PER_GIB)
    } else {
        format!("{:.1}Gi", mib as f64 / MIB_PER_GIB as f64)
    }
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn elapsed_uses_the_largest_units() {
        assert_eq!(elapsed(0), "0s");
        assert_eq!(elapsed(45_999), "45s");
        assert_eq!(elapsed(192_000), "3m12s");
        assert_eq!(elapsed(3_723_000), "1h2m3s");
        assert_eq!(elapsed(3_600_000), "1h0m0s");
    }

    #[test]
    fn ago_counts_back_from_now() {
        assert_eq!(ago(0, 5_000), "-");
        assert_eq!(ago(3_000, 5_500), "2s ago");
        assert_eq!(ago(6_000, 5_000), "0s ago");
        assert_eq!(ago(1_000, 193_000), "3m12s ago");
    }

    #[test]
    fn minutes_prefer_hours() {
        assert_eq!(minutes(45), "45m");
        assert_eq!(minutes(90), "1h30m");
        assert_eq!(minutes(120), "2h");
        assert_eq!(minutes(0), "0m");
    }

    #[test]
    fn cpu_and_memory() {
        assert_eq!(cpu(4000), "4");
        assert_eq!(cpu(500), "0.5");
        assert_eq!(cpu(1250), "1.25");
        assert_eq!(cpu(0), "0");
        assert_eq!(mib(512), "512Mi");
        assert_eq!(mib(16 * 1024), "16Gi");
        assert_eq!(mib(1536), "1.5Gi");
    }
}
