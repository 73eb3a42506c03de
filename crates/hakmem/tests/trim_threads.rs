//! `hakmem::trim()` flushes other threads' caches too (issue 15), not only the calling
//! thread's: each thread gives its cache back at its next slow path after a `trim`.
//!
//! Its own test binary with a single test, so that nothing else allocates meanwhile.

use std::sync::mpsc;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

#[test]
fn trim_flushes_another_threads_cache() {
    let (to_main, from_worker) = mpsc::channel::<u64>();
    let (to_worker, from_main) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        // Fill this thread's bin of 64-byte blocks: allocate, then free them all (the
        // last frees stay in its cache). 1,000 blocks: under the four slabs' worth from
        // which lean mode takes a phase of frees for a shrinking class (whose bins then
        // give everything back by themselves).
        let blocks: Vec<Box<[u8; 64]>> = (0..1000).map(|i| Box::new([i as u8; 64])).collect();
        drop(blocks);
        to_main
            .send(hakmem_tiny_fast::thread_cached_blocks())
            .unwrap();
        from_main.recv().unwrap();
        // A slow path: the first block of a class this thread never used (its bin is
        // empty). It honours the flush request first, then refills that one bin.
        let big = vec![7u8; 60 << 10];
        let after = hakmem_tiny_fast::thread_cached_blocks();
        drop(big);
        to_main.send(after).unwrap();
    });
    let before = from_worker.recv().unwrap();
    assert!(before >= 32, "the worker cached {before} blocks");
    hakmem::trim();
    to_worker.send(()).unwrap();
    let after = from_worker.recv().unwrap();
    worker.join().unwrap();
    eprintln!("worker's cache: {before} blocks before the trim, {after} after its next slow path");
    // What is left is the one refill of the new class (a few 60 KiB blocks) and what
    // the channel's wake-up may have cached; an unflushed cache keeps its 64-byte bin
    // (over 200 blocks).
    assert!(
        after < 32,
        "the worker kept {after} of its {before} cached blocks after a trim"
    );
}
