//! What XID codes mean (NVIDIA's "XID Errors" table) and which ones leave a GPU unfit
//! for more work (pure).

/// The meaning of `code` as NVIDIA documents it; a generic text for codes not listed.
pub fn meaning(code: u64) -> &'static str {
    match code {
        13 => "graphics engine exception",
        31 => "GPU memory page fault",
        32 => "invalid or corrupted push buffer stream",
        38 => "driver firmware error",
        43 => "GPU stopped processing",
        45 => "preemptive cleanup, due to previous errors",
        48 => "double bit ECC error",
        61 => "internal micro-controller breakpoint/warning",
        62 => "internal micro-controller halt",
        63 => "ECC page retirement or row remapping recording event",
        64 => "ECC page retirement or row remapper recording failure",
        68 => "video processor exception",
        69 => "graphics engine class error",
        74 => "NVLink error",
        79 => "GPU has fallen off the bus",
        92 => "high single-bit ECC error rate",
        94 => "contained ECC error",
        95 => "uncontained ECC error",
        109 => "context switch timeout",
        119 => "GSP RPC timeout",
        120 => "GSP error",
        _ => "critical GPU error (see NVIDIA's XID table)",
    }
}

/// XIDs a user's program causes (a bad kernel, an out-of-bounds access, a killed
/// process): the GPU itself is fine. The same list the NVIDIA Kubernetes device
/// plugin ignores; every other critical XID marks the GPU unhealthy until the agent
/// restarts (after the GPU was reset or the node rebooted).
pub fn is_application_error(code: u64) -> bool {
    matches!(code, 13 | 31 | 43 | 45 | 68 | 109)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_xids_are_not_application_errors() {
        assert_eq!(meaning(79), "GPU has fallen off the bus");
        assert!(!meaning(9999).is_empty());
        for code in [48, 64, 74, 79, 92, 94, 95, 119] {
            assert!(!is_application_error(code), "{code}");
        }
        for code in [13, 31, 43, 45, 68, 109] {
            assert!(is_application_error(code), "{code}");
        }
    }
}
