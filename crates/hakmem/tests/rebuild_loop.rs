//! A program that rebuilds its working set round after round (issue 17): about 60 MB of
//! fixed-size and mixed tiny, mid and large blocks plus strings grown by doubling to 3-5
//! MiB, the same every round,
//! all freed at the end of each round and built again in the next. Empty memory that
//! was in use a moment ago is kept for the decay interval (`HAKMEM_SS_DECAY_MS`,
//! `HAKMEM_LARGE_DECAY_MS`), so after the first round BALANCED makes no `munmap` and
//! (almost) no `mmap`, and its minor page faults (`getrusage`) stay near zero. LEAN
//! decommits what it caches (it trades faults for resident memory): its figures are
//! printed, not judged.
//!
//! Its own test binary with a single test, so that nothing else allocates meanwhile.
//! `REBUILD_TRACE=1` prints the counters after each round (with `--nocapture`).

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn minor_faults() -> u64 {
    // SAFETY: `ru` is a valid out-parameter.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_minflt as u64
    }
}

/// One round: build ~60 MB of mixed and fixed-size blocks and a few doubling vectors, touch them, free
/// them all.
fn round(seed: u64, blocks: &mut Vec<(*mut u8, Layout)>) {
    let mut rng = seed;
    let mut bytes = 0;
    while bytes < 20 << 20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let size = match rng % 200 {
            0 => (256 << 10) + (rng >> 16) as usize % (2 << 20),
            1..=20 => 1025 + (rng >> 16) as usize % (63 << 10),
            _ => 16 + (rng >> 16) as usize % 1009,
        };
        let l = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a non-zero layout; freed below with the same layout.
        let p = unsafe { GLOBAL.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: the block holds `size` bytes.
        unsafe { p.write_bytes(0x5C, size) };
        blocks.push((p, l));
        bytes += size;
    }
    // Records of a few fixed sizes, many superslabs of each class: 16 MB of 64-byte
    // and of 4 KiB blocks, 8 MB of 16 KiB blocks (about a dozen superslabs, all empty
    // at the end of the round).
    for (size, total) in [
        (64usize, 16usize << 20),
        (4096, 16 << 20),
        (16 << 10, 8 << 20),
    ] {
        let l = Layout::from_size_align(size, 8).unwrap();
        for _ in 0..total / size {
            // SAFETY: a non-zero layout; freed below with the same layout.
            let p = unsafe { GLOBAL.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: the block holds `size` bytes.
            unsafe { p.write_bytes(0x3A, size) };
            blocks.push((p, l));
        }
    }
    // Serialized documents: strings grown by doubling to a few MiB.
    let mut docs = Vec::new();
    for k in 0..3 {
        let mut s = String::new();
        while s.len() < (3 << 20) + (k << 20) {
            s.push_str("{\"id\":12345,\"name\":\"record\",\"tags\":[1,2,3]},");
        }
        docs.push(s);
    }
    for (p, l) in blocks.drain(..) {
        // SAFETY: each block is live and freed once, with its layout.
        unsafe { GLOBAL.dealloc(p, l) };
    }
    drop(docs);
}

#[test]
fn a_rebuilt_working_set_reuses_its_memory() {
    let mut blocks = Vec::with_capacity(1 << 20);
    round(0x2545_F491_4F6C_DD1D, &mut blocks);
    let (s0, f0) = (hakmem::stats(), minor_faults());
    const ROUNDS: u64 = 10;
    for r in 1..=ROUNDS {
        round(0x2545_F491_4F6C_DD1D, &mut blocks);
        if std::env::var_os("REBUILD_TRACE").is_some() {
            let s = hakmem::stats();
            eprintln!(
                "round {r} done: {} faults so far, {} mmap, {} munmap; superslabs {} live, {} cached",
                minor_faults() - f0,
                s.mmap - s0.mmap,
                s.munmap - s0.munmap,
                s.superslabs_live,
                s.superslabs_cached
            );
        }
    }
    let (s1, f1) = (hakmem::stats(), minor_faults());
    let (mmap, munmap, madvise, faults) = (
        s1.mmap - s0.mmap,
        s1.munmap - s0.munmap,
        s1.madvise_calls - s0.madvise_calls,
        f1 - f0,
    );
    eprintln!(
        "preset {:?}: rounds 2..={}: {mmap} mmap, {munmap} munmap, {madvise} madvise, \
         {} mremap, {faults} minor faults ({} per round); superslabs cached {}, large \
         cached {} MiB",
        hakmem::PRESET,
        ROUNDS + 1,
        s1.mremap - s0.mremap,
        faults / ROUNDS,
        s1.superslabs_cached,
        s1.large_cached_bytes >> 20,
    );
    if hakmem::PRESET == hakmem::Preset::Balanced
        && std::env::var_os("HAKMEM_SS_DECAY_MS").is_none()
    {
        assert_eq!(munmap, 0, "BALANCED gave memory back inside a rebuild loop");
        assert!(
            mmap <= 2,
            "BALANCED mapped {mmap} times after the first round"
        );
        // ~40 MB per round would be ~10,000 faults per round if it were mapped afresh.
        assert!(
            faults / ROUNDS < 1000,
            "{faults} minor faults in {ROUNDS} rounds"
        );
    }
}
