//! `hakmem::stats()` follows what the program holds (its own test binary, so that no
//! other test allocates meanwhile).

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

#[test]
fn stats_track_live_bytes() {
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
