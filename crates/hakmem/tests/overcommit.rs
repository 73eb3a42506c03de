//! Requests the kernel would refuse glibc are refused (issue 12, bug 3): a `Layout` of
//! 2^33..2^46 bytes gets a block exactly where glibc's `malloc` (this test binary's
//! `libc::malloc`, not hakmem) gets one under the machine's overcommit policy, and null
//! where glibc gets null, with nothing left mapped. Before the fix every mapping used
//! `MAP_NORESERVE`, which skips the kernel's overcommit check: `2^46` bytes succeeded.

use std::alloc::{GlobalAlloc, Layout};

#[test]
fn huge_layouts_get_the_kernels_answer() {
    // Set up the thread and the process first (prewarm maps superslabs).
    let warm = hakmem::raw::malloc(100);
    // SAFETY: live block.
    unsafe { hakmem::raw::free(warm).unwrap() };
    let mut refused = 0;
    for k in 33..=46 {
        let n = 1usize << k;
        // SAFETY: plain libc calls; the block is freed at once. (`black_box`: the
        // compiler may otherwise fold an unused malloc/free pair into "succeeded".)
        let glibc_ok = unsafe {
            let g = std::hint::black_box(libc::malloc(n));
            libc::free(g);
            !g.is_null()
        };
        refused += usize::from(!glibc_ok);
        for align in [16usize, 4096, 1 << 22, 1 << 23] {
            let before = hakmem::stats().mapped_bytes;
            let layout = Layout::from_size_align(n, align).unwrap();
            // SAFETY: a non-zero layout; freed below.
            let p = unsafe { hakmem::HakMem.alloc(layout) };
            assert_eq!(
                !p.is_null(),
                glibc_ok,
                "2^{k} bytes aligned to {align}: hakmem {}, glibc {}",
                if p.is_null() { "refused" } else { "granted" },
                if glibc_ok { "granted" } else { "refused" },
            );
            if p.is_null() {
                assert_eq!(
                    hakmem::stats().mapped_bytes,
                    before,
                    "a refused request left memory mapped"
                );
            } else {
                // SAFETY: live block of this layout.
                unsafe { hakmem::HakMem.dealloc(p, layout) };
            }
            let q = hakmem::raw::malloc(n);
            assert_eq!(!q.is_null(), glibc_ok, "raw::malloc(2^{k})");
            // SAFETY: null or a live block.
            unsafe { hakmem::raw::free(q).unwrap() };
        }
    }
    // Under the kernel's default heuristic policy on a machine with less than 64 TiB of
    // RAM and swap, at least 2^46 is refused; say what this machine did.
    println!("2^33..2^46: glibc refused {refused} of 14 sizes; hakmem agreed on each");
}
