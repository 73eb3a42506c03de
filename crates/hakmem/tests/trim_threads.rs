//! `hakmem::trim()` flushes other threads' caches too (issue 15), not only the calling
//! thread's: each thread gives its cache back at its next slow path after a `trim`.
//!
//! Its own test binary with a single test, so that nothing else allocates meanwhile. The
//! two threads hand-shake through atomics, not channels: a channel's `send` and `recv`
//! allocate, and a slow path of the worker's inside them, after the `trim`, would honour
//! the request there and then refill the bin of what they allocate (a flaky count of
//! 128 or 255 blocks "after", seen in CI).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::*};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// Where the hand-shake is: 0 start, 1 the worker measured, 2 trimmed, 3 worker done.
static STEP: AtomicU8 = AtomicU8::new(0);
static BEFORE: AtomicU64 = AtomicU64::new(0);
static AFTER: AtomicU64 = AtomicU64::new(0);

/// Wait (without allocating) until `STEP` reaches `s`.
fn wait_for(s: u8) {
    while STEP.load(Acquire) < s {
        std::thread::yield_now();
    }
}

#[test]
fn trim_flushes_another_threads_cache() {
    let worker = std::thread::spawn(|| {
        // Fill this thread's bin of 64-byte blocks: allocate, then free them all (the
        // last frees stay in its cache). 1,000 blocks: under the four slabs' worth from
        // which lean mode takes a phase of frees for a shrinking class (whose bins then
        // give everything back by themselves).
        let blocks: Vec<Box<[u8; 64]>> = (0..1000).map(|i| Box::new([i as u8; 64])).collect();
        drop(blocks);
        BEFORE.store(hakmem_tiny_fast::thread_cached_blocks(), Relaxed);
        STEP.store(1, Release);
        wait_for(2);
        // A slow path: the first block of a class this thread never used (its bin is
        // empty). It honours the flush request first, then refills that one bin.
        let big = vec![7u8; 60 << 10];
        AFTER.store(hakmem_tiny_fast::thread_cached_blocks(), Relaxed);
        drop(big);
        STEP.store(3, Release);
    });
    wait_for(1);
    let before = BEFORE.load(Relaxed);
    assert!(before >= 32, "the worker cached {before} blocks");
    hakmem::trim();
    STEP.store(2, Release);
    wait_for(3);
    let after = AFTER.load(Relaxed);
    worker.join().unwrap();
    eprintln!("worker's cache: {before} blocks before the trim, {after} after its next slow path");
    // What is left is the one refill of the new class (a few 60 KiB blocks); an
    // unflushed cache keeps its 64-byte bin (over 200 blocks).
    assert!(
        after < 32,
        "the worker kept {after} of its {before} cached blocks after a trim"
    );
}
