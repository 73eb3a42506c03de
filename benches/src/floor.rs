//! `floor`: an ideal allocator for the single-threaded workloads.
//!
//! Per-size-class LIFO stacks (power-of-two classes from 16 B up to [`MAX_SMALL`]) over one
//! arena reserved up front; no header, no lock, no thread cache, no statistics. Coarse
//! classes waste memory but maximise reuse, and so cache locality: with 16-byte classes the
//! `mixed-32k` working set spreads over 2,048 stacks and the "floor" is slower than real
//! allocators. A free pushes the block on
//! its class's stack, an allocation pops it; a miss bumps the arena. What it costs is
//! (almost) only the benchmark loop itself: the PRNG, the slot array, the write of the first
//! byte. It is the floor no real allocator can go under.
//!
//! It is **single-threaded**: the workload binary refuses to run a threaded workload with it.
//! Blocks above [`MAX_SMALL`] bytes or aligned above 16 go to the system allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use std::alloc::System;

/// Smallest class (and alignment of every block).
pub const GRAN: usize = 16;
/// Largest size served from the classes.
pub const MAX_SMALL: usize = 32 * 1024;
/// Class `c` holds blocks of `1 << c` bytes; classes below `log2(GRAN)` stay unused.
const NCLASSES: usize = MAX_SMALL.trailing_zeros() as usize + 1;
/// Bytes of address space reserved for the arena (not committed until touched).
const ARENA_BYTES: usize = 8 << 30;

struct State {
    heads: [*mut u8; NCLASSES],
    bump: *mut u8,
    end: *mut u8,
    reserved: bool,
}

/// The `floor` allocator. See the module documentation.
pub struct Floor {
    state: UnsafeCell<State>,
}

// SAFETY: `Floor` is only sound when used from one thread at a time. The workload binary
// installs it only for single-threaded workloads (it refuses the others before spawning a
// thread) and the tests use private instances from one thread.
unsafe impl Sync for Floor {}

impl Floor {
    /// An empty allocator; the arena is reserved on the first miss.
    pub const fn new() -> Self {
        Floor {
            state: UnsafeCell::new(State {
                heads: [ptr::null_mut(); NCLASSES],
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
                reserved: false,
            }),
        }
    }

    #[cold]
    #[inline(never)]
    fn refill(&self, class: usize) -> *mut u8 {
        // SAFETY: single-threaded by contract (see `unsafe impl Sync`).
        let st = unsafe { &mut *self.state.get() };
        if !st.reserved {
            st.reserved = true;
            // SAFETY: an anonymous private mapping; no existing memory is affected.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    ARENA_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                st.bump = p.cast();
                // SAFETY: one past the end of the mapping just made.
                st.end = unsafe { st.bump.add(ARENA_BYTES) };
            }
        }
        let bytes = 1usize << class;
        if (st.end as usize) - (st.bump as usize) >= bytes && !st.bump.is_null() {
            let p = st.bump;
            // SAFETY: stays within the mapping (checked just above).
            st.bump = unsafe { st.bump.add(bytes) };
            p
        } else {
            // Arena exhausted or unavailable: borrow from the system; the block joins the
            // class's stack when freed and is never given back.
            // SAFETY: a non-zero size and a valid alignment.
            unsafe { System.alloc(Layout::from_size_align_unchecked(bytes, GRAN)) }
        }
    }
}

impl Default for Floor {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn class_of(layout: &Layout) -> Option<usize> {
    if layout.size() <= MAX_SMALL && layout.align() <= GRAN {
        Some(layout.size().max(GRAN).next_power_of_two().trailing_zeros() as usize)
    } else {
        None
    }
}

// SAFETY: blocks of class `c` are `1 << c >= 16` bytes, 16-aligned (the arena is
// page-aligned and every bump is a multiple of 16), and a block is on at most one stack,
// only while free.
unsafe impl GlobalAlloc for Floor {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(&layout) {
            Some(c) => {
                // SAFETY: single-threaded by contract.
                let st = unsafe { &mut *self.state.get() };
                // SAFETY: `c <= log2(MAX_SMALL) < NCLASSES`.
                let head = unsafe { st.heads.get_unchecked_mut(c) };
                let p = *head;
                if p.is_null() {
                    return self.refill(c);
                }
                // SAFETY: a free block on the stack holds the next pointer in its first word.
                *head = unsafe { p.cast::<*mut u8>().read() };
                p
            }
            // SAFETY: same contract as ours.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(c) => {
                // SAFETY: single-threaded by contract.
                let st = unsafe { &mut *self.state.get() };
                // SAFETY: `c <= log2(MAX_SMALL) < NCLASSES`.
                let head = unsafe { st.heads.get_unchecked_mut(c) };
                // SAFETY: `p` is a free block of at least 16 bytes, 16-aligned.
                unsafe { p.cast::<*mut u8>().write(*head) };
                *head = p;
            }
            // SAFETY: `p` came from `System.alloc` with this layout.
            None => unsafe { System.dealloc(p, layout) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifo_reuse_and_alignment() {
        let f = Floor::new();
        let l = Layout::from_size_align(40, 16).unwrap();
        // SAFETY: valid layouts; blocks freed with the layout they were allocated with.
        unsafe {
            let a = f.alloc(l);
            let b = f.alloc(l);
            assert!(!a.is_null() && !b.is_null() && a != b);
            assert_eq!(a as usize % 16, 0);
            assert_eq!(b as usize - a as usize, 64);
            a.write_bytes(0xAB, 40);
            f.dealloc(a, l);
            f.dealloc(b, l);
            assert_eq!(f.alloc(l), b);
            assert_eq!(f.alloc(l), a);
            let big = Layout::from_size_align(MAX_SMALL + 1, 8).unwrap();
            let c = f.alloc(big);
            c.write_bytes(1, MAX_SMALL + 1);
            f.dealloc(c, big);
            f.dealloc(a, l);
            f.dealloc(b, l);
        }
    }
}
