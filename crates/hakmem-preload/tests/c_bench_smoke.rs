//! The C-ABI bench's workload programs (`bench/cbench.c`, `bench/larson.cpp`, run by
//! `cargo xtask cbench`) run once briefly under `libhakmem.so` and under glibc's malloc:
//! each must succeed and compute the same checksum under both (so a broken workload or a
//! miscomputing allocator shows here, not first in a benchmark table).

mod common;

use common::{compile, out_dir, run, src, tool};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// The value of `checksum=` in the program's result line.
fn checksum(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.starts_with("cbench "))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("checksum="))
        .map(str::to_string)
}

fn same_under_both(exe: &PathBuf, args: &[&str]) {
    let mut c = Command::new(exe);
    c.args(args);
    let g = run(c, false, T);
    assert!(g.ok(), "{}", g.describe(&format!("{args:?} under glibc")));
    let mut c = Command::new(exe);
    c.args(args);
    let h = run(c, true, T);
    assert!(h.ok(), "{}", h.describe(&format!("{args:?} under hakmem")));
    let (cg, ch) = (checksum(&g.stdout), checksum(&h.stdout));
    assert!(cg.is_some(), "{}", g.describe("no result line"));
    assert_eq!(
        cg, ch,
        "{args:?}: checksums differ\nglibc: {}hakmem: {}",
        g.stdout, h.stdout
    );
    println!("{}", h.stdout.trim());
}

#[test]
fn c_workloads_match_glibc() {
    let Some(exe) = compile("bench/cbench.c", "cbench", "c_workloads_match_glibc") else {
        return;
    };
    for args in [
        ["simple", "1", "200000", "7"],
        ["thread", "3", "300000", "7"],
        ["prodcons", "4", "200000", "7"],
        ["large", "3", "300", "7"],
    ] {
        same_under_both(&exe, &args);
    }
}

#[test]
fn larson_with_sized_delete_matches_glibc() {
    let cxx = match std::env::var("CXX") {
        Ok(c) if !c.is_empty() => PathBuf::from(c),
        _ => match tool("g++", "larson_with_sized_delete_matches_glibc") {
            Some(p) => p,
            None => return,
        },
    };
    let exe = out_dir().join("larson");
    let r = Command::new(&cxx)
        .args(["-O2", "-g", "-Wall", "-Wextra", "-pthread", "-o"])
        .arg(&exe)
        .arg(src("bench/larson.cpp"))
        .output()
        .expect("cannot run the C++ compiler");
    assert!(
        r.status.success(),
        "larson.cpp: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    same_under_both(&exe, &["larson", "3", "150000", "7"]);
}

/// The peak RSS a workload program prints is its own: `ru_maxrss` of a process started
/// by `posix_spawn`, `vfork` or `fork` holds its parent's peak at the spawn, and
/// `cargo xtask cbench` reported its own 3.12 MiB for every contender of `thread` and
/// `prodcons` (results/235). Here the parent holds 192 MiB, every page written; the
/// child's `thread` run needs a few MiB, under glibc and under hakmem.
#[test]
fn peak_rss_is_the_programs_own() {
    let Some(exe) = compile(
        "bench/cbench.c",
        "cbench-rss",
        "peak_rss_is_the_programs_own",
    ) else {
        return;
    };
    const HELD: usize = 192 << 20;
    let mut held = vec![0u8; HELD];
    for i in (0..HELD).step_by(4096) {
        held[i] = i as u8;
    }
    std::hint::black_box(&held);
    for preload in [false, true] {
        let mut c = Command::new(&exe);
        c.args(["thread", "2", "20000", "7"]);
        let r = run(c, preload, T);
        assert!(r.ok(), "{}", r.describe("cbench thread"));
        let kib: u64 = r
            .stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("peak_rss_kib="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no peak_rss_kib in {}", r.stdout));
        assert!(
            kib > 0 && kib < 64 << 10,
            "preload {preload}: the program reported a peak RSS of {kib} KiB, its parent's 192 MiB"
        );
    }
    drop(held);
}
