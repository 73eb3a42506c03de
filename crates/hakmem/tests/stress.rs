//! Multi-threaded stress with hakmem as the global allocator: the one stress test of the
//! project, `hakmem_bench::stress` (`benches/src/stress.rs`), compiled into this test with
//! `#[path]` (the bench crate depends on hakmem, so hakmem cannot depend on it back);
//! `cargo xtask stress` runs the same code for minutes in every preset.
//!
//! Workers allocate blocks of every size range (tiny, mid, large, now and then 16 MiB),
//! with alignments up to 4 KiB and some zeroed, fill each with a pattern, and free, realloc
//! or hand batches of them to other threads; each block is checked whole on every hop
//! between threads, across realloc and before it is freed. Workers live for a few thousand
//! ops and exit, half of them handing their blocks over (freed by threads that did not
//! allocate them, after their owner is gone), and new ones take their place.
//!
//! `HAKMEM_STRESS_OPS` (default 400,000 in all, as many as the four threads of the earlier test made rounds) scales it. A corrupted block ends the
//! process with a report and exit code 1.

use std::sync::atomic::Ordering::Relaxed;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

#[path = "../../../benches/src/rng.rs"]
mod rng;
#[path = "../../../benches/src/stress.rs"]
mod stress;

use stress::{StressParams, run_stress};

#[test]
fn threads_hand_blocks_over_and_come_and_go_in_every_size_range() {
    let ops: u64 = std::env::var("HAKMEM_STRESS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let p = StressParams {
        // A safety net: the run ends when the ops are done.
        secs: 600.0,
        max_ops: ops,
        threads: 4,
        slots: 128,
        life: (1_000, 6_000),
        report_secs: 0.0,
        ..StressParams::default()
    };
    let t = run_stress(&p);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    let (allocs, frees) = (load(&t.allocs), load(&t.frees));
    assert_eq!(allocs, frees, "every block freed once");
    assert!(load(&t.ops) >= ops, "ran its ops: {}", load(&t.ops));
    // Cross-thread hops, thread churn, and every size range were exercised.
    assert!(load(&t.handed) > 100, "handed over: {}", load(&t.handed));
    let started = load(&t.threads);
    assert!(
        started >= 3 * p.threads as u64,
        "threads started: {started}"
    );
    let [tiny, mid, large] = t.by_range.each_ref().map(load);
    assert!(
        tiny > mid && mid > large && large > 0,
        "tiny {tiny}, mid {mid}, large {large}"
    );
    assert!(load(&t.reallocs) > 0 && load(&t.bytes_checked) > 0);
}
