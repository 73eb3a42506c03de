//! Smoke test: every workload, with tiny parameters, in-process on the system allocator.
//! Checks the op counts, that every block allocated was freed and the realistic workloads'
//! checksums; nothing is timed. (`hakmem.rs` runs the new workloads under hakmem.)

mod common;

use common::{CHECKSUMS, tiny};
use hakmem_bench::measure::no_probe;
use hakmem_bench::{Kind, WORKLOADS, run};

#[test]
fn every_workload_counts_its_ops_and_frees_every_block() {
    for w in WORKLOADS {
        let p = tiny(w.name);
        let o = run(&p, no_probe);
        assert_eq!(o.ops, p.expected_ops(), "{}: ops", w.name);
        assert!(!o.capped, "{}: capped", w.name);
        assert_eq!(
            o.live(),
            0,
            "{}: {} allocs, {} frees",
            w.name,
            o.allocs,
            o.frees
        );
        if w.kind.is_realistic() {
            let want = CHECKSUMS
                .iter()
                .find(|c| c.0 == w.name)
                .expect("a checksum")
                .1;
            assert_eq!(o.checksum, Some(want), "{}: checksum", w.name);
        } else {
            assert!(o.allocs > 0, "{}: nothing allocated", w.name);
            assert_eq!(o.checksum, None, "{}", w.name);
        }
        if w.kind == Kind::Burst {
            let (free, idle) = (o.rss_after_free_kib, o.rss_after_idle_kib);
            assert!(
                free.is_some_and(|k| k > 0) && idle.is_some_and(|k| k > 0),
                "{}",
                w.name
            );
        }
        assert!(
            o.elapsed.secs >= 0.0 && o.elapsed.probe_delta == 0,
            "{}",
            w.name
        );
        if w.kind == Kind::Realloc {
            assert!(o.reallocs > 0, "realloc: no realloc");
        }
        if w.kind == Kind::Churn {
            assert_eq!(o.threads_started, 8);
        }
    }
}

#[test]
fn runs_are_deterministic() {
    for name in [
        "mixed", "realloc", "large", "json", "text", "btree", "arena",
    ] {
        let p = tiny(name);
        let a = run(&p, no_probe);
        let b = run(&p, no_probe);
        assert_eq!(
            (a.allocs, a.frees, a.reallocs, a.checksum),
            (b.allocs, b.frees, b.reallocs, b.checksum),
            "{name}"
        );
    }
}

#[test]
fn odd_op_counts_and_one_thread() {
    for name in ["xfree", "larson", "mt", "churn", "prodcons", "large-mt"] {
        let mut p = tiny(name);
        p.ops = 1_001;
        p.threads = 1;
        let o = run(&p, no_probe);
        assert_eq!(o.ops, p.expected_ops(), "{name}");
        assert_eq!(o.live(), 0, "{name}");
    }
}

#[test]
fn a_time_cap_stops_early_and_still_frees_everything() {
    for w in WORKLOADS {
        let mut p = tiny(w.name);
        p.ops *= 1000;
        p.max_secs = Some(0.0);
        let o = run(&p, no_probe);
        assert!(o.capped, "{}: not capped ({} ops)", w.name, o.ops);
        assert!(o.ops < p.expected_ops(), "{}", w.name);
        assert_eq!(o.live(), 0, "{}", w.name);
    }
}

#[test]
fn the_binary_prints_a_result_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hakmem-bench"))
        .args(["mixed-32k", "--ops", "5000", "--seed", "7"])
        .output()
        .expect("run hakmem-bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with(hakmem_bench::report::PREFIX))
        .expect("a RESULT line");
    for key in [
        "\"workload\":\"mixed-32k\"",
        "\"alloc\":\"system\"",
        "\"ops\":5000,",
        "\"live\":0,",
        "\"capped\":false",
        "\"seed\":7",
        "\"syscalls\":null",
        "\"minor_faults\":",
        "\"checksum\":null",
        "\"rss_after_free_kib\":null",
    ] {
        assert!(line.contains(key), "{key} missing from {line}");
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_hakmem-bench"))
        .args(["nope"])
        .output()
        .expect("run hakmem-bench");
    assert_eq!(bad.status.code(), Some(2));
}

/// The peak RSS a bench binary reports is its own, not its parent's: a process started by
/// `posix_spawn` or `vfork` (as `Command` starts it) inherits in `ru_maxrss` the peak of
/// the parent's memory at the spawn, so a small workload started by a big `cargo xtask`
/// reported the parent's figure. Here the parent holds 192 MiB (every page written) and
/// the child's `mixed` of 5,000 ops needs a few MiB.
#[test]
fn peak_rss_is_the_programs_own() {
    const HELD: usize = 192 << 20;
    let mut held = vec![0u8; HELD];
    for i in (0..HELD).step_by(4096) {
        held[i] = i as u8;
    }
    std::hint::black_box(&held);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hakmem-bench"))
        .args(["mixed", "--ops", "5000", "--seed", "7"])
        .output()
        .expect("run hakmem-bench");
    drop(held);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with(hakmem_bench::report::PREFIX))
        .expect("a RESULT line");
    let kib: u64 = line
        .split("\"peak_rss_kib\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss_kib in {line}"));
    assert!(
        kib > 0 && kib < 64 << 10,
        "the child reported a peak RSS of {kib} KiB: its parent's 192 MiB, not its own ({line})"
    );
}
