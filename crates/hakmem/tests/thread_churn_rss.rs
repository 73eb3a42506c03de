//! Thousands of short-lived threads leave the RSS flat: each thread's cache, its block
//! arrays and its registry node are given back or reused at its exit.
//!
//! Its own test binary with a single test: the RSS it reads is the whole process's, and
//! the tests of `global_std.rs` running beside it (a channel test moving 30,000 buffers,
//! a fork) made it fail under load (+10 MiB between its two readings, 2 of 12 runs beside
//! two busy loops).

use std::thread;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn churn_threads(n: usize) {
    for _ in 0..n / 8 {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                thread::spawn(move || {
                    let mut keep = Vec::new();
                    for i in 0..200usize {
                        let v = vec![t as u8; 16 + (i * 37) % 3000];
                        if i % 3 == 0 {
                            keep.push(v);
                        }
                    }
                    keep // freed by the joining thread
                })
            })
            .collect();
        for h in hs {
            let keep = h.join().unwrap();
            assert!(keep.iter().all(|v| !v.is_empty()));
        }
    }
}

#[test]
fn thousands_of_short_lived_threads_leave_rss_flat() {
    churn_threads(400); // warm up
    let before = rss_kib();
    churn_threads(2400);
    let after = rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 2,400 short-lived threads"
    );
}
