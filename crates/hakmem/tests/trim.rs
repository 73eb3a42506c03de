//! `hakmem::trim()` returns a freed working set to the OS (its own test binary, with
//! hakmem as the global allocator and a single test, so no other test allocates
//! meanwhile).

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// Allocate about `total` bytes in mixed blocks (tiny, mid and large), touch them all,
/// and return them with their layouts.
fn working_set(total: usize, seed: u64) -> Vec<(*mut u8, Layout)> {
    let mut rng = seed;
    let mut blocks = Vec::with_capacity(1 << 18);
    let mut bytes = 0;
    while bytes < total {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let size = match rng % 100 {
            0 => (256 << 10) + (rng >> 16) as usize % (2 << 20),
            1..=10 => 1025 + (rng >> 16) as usize % (127 << 10),
            _ => 16 + (rng >> 16) as usize % 1009,
        };
        let align = if rng.is_multiple_of(7) { 64 } else { 8 };
        let l = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a non-zero layout; freed by `free_all` with the same layout.
        let p = unsafe { GLOBAL.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: the block holds `size` bytes.
        unsafe { p.write_bytes(0x5C, size) };
        blocks.push((p, l));
        bytes += size;
    }
    blocks
}

fn free_all(blocks: Vec<(*mut u8, Layout)>) {
    for (p, l) in blocks {
        // SAFETY: each block is live and freed once, with its layout.
        unsafe { GLOBAL.dealloc(p, l) };
    }
}

#[test]
fn trim_returns_a_freed_working_set() {
    let base = hakmem::stats();
    let blocks = working_set(96 << 20, 0x2545_F491_4F6C_DD1D);
    let held = hakmem::stats();
    assert!(
        held.mapped_bytes >= base.mapped_bytes + (64 << 20),
        "{base:?} -> {held:?}"
    );
    free_all(blocks);
    // Free a second, smaller set too, so that caches hold regions when trim runs.
    free_all(working_set(24 << 20, 0x9E37_79B9_7F4A_7C15));
    let freed = hakmem::stats();
    let unmapped = hakmem::trim();
    let after = hakmem::stats();
    eprintln!(
        "thread-cached: base {} KiB, freed {} KiB, after trim {} KiB; mapped: base {} MiB, held {} MiB, freed {} MiB, after trim {} MiB (trim reported {} MiB)",
        base.thread_cached_bytes >> 10,
        freed.thread_cached_bytes >> 10,
        after.thread_cached_bytes >> 10,
        base.mapped_bytes >> 20,
        held.mapped_bytes >> 20,
        freed.mapped_bytes >> 20,
        after.mapped_bytes >> 20,
        unmapped >> 20
    );
    assert_eq!(after.superslabs_cached, 0, "{after:?}");
    assert_eq!(after.large_cached_bytes, 0, "{after:?}");
    // The calling thread's caches are flushed; other threads' (the harness's) are not.
    assert!(
        after.thread_cached_bytes <= base.thread_cached_bytes.max(freed.thread_cached_bytes),
        "{base:?} -> {after:?}"
    );
    // Everything the working set needed beyond the start-up footprint is gone, give or
    // take a few superslabs that stay live (spares, blocks of the test harness).
    let grown = held.mapped_bytes - base.mapped_bytes;
    assert!(
        after.mapped_bytes <= base.mapped_bytes + grown / 8,
        "{base:?} -> {held:?} -> {after:?}"
    );
    assert!(
        after.mapped_bytes <= freed.mapped_bytes,
        "{freed:?} -> {after:?}"
    );
    assert!(
        unmapped as u64 <= held.mapped_bytes - after.mapped_bytes,
        "trim reported {unmapped} bytes"
    );
    // The allocator still works after a trim, and a second trim finds little to do.
    free_all(working_set(8 << 20, 7));
    hakmem::trim();
    let again = hakmem::stats();
    assert_eq!(again.superslabs_cached, 0);
    assert_eq!(again.large_cached_bytes, 0);
    assert!(
        again.mapped_bytes <= base.mapped_bytes + grown / 8,
        "{again:?}"
    );
}
