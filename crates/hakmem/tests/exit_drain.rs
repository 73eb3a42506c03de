//! A thread's cached blocks go back to their slabs when it exits, not to the transfer
//! cache: a dead thread's blocks are nobody's working set, and in the transfer cache
//! each one kept its slab in use (and the transfer cache's pages resident), so that the
//! slab could neither serve another class nor go back (results/235: `cbench thread` peak
//! RSS 2.92-3.05 -> 2.80-2.82 MiB, mimalloc 2.73-2.87; Rust `churn` 4.4 -> 3.9 MiB).
//!
//! Its own test binary with a single test: the class counters it reads are the whole
//! process's.

use std::thread;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// An odd size (a 3 KiB class) that nothing else in this process allocates.
const SIZE: usize = 3000;

fn class_of(size: usize) -> hakmem::ClassStats {
    let mut all = [hakmem::ClassStats::default(); hakmem::NCLASS];
    hakmem::class_stats(&mut all);
    *all.iter()
        .find(|c| c.block_size >= size)
        .expect("a class for the size")
}

#[test]
fn an_exiting_thread_gives_its_blocks_back_to_their_slabs() {
    let before = class_of(SIZE);
    thread::spawn(move || {
        // Fewer blocks than the bin holds: they stay in the thread's cache until it exits.
        let blocks: Vec<Vec<u8>> = (0..6).map(|i| vec![i as u8; SIZE]).collect();
        let during = class_of(SIZE);
        assert!(during.in_use_blocks >= before.in_use_blocks + 6);
        assert!(
            during.slabs > before.slabs,
            "the blocks took a slab of their own"
        );
        drop(blocks);
        assert!(
            class_of(SIZE).thread_cached_blocks >= 6,
            "the bin holds the blocks"
        );
    })
    .join()
    .unwrap();
    let after = class_of(SIZE);
    assert_eq!(after.thread_cached_blocks, before.thread_cached_blocks);
    assert_eq!(after.in_use_blocks, before.in_use_blocks);
    assert_eq!(
        after.slabs, before.slabs,
        "the exited thread's blocks still keep a slab in use ({after:?}, before {before:?})"
    );
}
