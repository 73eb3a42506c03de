//! Burst and idle (issue 15): fill 200 MiB with blocks of one size, free them all, then
//! make no allocator call for 1.5 s. Prints VmRSS (MiB) at the peak, right after the
//! frees, and after the idle time, with the allocator's syscall counters.
//!
//! ```sh
//! cargo run --release -p hakmem-alloc --example burst_idle -- 1048576      # 1 MiB blocks
//! HAKMEM_BG_PURGE_MS=100 cargo run --release -p hakmem-alloc --example burst_idle -- 4096
//! cargo run --release -p hakmem-alloc --example burst_idle --no-default-features --features preset-lean -- 300000
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn rss_mib() -> u64 {
    hakmem::stats().resident_bytes >> 20
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1 << 20);
    let l = Layout::from_size_align(size, 16).unwrap();
    let n = (200usize << 20) / size;
    let mut blocks = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: a non-zero layout, freed below.
        let p = unsafe { GLOBAL.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: the block holds `size` bytes.
        unsafe { p.write_bytes(i as u8, size) };
        blocks.push(p);
    }
    let peak = rss_mib();
    for &p in &blocks {
        // SAFETY: live, freed once, with its layout.
        unsafe { GLOBAL.dealloc(p, l) };
    }
    let freed = rss_mib();
    // No allocator call from here on (the stats read allocates nothing).
    std::thread::sleep(Duration::from_millis(1500));
    let idle = rss_mib();
    let s = hakmem::stats();
    println!(
        "{:?} {size} B blocks: peak {peak} MiB, after the frees {freed} MiB, after 1.5 s idle \
         {idle} MiB (mmap {}, munmap {}, madvise {}; background purge {})",
        hakmem::PRESET,
        s.mmap,
        s.munmap,
        s.madvise_calls,
        hakmem_release_policy::background::running(),
    );
    drop(blocks);
}
