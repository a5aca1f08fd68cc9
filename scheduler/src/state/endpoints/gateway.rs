//! Gateways' reports: the table version each applied, stages they failed to apply, and
//! finished minutes of API statistics (kept 24 h).

use super::command::{StageError, StageMinute};
use gantry_domain::endpoint::GatewayReport;

use crate::state::{Applied, Outcome, Rejected, State};

/// Statistics older than this (by the command's time) are dropped.
pub const STATS_KEEP_MS: u64 = 24 * 60 * 60 * 1000;

pub(super) fn report_gateway(
    state: &mut State,
    index: u64,
    gateway_id: &str,
    applied_version: u64,
    errors: Vec<StageError>,
    minutes: Vec<StageMinute>,
    now_ms: u64,
) -> Outcome {
    gantry_domain::validate::non_empty_bounded("gateway_id", gateway_id, 253)?;
    if minutes.iter().any(|m| m.minute_ms % 60_000 != 0) {
        return Err(Rejected::invalid("minutes.minute_ms", "must be the start of a minute"));
    }
    let oldest = now_ms.saturating_sub(STATS_KEEP_MS);
    let projects: Vec<String> = state.projects.keys().cloned().collect();
    for p in state.projects.values_mut() {
        for s in p.endpoints.values_mut().flat_map(|e| e.stages.values_mut()) {
            let error = errors
                .iter()
                .filter(|e| e.stage_id == s.id)
                .max_by_key(|e| e.config_version)
                .map(|e| (e.config_version, e.error.clone()));
            s.gateways.insert(gateway_id.to_string(), GatewayReport { applied_version, error, reported_at_ms: now_ms });
            for m in minutes.iter().filter(|m| m.stage_id == s.id && m.minute_ms >= oldest) {
                // Replacing (not adding) makes a resent minute count once.
                s.stats.entry(m.minute_ms).or_default().insert(gateway_id.to_string(), m.stats.clone());
            }
            s.stats.retain(|minute, _| *minute >= oldest);
            // A gateway silent for a day is forgotten.
            s.gateways.retain(|_, g| g.reported_at_ms >= oldest);
        }
    }
    for p in projects {
        super::refresh::settle_project(state, index, &p, Some(now_ms));
    }
    Ok(Applied::Done)
}
