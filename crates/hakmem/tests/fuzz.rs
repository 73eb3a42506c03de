//! A short run of the differential fuzzer (`hakmem-fuzz`, see its crate doc and
//! `docs/fuzz.md`) against `hakmem::raw` and `GlobalAlloc`, in whatever preset and
//! features this test is built with (CI runs it in each). The fuzzer's own bookkeeping
//! allocates through hakmem too (the global allocator here).
//!
//! `HAKMEM_FUZZ_SECS` (default 2 per target) and `HAKMEM_FUZZ_SEED` (default: fixed)
//! change the run; a failure prints its seed and how to reproduce it. Longer runs:
//! `cargo xtask fuzz --secs N`.

// The engine's sources, compiled in here (hakmem cannot depend on the hakmem-fuzz
// package, which depends on it); some of their items only the binary uses.
#[allow(dead_code)]
#[path = "../../hakmem-fuzz/src/lib.rs"]
mod hakmem_fuzz;

use hakmem_fuzz::targets::{Global, Raw, Target};
use hakmem_fuzz::{Params, Summary, run};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn params(threads: usize) -> Params {
    let env = |k: &str| std::env::var(k).ok();
    Params {
        seed: env("HAKMEM_FUZZ_SEED").map_or(0x5EED_F022, |s| s.parse().expect("HAKMEM_FUZZ_SEED")),
        threads,
        secs: env("HAKMEM_FUZZ_SECS").map_or(2.0, |s| s.parse().expect("HAKMEM_FUZZ_SECS")),
        budget: 192 << 20,
        ..Params::default()
    }
}

fn fuzz<T: Target>(t: &T, p: &Params) -> Summary {
    match run(t, p) {
        Ok(s) => {
            eprintln!("{}: {}", t.name(), s.line());
            assert!(s.ops > 0 && s.allocs > 0 && s.frees == s.allocs);
            s
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn raw_four_threads() {
    let s = fuzz(&Raw, &params(4));
    assert!(s.workers >= 4 && s.reallocs > 0);
}

#[test]
fn global_four_threads() {
    let s = fuzz(&Global, &params(4));
    assert!(s.workers >= 4 && s.reallocs > 0);
}

/// With one thread and an op budget, a run is a pure function of its seed: the same
/// program (the allocator may place blocks differently, so `moved` may differ).
#[test]
fn one_thread_is_deterministic() {
    let p = Params {
        max_ops: 20_000,
        secs: f64::INFINITY,
        ..params(1)
    };
    let a = fuzz(&Raw, &p);
    let b = fuzz(&Raw, &p);
    let key = |s: &Summary| {
        (
            s.ops, s.allocs, s.frees, s.reallocs, s.handed, s.workers, s.chains, s.refusals,
        )
    };
    assert_eq!(key(&a), key(&b));
    assert_eq!(a.ops, 20_000);
}

/// Test the test: a flipped byte in a live block is reported, with the seed.
#[test]
fn a_corrupted_block_is_caught() {
    let p = Params {
        inject_corruption: true,
        print_failure: false,
        max_ops: 200_000,
        secs: f64::INFINITY,
        ..params(1)
    };
    let e = run(&Raw, &p).expect_err("the corruption went unnoticed");
    assert!(e.contains("contents differ") && e.contains("seed"), "{e}");
}
