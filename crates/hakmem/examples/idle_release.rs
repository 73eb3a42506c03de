//! Idle release: does memory come back after a peak?
//!
//! Phase 1 builds 100 MiB of live blocks (sizes 16 B..=4 KiB, one in fifty up to 64 KiB),
//! the first 1 MiB of which is long-lived. Phase 2 frees everything else. Phase 3
//! allocates only a little. RSS (VmRSS, and the part of it the kernel may reclaim lazily:
//! LazyFree, after MADV_FREE) is printed over the next second.
//!
//! ```sh
//! cargo run --release -p hakmem-alloc --example idle_release                      # BALANCED
//! cargo run --release -p hakmem-alloc --example idle_release --features preset-lean
//! HAKMEM_SS_MEM_LEAN_DECOMMIT=DONTNEED cargo run --release -p hakmem-alloc --example idle_release --features preset-lean
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn smaps(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut blocks: Vec<(*mut u8, Layout)> = Vec::with_capacity(1 << 20);
    let mut live = 0usize;
    let mut long_lived = 0usize;
    let t0 = Instant::now();
    while live < 100 << 20 {
        let r = next();
        let size = if r % 50 == 0 {
            4096 + (r >> 8) as usize % (60 << 10)
        } else {
            16 + (r >> 8) as usize % 4081
        };
        let l = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero layout; freed below with the same layout.
        let p = unsafe { GLOBAL.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: the block holds `size` bytes.
        unsafe { p.write_bytes(1, size) };
        blocks.push((p, l));
        live += size;
        if live <= 1 << 20 {
            long_lived = blocks.len();
        }
    }
    let peak = smaps("Rss:");
    for &(p, l) in &blocks[long_lived..] {
        // SAFETY: each block is live and freed once.
        unsafe { GLOBAL.dealloc(p, l) };
    }
    blocks.truncate(long_lived);
    blocks.shrink_to_fit();
    // A little more work after the peak.
    for _ in 0..1000 {
        let l = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: alloc then free.
        unsafe { GLOBAL.dealloc(GLOBAL.alloc(l), l) };
    }
    let freed_at = t0.elapsed();
    println!(
        "preset {:?}; peak RSS {} KiB; freed all but {} blocks (1 MiB) at {:?}",
        hakmem::PRESET,
        peak,
        long_lived,
        freed_at
    );
    println!("{:>8} {:>10} {:>12}", "t (ms)", "RSS KiB", "LazyFree KiB");
    for i in 0..=4 {
        println!(
            "{:>8} {:>10} {:>12}",
            i * 250,
            smaps("Rss:"),
            smaps("LazyFree:")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let s = hakmem::stats();
    println!(
        "lean_decommit {} lean_retire {} madvise_calls {} munmap {} superslabs live {} cached {}, \
         large cached {} KiB",
        s.lean_decommit,
        s.lean_retire,
        s.madvise_calls,
        s.munmap,
        s.superslabs_live,
        s.superslabs_cached,
        s.large_cached_bytes >> 10
    );
    println!(
        "allocated {} KiB, thread caches {} KiB, central free {} KiB, large live {} KiB",
        s.allocated_bytes >> 10,
        s.thread_cached_bytes >> 10,
        s.central_free_bytes >> 10,
        s.large_live_bytes >> 10
    );
    for (p, l) in blocks {
        // SAFETY: the long-lived blocks, freed once.
        unsafe { GLOBAL.dealloc(p, l) };
    }
}
