//! A program that moves from one size of small blocks to the next, freeing each size's
//! blocks before it takes the next (`cbench simple`, glibc's `bench-malloc-simple`), must
//! not hold every size's peak at once: the blocks a size left in the thread's cache and
//! in its transfer cache pinned its slabs, so no slab emptied into the pool for the next
//! size, and the peak was the sum of all sizes' peaks (results/225).
//!
//! Run without the test harness (its threads would allocate on their own), and quickly:
//! well inside the decay interval, which would otherwise give the memory back in time.

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

// (Only its `rss_kib`.)
#[allow(dead_code)]
mod decay_common;
use decay_common::rss_kib;

/// Bytes of blocks each size holds at its peak.
const PEAK: usize = 2 << 20;

/// What the test allows the RSS to grow by: one size's peak, and 1.75 MiB for metadata,
/// the caches and what they pin, and the fresh slab each change of size may take before
/// the look it triggers gives the previous size's slabs back (measured: 3.4 MiB in all;
/// 5.8 MiB before, when each size's cached blocks pinned its slabs).
const BOUND_KIB: usize = (PEAK >> 10) + 1792;

/// One size's turn: `PEAK` bytes of blocks of `size` allocated (each page written), then
/// freed in order. `v` is the caller's, with room for the smallest size's blocks.
fn phase(v: &mut Vec<*mut u8>, size: usize) {
    let n = PEAK / size;
    assert!(v.capacity() >= n);
    let layout = std::alloc::Layout::from_size_align(size, 8).unwrap();
    for i in 0..n {
        // SAFETY: a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: `p` holds `size` bytes; touch every page of the block.
        unsafe {
            for off in (0..size).step_by(4096) {
                p.add(off).write(i as u8);
            }
            p.add(size - 1).write(i as u8);
        }
        v.push(std::hint::black_box(p));
    }
    for p in v.drain(..) {
        // SAFETY: allocated above with `layout`.
        unsafe { std::alloc::dealloc(p, layout) };
    }
}

fn main() {
    // Huge pages would make the RSS jump 2 MiB at a touch on a host whose THP mode is
    // `always` (a pool superslab's second half is dense): measure on 4 KiB pages. The
    // gates are read at the first allocation, before `main`: run again with the gate set.
    if std::env::var_os("HAKMEM_THP").is_none() {
        let exe = std::env::current_exe().unwrap();
        let st = std::process::Command::new(exe)
            .env("HAKMEM_THP", "NEVER")
            .status()
            .unwrap();
        std::process::exit(st.code().unwrap_or(1));
    }
    // Sizes of the pool (blocks up to a page), smallest first, as `cbench simple`.
    let sizes = [64, 128, 256, 512, 1024, 2048, 4096];
    let mut v = Vec::with_capacity(PEAK / sizes[0]);
    let before = rss_kib();
    let mut peak = before;
    let t = std::time::Instant::now();
    for _round in 0..2 {
        for &size in &sizes {
            phase(&mut v, size);
            peak = peak.max(rss_kib());
            if std::env::var_os("QUIET_VERBOSE").is_some() {
                let st = hakmem::stats();
                println!(
                    "  {size:5} B: RSS {} KiB, thread-cached {} KiB, central free {} KiB",
                    rss_kib(),
                    st.thread_cached_bytes >> 10,
                    st.central_free_bytes >> 10
                );
            }
        }
    }
    let st = hakmem::stats();
    println!(
        "quiet_classes: {} sizes of {} MiB each, one after the other: RSS {before} -> peak \
         {peak} KiB, peak superslabs {}, {:?}",
        sizes.len(),
        PEAK >> 20,
        st.peak_superslabs_live,
        t.elapsed()
    );
    // Every size's peak at once would be 14 MiB more; the largest alone is 2. The slabs
    // a size's blocks emptied serve the next one, but for a few blocks each size's caches
    // keep (bounded by the bins' and transfer caches' bounds, a fraction of a size's peak).
    let grown = peak - before;
    assert!(
        grown <= BOUND_KIB,
        "every size held its peak: RSS grew {grown} KiB (at most {BOUND_KIB}) for {} sizes \
         of {} MiB one after the other",
        sizes.len(),
        PEAK >> 20
    );
    println!("quiet_classes: ok");
}
