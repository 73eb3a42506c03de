//! hakmem facade (work in progress: forwards to the system allocator until the boxes land).
use core::alloc::{GlobalAlloc, Layout};

/// The hakmem global allocator.
pub struct HakMem;

// SAFETY: forwards to the system allocator (temporary).
unsafe impl GlobalAlloc for HakMem {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}
