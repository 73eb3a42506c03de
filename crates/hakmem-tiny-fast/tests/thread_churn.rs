//! A thread's block arrays are mapped once and passed on to later threads: a churn of
//! threads, one after the other, maps none after the first, and each new thread's bins
//! start empty. (Its own test binary: the count of mappings is process-wide, and tests
//! running beside it would map their own.)

use hakmem_ss_allocation::class::class_of;
use hakmem_tiny_fast::{cache_alloc, cache_free, thread_cached_blocks};

fn run() {
    std::thread::spawn(|| {
        assert_eq!(
            thread_cached_blocks(),
            0,
            "a new thread starts with empty bins"
        );
        let cls = class_of(48);
        let v: Vec<*mut u8> = (0..300).map(|_| cache_alloc(cls)).collect();
        assert!(v.iter().all(|p| !p.is_null()));
        for p in v {
            // SAFETY: from cache_alloc(cls).
            unsafe { cache_free(p, cls) };
        }
        assert!(thread_cached_blocks() > 0);
    })
    .join()
    .unwrap()
}

#[test]
fn exited_threads_block_arrays_go_to_the_next_threads() {
    run();
    let mapped = || hakmem_os_stats::stats::snapshot().mmap;
    let before = mapped();
    for _ in 0..20 {
        run();
    }
    assert_eq!(
        mapped() - before,
        0,
        "mappings for 20 threads in a row, each after the last exited"
    );
}
