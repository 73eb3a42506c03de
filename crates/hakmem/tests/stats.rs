//! `hakmem::stats()` follows what the program holds (its own test binary, so that no
//! other test allocates meanwhile).

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// The tests of this binary compare counters before and after their own blocks: one at
/// a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn stats_track_live_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = hakmem::stats();
    let v: Vec<Box<[u8; 100]>> = (0..20_000).map(|_| Box::new([1u8; 100])).collect();
    let big = vec![7u8; 3 << 20];
    let mid = hakmem::stats();
    assert!(
        mid.allocated_bytes >= before.allocated_bytes + 2_000_000,
        "{before:?} -> {mid:?}"
    );
    assert!(mid.large_live_bytes >= 3 << 20);
    assert!(mid.resident_bytes > 4 << 20);
    drop(v);
    drop(big);
    hakmem::thread_flush();
    let after = hakmem::stats();
    assert!(
        after.allocated_bytes + 2_000_000 <= mid.allocated_bytes + 100_000,
        "{mid:?} -> {after:?}"
    );
}

/// `hakmem::heap_info()` (what the C ABI's `mallinfo2` reports) agrees with the program's
/// blocks and with `stats()`.
#[test]
fn heap_info_follows_the_blocks() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = hakmem::heap_info();
    let v: Vec<Box<[u8; 200]>> = (0..10_000).map(|_| Box::new([2u8; 200])).collect();
    let big = vec![9u8; 5 << 20];
    let mid = hakmem::heap_info();
    assert!(
        mid.slab_in_use_bytes >= before.slab_in_use_bytes + 10_000 * 200,
        "{before:?} -> {mid:?}"
    );
    assert!(
        mid.large_blocks >= 1 && mid.large_bytes >= 5 << 20,
        "{mid:?}"
    );
    let s = hakmem::stats();
    assert_eq!(s.large_live_bytes >= 5 << 20, mid.large_bytes >= 5 << 20);
    drop(v);
    drop(big);
    let after = hakmem::heap_info();
    assert!(
        after.slab_in_use_bytes + 10_000 * 200 <= mid.slab_in_use_bytes + 200_000,
        "{mid:?} -> {after:?}"
    );
    // The freed blocks are free: in this thread's cache or back in their slabs.
    assert!(
        after.thread_cached_bytes + after.central_free_bytes
            >= mid.thread_cached_bytes + mid.central_free_bytes,
        "{mid:?} -> {after:?}"
    );
}
