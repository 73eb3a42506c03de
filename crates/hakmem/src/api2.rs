//! `allocator_api2::alloc::Allocator` for [`HakMem`](struct@HakMem) (feature `allocator-api2` for
//! allocator-api2 0.2, `allocator-api2-04` for 0.4, the current release; both may be on), so
//! `allocator_api2::vec::Vec<T, HakMem>`, `allocator_api2::boxed::Box<T, HakMem>` and the
//! collections built on `allocator-api2` (hashbrown, bumpalo, ...) use hakmem on stable
//! Rust without making it the global allocator.
//!
//! ```
//! use allocator_api2::alloc::{Allocator, Layout};
//! let l = Layout::from_size_align(100, 8).unwrap();
//! let block = hakmem::HakMem.allocate(l).unwrap();
//! assert!(block.len() >= 100); // the real block length: 112 here
//! // SAFETY: a live block from `HakMem`; any size in 100..=block.len() fits it.
//! unsafe { hakmem::HakMem.deallocate(block.cast(), l) };
//! ```
//!
//! With allocator-api2's `alloc` feature (on by default), `Vec::new_in(struct@hakmem::HakMem)`
//! and `Box::new_in(x, hakmem::HakMem)` (see `docs/rust-api.md`).
//!
//! **Contract** (allocator-api2's, the same as `core::alloc::Allocator`'s):
//! - A zero-size layout gets a dangling pointer aligned to `layout.align()`; nothing is
//!   allocated, and deallocating a zero-size layout does nothing.
//! - `allocate`, `grow` and `shrink` report the block's real length
//!   ([`usable_size`](crate::usable_size)): the whole size class for slab blocks, the
//!   mapping's tail for large ones. That is sound because any layout size between the
//!   requested size and the reported length ("memory fitting") routes to the same box and
//!   class: [`route`](crate::route) is monotone in the size and a class's block size
//!   routes to that class at every alignment it serves (checked exhaustively by this
//!   module's tests), and large blocks are freed by address alone.
//! - The zeroed variants report exactly the requested length, so only the requested
//!   bytes need zeroing (a large block may sit in a bigger cached mapping).
//! - Growing or shrinking at the same alignment is `GlobalAlloc::realloc` (in place when
//!   the class does not change; `mremap` for large blocks); a change of alignment
//!   allocates, copies and frees.

/// The implementation, for one release of allocator-api2 (`$krate`: the crate's name in
/// this build): 0.2 (feature `allocator-api2`) and 0.4 (feature `allocator-api2-04`).
macro_rules! impl_allocator {
    ($krate:ident) => {
        use crate::HakMem;
        use core::alloc::{GlobalAlloc, Layout};
        use core::ptr::{self, NonNull};
        use $krate::alloc::{AllocError, Allocator};

        /// A dangling, non-null pointer aligned to `align`, as an empty slice (zero-size layouts).
        #[inline]
        fn dangling(align: usize) -> NonNull<[u8]> {
            // SAFETY: an alignment is a power of two, never zero.
            let p = unsafe { NonNull::new_unchecked(ptr::without_provenance_mut::<u8>(align)) };
            NonNull::slice_from_raw_parts(p, 0)
        }

        /// `p` (non-null on success) with `len` bytes, or the error for null.
        #[inline]
        fn block(p: *mut u8, len: usize) -> Result<NonNull<[u8]>, AllocError> {
            match NonNull::new(p) {
                Some(p) => Ok(NonNull::slice_from_raw_parts(p, len)),
                None => Err(AllocError),
            }
        }

        /// `p` with its real length under `layout`, or the error for null.
        ///
        /// # Safety
        /// `p` is null or a live block just allocated (or reallocated) by [`HakMem`](struct@HakMem) with
        /// `layout`.
        #[inline]
        unsafe fn with_usable(p: *mut u8, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if p.is_null() {
                return Err(AllocError);
            }
            // SAFETY: `p` is a live block of `layout` (the caller's guarantee).
            let len = unsafe { crate::usable_size(p, layout) };
            block(p, len)
        }

        /// Resize at any alignment: `realloc` when the alignment is unchanged (and the old
        /// block is not zero-size), else allocate, copy the first `min` bytes, free.
        ///
        /// # Safety
        /// `ptr` is a block currently allocated by `a` that `old` fits; `new` is non-zero.
        #[inline]
        unsafe fn resize(
            a: &HakMem,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            debug_assert!(new.size() != 0);
            if old.size() == 0 {
                return a.allocate(new);
            }
            if old.align() == new.align() {
                // SAFETY: `ptr` is live with a layout that routes like `old` (memory
                // fitting); `new.size()` is non-zero and, rounded to the alignment, fits
                // `isize` (a `Layout` guarantees it). On success the block has layout `new`.
                unsafe {
                    let p = GlobalAlloc::realloc(a, ptr.as_ptr(), old, new.size());
                    return with_usable(p, new);
                }
            }
            let fresh = a.allocate(new)?;
            // SAFETY: both blocks are live and distinct; the copy fits both; `ptr` is given
            // up with a layout that fits it (the caller's guarantee).
            unsafe {
                ptr::copy_nonoverlapping(
                    ptr.as_ptr(),
                    fresh.as_ptr().cast::<u8>(),
                    old.size().min(new.size()),
                );
                a.deallocate(ptr, old);
            }
            Ok(fresh)
        }

        // SAFETY: blocks come from the `GlobalAlloc` impl, which hands out blocks that are valid,
        // aligned, sized and exclusively the caller's until freed, and `HakMem` is a handle to
        // one process-wide heap (its config matters only at the process's first allocation), so copies and moves of it never invalidate a block and
        // any block may be passed to any method. Reported lengths keep every fitting layout on the
        // block's box and class (see the module documentation and the tests below).
        unsafe impl Allocator for HakMem {
            #[inline]
            fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
                if layout.size() == 0 {
                    return Ok(dangling(layout.align()));
                }
                // SAFETY: a non-zero layout; the result is null or a live block of `layout`.
                unsafe { with_usable(GlobalAlloc::alloc(self, layout), layout) }
            }

            #[inline]
            fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
                if layout.size() == 0 {
                    return Ok(dangling(layout.align()));
                }
                // SAFETY: a non-zero layout.
                let p = unsafe { GlobalAlloc::alloc_zeroed(self, layout) };
                block(p, layout.size())
            }

            #[inline]
            unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
                if layout.size() != 0 {
                    // SAFETY: `ptr` is currently allocated and `layout` fits it (the caller's
                    // guarantee); a fitting layout routes to the block's box and class.
                    unsafe { GlobalAlloc::dealloc(self, ptr.as_ptr(), layout) }
                }
            }

            #[inline]
            unsafe fn grow(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                debug_assert!(new_layout.size() >= old_layout.size());
                if new_layout.size() == 0 {
                    // Both sizes are zero: nothing was allocated and nothing is.
                    return Ok(dangling(new_layout.align()));
                }
                // SAFETY: forwarded caller guarantees; `new_layout` is non-zero.
                unsafe { resize(self, ptr, old_layout, new_layout) }
            }

            #[inline]
            unsafe fn grow_zeroed(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                debug_assert!(new_layout.size() >= old_layout.size());
                let (old, new) = (old_layout.size(), new_layout.size());
                if new == 0 {
                    return Ok(dangling(new_layout.align()));
                }
                if old == 0 {
                    return self.allocate_zeroed(new_layout);
                }
                // SAFETY: forwarded caller guarantees; `new_layout` is non-zero.
                let p = unsafe { resize(self, ptr, old_layout, new_layout)? };
                // SAFETY: the block holds at least `new` bytes; zero the grown part only, and
                // report exactly `new` bytes (every byte of the reported block past `old` is zero).
                unsafe {
                    p.as_ptr().cast::<u8>().add(old).write_bytes(0, new - old);
                }
                Ok(NonNull::slice_from_raw_parts(p.cast::<u8>(), new))
            }

            #[inline]
            unsafe fn shrink(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                debug_assert!(new_layout.size() <= old_layout.size());
                if new_layout.size() == 0 {
                    // SAFETY: `ptr` is currently allocated and `old_layout` fits it.
                    unsafe { self.deallocate(ptr, old_layout) };
                    return Ok(dangling(new_layout.align()));
                }
                // SAFETY: forwarded caller guarantees; `new_layout` is non-zero (so `old_layout`
                // is too, and `ptr` is a real block).
                unsafe { resize(self, ptr, old_layout, new_layout) }
            }
        }
    };
}

/// For allocator-api2 0.2 (feature `allocator-api2`).
#[cfg(feature = "allocator-api2")]
mod v02 {
    impl_allocator!(allocator_api2);
}

/// For allocator-api2 0.4 (feature `allocator-api2-04`).
#[cfg(feature = "allocator-api2-04")]
mod v04 {
    impl_allocator!(allocator_api2_04);
}

#[cfg(all(test, feature = "allocator-api2"))]
mod tests {
    use crate::{HakMem, Route, route};
    use allocator_api2::alloc::Allocator;
    use core::alloc::Layout;
    use hakmem_ss_allocation::class::{self, MAX_SLAB_ALIGN, MAX_SLAB_BLOCK};

    /// Memory fitting: for every alignment a slab class can serve and every size up to
    /// the slab limit, every size between the request and its class's block size routes
    /// to the same class (so reporting the block size is sound), and the block size is
    /// a multiple of the alignment. Checked as: the route is monotone in the size, and a
    /// class's block size routes to that class.
    #[test]
    fn fitting_sizes_route_to_the_same_class() {
        let mut align = 1;
        while align <= 2 * MAX_SLAB_ALIGN {
            let mut prev = 0usize;
            for size in 1..=MAX_SLAB_BLOCK + 4096 {
                match route(size, align) {
                    Route::Tiny(c) | Route::Mid(c) => {
                        assert!(c >= prev, "route not monotone at {size}/{align}");
                        prev = c;
                        let b = class::block_size(c);
                        assert!(b >= size);
                        assert_eq!(b % align, 0, "{size}/{align}");
                        assert_eq!(route(b, align), route(size, align), "{size}/{align}");
                    }
                    Route::Large => {
                        // Large stays large for every bigger size at this alignment.
                        assert!(size > MAX_SLAB_BLOCK || align > MAX_SLAB_ALIGN);
                        assert_eq!(route(size + 1, align), Route::Large);
                        assert_eq!(route(usize::MAX >> 2, align), Route::Large);
                    }
                }
            }
            align *= 2;
        }
    }

    #[test]
    fn reported_length_is_the_usable_size_and_fits() {
        let a = HakMem;
        for align in [1usize, 8, 16, 32, 64, 4096, 1 << 16, 1 << 17] {
            for size in [
                1usize,
                15,
                16,
                17,
                1000,
                1024,
                1025,
                5000,
                256 << 10,
                300 << 10,
            ] {
                let l = Layout::from_size_align(size, align).unwrap();
                let p = a.allocate(l).unwrap();
                assert!(p.len() >= size);
                assert_eq!(p.cast::<u8>().as_ptr() as usize % align, 0);
                // SAFETY: the reported length is writable; then free with the largest
                // fitting layout.
                unsafe {
                    p.cast::<u8>().as_ptr().write_bytes(0xA5, p.len());
                    let big = Layout::from_size_align(p.len(), align).unwrap();
                    a.deallocate(p.cast(), big);
                }
            }
        }
    }
}
