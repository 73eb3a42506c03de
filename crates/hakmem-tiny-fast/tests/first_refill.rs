//! A bin's first refill on a thread asks for a page of blocks at most
//! (`FIRST_REFILL_BYTES`), the next one for a full batch (`refill_batch`), so a thread
//! that uses a class a little carves, and makes resident, a page of it, not four.
//! (One test in its own process: blocks other tests leave in the transfer cache would
//! come with a refill, up to the bin's bound. Each class's blocks are counted in its own
//! bin: a class whose blocks all sit in the bin gives them back when the pool grows for
//! the next class, results/225.)

use hakmem_ss_allocation::bins::refill_batch;
use hakmem_ss_allocation::class::NCLASS;
use hakmem_ss_allocation::class::{block_size, class_for};
use hakmem_tiny_fast::{FIRST_REFILL_BYTES, bin_limit, cache_alloc, cache_free, cached_by_class};

/// Blocks of class `cls` in the thread caches (this test's thread's alone: no other
/// thread of the process allocates through them).
fn cached_of(cls: usize) -> u64 {
    let mut by = [0u64; NCLASS];
    cached_by_class(&mut by);
    by[cls]
}

#[test]
fn the_first_refill_of_a_bin_takes_a_page() {
    std::thread::spawn(|| {
        for size in [16, 128, 512, 1024, 2048, 4096, 16384, 65536] {
            let cls = class_for(size, 1).unwrap();
            let bs = block_size(cls);
            let before = cached_of(cls);
            let p = cache_alloc(cls);
            assert!(!p.is_null());
            let full = refill_batch(cls, bin_limit(cls));
            let first = (FIRST_REFILL_BYTES / bs).clamp(1, full);
            let cached = |what: &str| {
                let n = cached_of(cls) - before;
                println!("class {cls} ({bs} B) {what}: {n} cached");
                n as usize
            };
            assert_eq!(
                cached("first refill"),
                first - 1,
                "class {cls}: first refill"
            );
            let mut held = vec![p];
            for _ in 0..first - 1 {
                held.push(cache_alloc(cls));
            }
            assert_eq!(cached("emptied"), 0);
            held.push(cache_alloc(cls));
            assert_eq!(
                cached("second refill"),
                full - 1,
                "class {cls}: second refill"
            );
            for q in held {
                // SAFETY: from cache_alloc(cls), freed once.
                unsafe { cache_free(q, cls) };
            }
        }
    })
    .join()
    .unwrap();
}
