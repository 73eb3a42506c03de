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

/// A snapshot of the allocator's counters (stub: zeros until the OS box lands).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// mmap calls.
    pub mmap: u64,
    /// munmap calls.
    pub munmap: u64,
    /// madvise calls.
    pub madvise: u64,
    /// mprotect calls.
    pub mprotect: u64,
    /// mremap calls.
    pub mremap: u64,
}

impl Stats {
    /// Total syscalls the allocator made (mmap + munmap + madvise + mprotect + mremap).
    pub fn syscalls(&self) -> u64 {
        self.mmap + self.munmap + self.madvise + self.mprotect + self.mremap
    }
}

/// The allocator's counters now.
pub fn stats() -> Stats {
    Stats::default()
}
