//! The figures users of jemalloc-ctl look for in `hakmem::stats()` and
//! `hakmem::class_stats()` (its own test binary, with a single test, so that no other
//! test allocates meanwhile).

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// The figures users of jemalloc-ctl look for: peaks that stay after the frees, per-class
/// blocks in use, cached and slabs, the allocator's own overhead; and the printer.
#[test]
fn peaks_classes_and_overhead() {
    let cls = {
        let c112 = hakmem::route(100, 8);
        match c112 {
            hakmem::Route::Tiny(c) | hakmem::Route::Mid(c) => c,
            hakmem::Route::Large => unreachable!(),
        }
    };
    let v: Vec<Box<[u8; 100]>> = (0..20_000).map(|_| Box::new([1u8; 100])).collect();
    let big = vec![7u8; 8 << 20];
    let during = hakmem::stats();
    let mut classes = [hakmem::ClassStats::default(); hakmem::NCLASS];
    hakmem::class_stats(&mut classes);
    let c = classes[cls];
    assert_eq!((c.class, c.block_size), (cls, 112));
    assert!(c.in_use_blocks >= 20_000, "{c:?}");
    assert!(c.slabs >= 20_000 * 112 / (1 << 20) as u64, "{c:?}");
    assert!(during.metadata_bytes > 0 && during.metadata_bytes < during.resident_bytes);
    assert!(during.peak_superslabs_live >= during.superslabs_live && during.superslabs_live > 0);
    drop(v);
    drop(big);
    hakmem::thread_flush();
    let after = hakmem::stats();
    // Peaks stay.
    assert!(after.peak_large_live_bytes >= 8 << 20, "{after:?}");
    // VmHWM is the kernel's high-water mark, kept lazily (it may miss a peak between two
    // updates), but never below the resident size it reads at the same time.
    assert!(
        after.peak_resident_bytes + (1 << 20) >= after.resident_bytes
            && after.peak_resident_bytes > 0,
        "{after:?}"
    );
    assert!(
        after.peak_allocated_bytes_bound >= during.allocated_bytes,
        "{during:?} {after:?}"
    );
    hakmem::class_stats(&mut classes);
    assert!(classes[cls].in_use_blocks < 1_000, "{:?}", classes[cls]);
    // Display names every figure; print_stats writes them (and the classes) through the
    // stack-buffer printer.
    let text = format!("{after}");
    for word in [
        "allocated",
        "resident",
        "peak",
        "metadata",
        "superslabs",
        "mmap",
    ] {
        assert!(text.contains(word), "{text}");
    }
    hakmem::print_stats();
}
