//! A `String` / `Vec` grown by doubling to several MiB, freed, and grown again round
//! after round (issue 17) reuses the same pages: the freed large mappings stay cached
//! for the decay interval, a growth that outgrows its mapping copies into a cached one
//! that fits (its pages resident already) before it tries `mremap`, and an allocation
//! takes the cached mapping that fits best. After two rounds: no `mmap`, `munmap`
//! or `mremap`, and (almost) no minor page faults (`getrusage`).
//!
//! Its own test binary with a single test, so that nothing else allocates meanwhile.
//! `REALLOC_TRACE=1` prints the counters after each round (with `--nocapture`).

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

/// One round: three buffers grown by doubling (`Vec`'s own growth) to 3, 6 and 12 MiB,
/// written all along, then freed.
fn round() -> usize {
    let mut bufs: Vec<Vec<u8>> = (0..3).map(|_| Vec::new()).collect();
    let chunk = [0x5Au8; 4096];
    for (k, b) in bufs.iter_mut().enumerate() {
        while b.len() < (3 << 20) << k {
            b.extend_from_slice(&chunk);
        }
    }
    let n = bufs.iter().map(|b| b.len()).sum();
    drop(bufs);
    n
}

#[test]
fn doubling_buffers_reuse_their_pages() {
    // Two rounds to settle: the first maps the buffers' mappings, the second may still
    // find the cached set one short (each growth leaves its old mapping in the cache).
    round();
    round();
    let (s0, f0) = (hakmem::stats(), minor_faults());
    const ROUNDS: u64 = 10;
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        bytes += round();
        if std::env::var_os("REALLOC_TRACE").is_some() {
            let s = hakmem::stats();
            eprintln!(
                "mmap {} munmap {} mremap {} faults {}",
                s.mmap - s0.mmap,
                s.munmap - s0.munmap,
                s.mremap - s0.mremap,
                minor_faults() - f0
            );
        }
    }
    let (s1, f1) = (hakmem::stats(), minor_faults());
    let (mmap, munmap, mremap, faults) = (
        s1.mmap - s0.mmap,
        s1.munmap - s0.munmap,
        s1.mremap - s0.mremap,
        f1 - f0,
    );
    eprintln!(
        "preset {:?}: {ROUNDS} rounds of {} MiB grown by doubling: {mmap} mmap, {munmap} \
         munmap, {mremap} mremap, {} madvise, {faults} minor faults ({} per round)",
        hakmem::PRESET,
        (bytes as u64 / ROUNDS) >> 20,
        s1.madvise_calls - s0.madvise_calls,
        faults / ROUNDS,
    );
    if hakmem::PRESET != hakmem::Preset::Lean
        && std::env::var_os("HAKMEM_LARGE_DECAY_MS").is_none()
        && std::env::var_os("HAKMEM_LARGE_CACHE_MIB").is_none()
    {
        assert_eq!(
            (mmap, munmap, mremap),
            (0, 0, 0),
            "the rounds after the first made memory system calls"
        );
        // 21 MiB per round would be ~5,400 faults per round if mapped afresh.
        assert!(
            faults / ROUNDS < 64,
            "{faults} minor faults in {ROUNDS} rounds"
        );
    }
}
