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
