//! The fuzzer's `c` target: the binary `hakmem-fuzz --target c` run under
//! `LD_PRELOAD=libhakmem.so` (the release build that hakmem-preload's tests use), so
//! that the real `malloc`, `calloc`, `realloc`, `free`, `posix_memalign`,
//! `aligned_alloc`, `memalign`, `valloc`, `malloc_usable_size` are hakmem's; and once
//! against glibc, to test the test.
//!
//! `HAKMEM_FUZZ_SECS` (default 3) and `HAKMEM_FUZZ_SEED` (default: fixed) change the run.
//! Every preset: `cargo xtask fuzz --target c`.

#[path = "../../hakmem-preload/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

fn fuzz(threads: usize, secs: f64) -> Command {
    let seed = std::env::var("HAKMEM_FUZZ_SEED").unwrap_or_else(|_| "3735928559".into());
    let mut c = Command::new(env!("CARGO_BIN_EXE_hakmem-fuzz"));
    c.args(["--target", "c", "--quiet", "--seed", &seed, "--threads"])
        .arg(threads.to_string())
        .arg("--secs")
        .arg(secs.to_string());
    c
}

fn secs() -> f64 {
    std::env::var("HAKMEM_FUZZ_SECS").map_or(3.0, |s| s.parse().expect("HAKMEM_FUZZ_SECS"))
}

#[test]
fn c_api_under_ld_preload() {
    let s = secs();
    let mut c = fuzz(4, s);
    c.arg("--require-hakmem");
    let r = common::run(c, true, Duration::from_secs_f64(s + 120.0));
    assert!(
        r.ok(),
        "{}",
        r.describe("hakmem-fuzz --target c (LD_PRELOAD)")
    );
    assert!(r.stderr.contains("libhakmem"), "{}", r.stderr);
    assert!(r.stdout.contains("FUZZ ok target=c"), "{}", r.stdout);
}

#[test]
fn c_api_of_glibc_passes_too() {
    let r = common::run(fuzz(2, 1.0), false, Duration::from_secs(120));
    assert!(r.ok(), "{}", r.describe("hakmem-fuzz --target c (glibc)"));
}

#[test]
fn require_hakmem_refuses_glibc() {
    let mut c = fuzz(1, 0.1);
    c.arg("--require-hakmem");
    let r = common::run(c, false, Duration::from_secs(60));
    assert_eq!(
        r.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        r.describe("hakmem-fuzz")
    );
}
