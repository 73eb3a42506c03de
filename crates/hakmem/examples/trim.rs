//! `hakmem::trim()` gives memory back: allocate about 200 MiB in mixed blocks (tiny,
//! mid and large), free them all, then print RSS (VmRSS) before and after `trim()`.
//!
//! ```sh
//! cargo run --release -p hakmem-alloc --example trim                          # BALANCED
//! cargo run --release -p hakmem-alloc --example trim --features preset-safe
//! cargo run --release -p hakmem-alloc --example trim --features preset-lean
//! ```
//!
//! The run exits with status 1 if RSS did not go down after `trim()`.

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// VmRSS of this process in KiB, from /proc/self/status.
fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let start = vm_rss_kib();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // ~200 MiB: by bytes, about 30% tiny (16 B..1 KiB), 40% mid (1..256 KiB), 30% large
    // (256 KiB..4 MiB); by count, mostly tiny.
    let mut blocks: Vec<(*mut u8, Layout)> = Vec::with_capacity(1 << 20);
    let (mut tiny, mut mid, mut large) = (0usize, 0usize, 0usize);
    while tiny + mid + large < 200 << 20 {
        let r = next();
        let size = match r % 1000 {
            0..=3 if large < 60 << 20 => (256 << 10) + (r >> 16) as usize % (4 << 20),
            4..=99 if mid < 80 << 20 => 1025 + (r >> 16) as usize % (255 << 10),
            _ if tiny < 60 << 20 => 16 + (r >> 16) as usize % 1009,
            _ => continue,
        };
        match size {
            0..=1024 => tiny += size,
            1025..=262_144 => mid += size,
            _ => large += size,
        }
        let l = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a non-zero layout; freed below with the same layout.
        let p = unsafe { GLOBAL.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: the block holds `size` bytes; touch it all so it is resident.
        unsafe { p.write_bytes(0xAB, size) };
        blocks.push((p, l));
    }
    let peak = vm_rss_kib();
    for &(p, l) in &blocks {
        // SAFETY: each block is live and freed once, with its layout.
        unsafe { GLOBAL.dealloc(p, l) };
    }
    let n = blocks.len();
    drop(blocks);
    let freed = vm_rss_kib();
    let s0 = hakmem::stats();
    let unmapped = hakmem::trim();
    let trimmed = vm_rss_kib();
    let s1 = hakmem::stats();

    println!(
        "preset {}: {n} blocks, {} MiB tiny + {} MiB mid + {} MiB large",
        hakmem::PRESET.name(),
        tiny >> 20,
        mid >> 20,
        large >> 20
    );
    println!("VmRSS at start          {start:>9} KiB");
    println!("VmRSS at peak           {peak:>9} KiB");
    println!("VmRSS after freeing     {freed:>9} KiB");
    println!(
        "VmRSS after trim()      {trimmed:>9} KiB  (trim unmapped {} KiB)",
        unmapped >> 10
    );
    println!(
        "mapped_bytes {} -> {} KiB; superslabs live {} -> {}, cached {} -> {}; large cache {} -> {} KiB",
        s0.mapped_bytes >> 10,
        s1.mapped_bytes >> 10,
        s0.superslabs_live,
        s1.superslabs_live,
        s0.superslabs_cached,
        s1.superslabs_cached,
        s0.large_cached_bytes >> 10,
        s1.large_cached_bytes >> 10
    );
    if trimmed >= freed {
        println!("RSS did NOT go down after trim()");
        std::process::exit(1);
    }
}
