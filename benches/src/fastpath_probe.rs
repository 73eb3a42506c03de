//! The fast-path probe of `cargo xtask fastpath`: two functions that call hakmem's
//! `GlobalAlloc::alloc` and `dealloc` with a tiny `Layout` (size passed at run time, align
//! 8), kept out of line and under fixed names so that their machine code can be found
//! in the release binary (fat LTO, one codegen unit: what users get) and counted.
//!
//! `main` exercises them (so the hit path is the one taken) and checks the block works.

use core::alloc::{GlobalAlloc, Layout};

/// `HakMem.alloc(Layout { size, align: 8 })`.
///
/// # Safety
/// `size` is non-zero and at most `isize::MAX - 7`.
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe fn hakmem_fastpath_alloc(size: usize) -> *mut u8 {
    // SAFETY: the caller guarantees a valid, non-zero size; 8 is a power of two.
    unsafe { hakmem::HakMem.alloc(Layout::from_size_align_unchecked(size, 8)) }
}

/// `HakMem.dealloc(p, Layout { size, align: 8 })`.
///
/// # Safety
/// `p` was returned by [`hakmem_fastpath_alloc`] with the same `size` and is freed once.
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe fn hakmem_fastpath_dealloc(p: *mut u8, size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { hakmem::HakMem.dealloc(p, Layout::from_size_align_unchecked(size, 8)) }
}

fn main() {
    // A size the compiler cannot see: 16 bytes unless arguments are given.
    let size = 8 + 8 * std::env::args().count().clamp(1, 64);
    let mut sum = 0usize;
    // `cargo xtask fastpath --callgrind` divides by this count (its `CALLS`).
    for i in 0..100_000usize {
        // SAFETY: a non-zero size; the block is written within bounds and freed once.
        unsafe {
            let p = hakmem_fastpath_alloc(size);
            assert!(!p.is_null());
            p.write_volatile(i as u8);
            sum = sum.wrapping_add(p.read_volatile() as usize);
            hakmem_fastpath_dealloc(p, size);
        }
    }
    println!("fastpath probe: size {size}, checksum {sum}");
}
