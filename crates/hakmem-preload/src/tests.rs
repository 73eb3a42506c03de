//! In-process tests of the C semantics (the shared object is tested with C programs in
//! `tests/`). These call the Rust functions directly; nothing is interposed.

use super::*;

fn with_errno<R>(e: c_int, f: impl FnOnce() -> R) -> (R, c_int) {
    set_errno(e);
    let r = f();
    (r, errno())
}

#[test]
fn malloc_zero_is_unique_and_free_null_is_a_no_op() {
    let a = malloc(0);
    let b = malloc(0);
    assert!(!a.is_null() && !b.is_null() && a != b);
    // SAFETY: live blocks from this allocator, and null.
    unsafe {
        free(a);
        free(b);
        free(ptr::null_mut());
        assert_eq!(malloc_usable_size(ptr::null_mut()), 0);
    }
}

#[test]
fn out_of_memory_sets_enomem() {
    for size in [usize::MAX, usize::MAX - 4096, isize::MAX as usize + 1] {
        let (p, e) = with_errno(0, || malloc(size));
        assert!(p.is_null());
        assert_eq!(e, libc::ENOMEM);
    }
    let (p, e) = with_errno(0, || calloc(usize::MAX / 2 + 1, 2));
    assert!(p.is_null() && e == libc::ENOMEM);
    let (p, e) = with_errno(0, || calloc(1 << 33, 1 << 33));
    assert!(p.is_null() && e == libc::ENOMEM);
    let (p, e) = with_errno(0, || pvalloc(usize::MAX));
    assert!(p.is_null() && e == libc::ENOMEM);
    let (p, e) = with_errno(0, || memalign(usize::MAX / 2 + 1, 10));
    assert!(p.is_null() && e == libc::ENOMEM);
    let (p, e) = with_errno(0, || aligned_alloc(1 << 20, usize::MAX - 100));
    assert!(p.is_null() && e == libc::ENOMEM);
}

#[test]
fn success_keeps_errno() {
    let (p, e) = with_errno(libc::EDOM, || malloc(100));
    assert_eq!(e, libc::EDOM);
    // SAFETY: `p` and each `q` are live blocks, freed once.
    unsafe {
        let (q, e) = with_errno(libc::EDOM, || realloc(p, 10 << 20));
        assert!(!q.is_null());
        assert_eq!(e, libc::EDOM);
        let (q, e) = with_errno(libc::EDOM, || realloc(q, 100 << 20));
        assert_eq!(e, libc::EDOM);
        let ((), e) = with_errno(libc::EDOM, || free(q));
        assert_eq!(e, libc::EDOM);
    }
}

#[test]
fn failed_realloc_leaves_the_block_intact() {
    let p = malloc(100).cast::<u8>();
    // SAFETY: `p` holds 100 bytes and stays live until the final free.
    unsafe {
        for i in 0..100 {
            *p.add(i) = i as u8;
        }
        for size in [usize::MAX, isize::MAX as usize] {
            let (q, e) = with_errno(0, || realloc(p.cast(), size));
            assert!(q.is_null());
            assert_eq!(e, libc::ENOMEM);
        }
        let (q, e) = with_errno(0, || reallocarray(p.cast(), usize::MAX / 2, 3));
        assert!(q.is_null() && e == libc::ENOMEM);
        assert!((0..100).all(|i| *p.add(i) == i as u8));
        let q = reallocarray(p.cast(), 10, 30).cast::<u8>();
        assert!((0..100).all(|i| *q.add(i) == i as u8));
        assert!(malloc_usable_size(q.cast()) >= 300);
        free(q.cast());
    }
}

#[test]
fn realloc_null_allocates_and_zero_frees() {
    // SAFETY: each pointer is live when passed.
    unsafe {
        let p = realloc(ptr::null_mut(), 50);
        assert!(!p.is_null());
        let (q, e) = with_errno(libc::EDOM, || realloc(p, 0));
        assert!(q.is_null());
        assert_eq!(e, libc::EDOM, "realloc(p, 0) is not a failure");
    }
}

#[test]
fn posix_memalign_rules() {
    let sentinel = 0x1234usize as *mut c_void;
    for bad in [0usize, 1, 2, 4, 3, 24, 48, 12, usize::MAX] {
        let mut out = sentinel;
        // SAFETY: `out` is a local.
        let (r, e) = with_errno(libc::EDOM, || unsafe { posix_memalign(&mut out, bad, 10) });
        assert_eq!(r, libc::EINVAL, "alignment {bad}");
        assert_eq!(e, libc::EDOM, "errno untouched");
        assert_eq!(out, sentinel, "*out untouched");
    }
    let mut out = sentinel;
    // SAFETY: `out` is a local.
    let (r, e) = with_errno(libc::EDOM, || unsafe {
        posix_memalign(&mut out, 64, usize::MAX)
    });
    assert_eq!((r, e, out), (libc::ENOMEM, libc::EDOM, sentinel));
    for shift in 3..=23 {
        for size in [0usize, 1, 100, 5000, 300_000] {
            let align = 1usize << shift;
            let mut out = ptr::null_mut();
            // SAFETY: `out` is a local; the block is freed once.
            unsafe {
                assert_eq!(posix_memalign(&mut out, align, size), 0);
                assert!(!out.is_null());
                assert_eq!(out as usize % align, 0);
                assert!(malloc_usable_size(out) >= size);
                out.cast::<u8>().write_bytes(0xA5, size);
                free(out);
            }
        }
    }
}

#[test]
fn aligned_alloc_memalign_valloc_pvalloc() {
    for bad in [0usize, 3, 24, 1000] {
        let (p, e) = with_errno(0, || aligned_alloc(bad, 64));
        assert!(p.is_null());
        assert_eq!(e, libc::EINVAL);
    }
    let (p, e) = with_errno(0, || memalign(usize::MAX / 2 + 2, 10));
    assert!(p.is_null() && e == libc::EINVAL);
    let page = page_size();
    // SAFETY: each block is live, written within its size, and freed once.
    unsafe {
        for (align, want) in [(24usize, 32usize), (3, 16), (100, 128), (4096, 4096)] {
            let p = memalign(align, 77);
            assert_eq!(p as usize % want, 0, "memalign({align})");
            free(p);
        }
        let p = aligned_alloc(64, 10); // size need not be a multiple (C17)
        assert_eq!(p as usize % 64, 0);
        free(p);
        let p = valloc(10);
        assert_eq!(p as usize % page, 0);
        free(p);
        for size in [0usize, 1, page, page + 1] {
            let p = pvalloc(size);
            assert_eq!(p as usize % page, 0);
            let rounded = size.max(1).div_ceil(page) * page;
            assert!(malloc_usable_size(p) >= rounded);
            p.cast::<u8>().write_bytes(1, rounded);
            free(p);
        }
    }
}

#[test]
fn calloc_zeroes_reused_memory() {
    for size in [8usize, 100, 1000, 3000, 70_000, 300_000, 5 << 20] {
        let mut v = [ptr::null_mut(); 8];
        for p in &mut v {
            *p = malloc(size);
            // SAFETY: `size` bytes.
            unsafe { p.cast::<u8>().write_bytes(0xAB, size) };
        }
        for p in v {
            // SAFETY: live blocks, freed once.
            unsafe { free(p) };
        }
        for p in &mut v {
            *p = calloc(1, size);
            // SAFETY: `size` bytes.
            let s = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), size) };
            assert!(s.iter().all(|&b| b == 0), "calloc({size})");
        }
        for p in v {
            // SAFETY: live blocks, freed once.
            unsafe { free(p) };
        }
    }
}

#[test]
fn usable_size_is_writable() {
    for size in (0..5000).step_by(37).chain([262_144, 262_145, 1 << 20]) {
        let p = malloc(size);
        assert_eq!(p as usize % 16, 0);
        // SAFETY: the usable size is writable (the function's promise under test).
        unsafe {
            let n = malloc_usable_size(p);
            assert!(n >= size);
            p.cast::<u8>().write_bytes(0x5A, n);
            free_sized(p, size);
        }
    }
    let p = aligned_alloc(256, 1000);
    // SAFETY: live block.
    unsafe { free_aligned_sized(p, 256, 1000) };
    assert!(malloc_trim(0) >= 0);
}
