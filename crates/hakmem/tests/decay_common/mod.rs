//! Shared by the decay tests that run without the test harness (`idle_slabs`,
//! `phase_end`, `pool_reuse`, `quiet_classes`): the resident set, and the gate check
//! that skips a preset where nothing stays idle to decay.

use std::time::Duration;

/// The process's resident set in KiB (`/proc/self/statm`).
pub fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// The process's resident set in MiB (`/proc/self/statm`).
pub fn rss_mib() -> usize {
    rss_kib() >> 10
}

/// The decay interval (`HAKMEM_SS_DECAY_MS`), or `None` after printing `<test>: SKIPPED`
/// where the test has nothing to measure: no decay, an interval too long for a test, or
/// lean mode with decommit on (an empty slab's pages go back at once, but for a churning
/// class's spares: nothing stays idle).
pub fn decay_or_skip(test: &str) -> Option<Duration> {
    let gates = hakmem_env_gates::gates();
    if gates.ss_decay_ms == 0
        || gates.ss_decay_ms > 2000
        || gates.decommit_effective() != hakmem_env_gates::Decommit::Off
    {
        println!(
            "{test}: SKIPPED (HAKMEM_SS_DECAY_MS={}, decommit {:?})",
            gates.ss_decay_ms,
            gates.decommit_effective()
        );
        return None;
    }
    Some(Duration::from_millis(u64::from(gates.ss_decay_ms)))
}
