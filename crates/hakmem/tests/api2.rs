//! `allocator_api2::alloc::Allocator for HakMem` (feature `allocator-api2`): vectors and
//! boxes in hakmem while the global allocator stays the system's, across sizes,
//! alignments, zero-sized types, growth, shrinking and clones, and the raw trait methods
//! against the contract (zero-size layouts, reported lengths, zeroing, fitting layouts).
#![cfg(feature = "allocator-api2")]

use allocator_api2::alloc::{Allocator, Layout};
use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;
use hakmem::HakMem;
use std::ptr::NonNull;

/// A value with alignment `A` (via the wrapper types below) and a check pattern.
macro_rules! aligned_type {
    ($name:ident, $align:literal, $bytes:literal) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(C, align($align))]
        struct $name([u8; $bytes]);
        impl $name {
            fn new(i: usize) -> Self {
                let mut b = [0u8; $bytes];
                for (k, x) in b.iter_mut().enumerate() {
                    *x = (i.wrapping_mul(31).wrapping_add(k)) as u8;
                }
                $name(b)
            }
        }
    };
}

aligned_type!(A1, 1, 3);
aligned_type!(A16, 16, 16);
aligned_type!(A32, 32, 40);
aligned_type!(A64, 64, 64);
aligned_type!(A4K, 4096, 100);
aligned_type!(A128K, 131072, 8);

/// Push `n` values one by one (growing through every size range on the way), check,
/// clone, shrink, truncate, check again.
fn exercise<T: Copy + PartialEq + std::fmt::Debug>(n: usize, make: impl Fn(usize) -> T) {
    let align = std::mem::align_of::<T>();
    let mut v: Vec<T, HakMem> = Vec::new_in(HakMem);
    for i in 0..n {
        v.push(make(i));
        assert_eq!(v.as_ptr() as usize % align, 0);
    }
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, make(i));
    }
    let c = v.clone();
    assert_eq!(c.len(), n);
    assert_eq!(c.as_ptr() as usize % align, 0);
    v.truncate(n / 3);
    v.shrink_to_fit();
    assert_eq!(v.as_ptr() as usize % align, 0);
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, make(i));
    }
    v.extend(c.iter().copied());
    assert_eq!(v.len(), n / 3 + n);
    for (i, x) in v[n / 3..].iter().enumerate() {
        assert_eq!(*x, make(i));
    }
    v.clear();
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 0);
}

#[test]
fn vec_push_grow_shrink_clone_many_types() {
    exercise(100_000, |i| i as u8);
    exercise(100_000, |i| i as u32);
    exercise(300_000, |i| i as u64);
    exercise(50_000, |i| i as u128);
    exercise(20_000, A1::new);
    exercise(20_000, A16::new);
    exercise(20_000, A32::new);
    exercise(10_000, A64::new);
    exercise(2_000, A4K::new);
    exercise(50, A128K::new);
}

#[test]
fn vec_with_capacity_every_size_range() {
    // Capacities from 1 byte to 8 MiB, each written in whole and checked.
    let mut cap = 1usize;
    while cap <= 8 << 20 {
        for c in [cap - 1, cap, cap + 1, cap + cap / 3] {
            let mut v: Vec<u8, HakMem> = Vec::with_capacity_in(c, HakMem);
            assert!(v.capacity() >= c);
            v.resize(c, 0x5A);
            assert!(v.iter().all(|&b| b == 0x5A));
            v.shrink_to(c / 2);
            assert!(v.capacity() >= c);
            assert!(v.iter().all(|&b| b == 0x5A));
            v.truncate(c / 2);
            v.shrink_to_fit();
            assert_eq!(v.len(), c / 2);
            assert!(v.iter().all(|&b| b == 0x5A));
        }
        cap *= 2;
    }
}

#[test]
fn zero_sized_types() {
    let mut v: Vec<(), HakMem> = Vec::new_in(HakMem);
    for _ in 0..1_000_000 {
        v.push(());
    }
    assert_eq!(v.len(), 1_000_000);
    let c = v.clone();
    assert_eq!(c.len(), 1_000_000);
    v.shrink_to_fit();

    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(align(64))]
    struct Zst64;
    let mut w: Vec<Zst64, HakMem> = Vec::with_capacity_in(10, HakMem);
    w.extend(std::iter::repeat_n(Zst64, 1000));
    assert_eq!(w.as_ptr() as usize % 64, 0);
    let b = Box::new_in(Zst64, HakMem);
    assert_eq!(&*b as *const Zst64 as usize % 64, 0);
    let b: Box<[u32], HakMem> = Vec::new_in(HakMem).into_boxed_slice();
    assert!(b.is_empty());
}

#[test]
fn boxes() {
    let b = Box::new_in(42u64, HakMem);
    assert_eq!(*b, 42);
    let big = Box::new_in([7u8; 1 << 16], HakMem);
    assert!(big.iter().all(|&x| x == 7));
    let a = Box::new_in(A4K::new(9), HakMem);
    assert_eq!(&*a as *const A4K as usize % 4096, 0);
    assert_eq!(*a, A4K::new(9));
    let s: Box<[u64], HakMem> = {
        let mut v = Vec::new_in(HakMem);
        v.extend(0..10_000u64);
        v.into_boxed_slice()
    };
    assert_eq!(s.len(), 10_000);
    assert_eq!(s.iter().sum::<u64>(), 9_999 * 10_000 / 2);
    let mut many: std::vec::Vec<Box<[u8; 200], HakMem>> = std::vec::Vec::new();
    for i in 0..10_000 {
        many.push(Box::new_in([i as u8; 200], HakMem));
    }
    for (i, b) in many.iter().enumerate() {
        assert!(b.iter().all(|&x| x == i as u8));
    }
    let c = many[17].clone();
    assert_eq!(*c, [17u8; 200]);
}

#[test]
fn blocks_cross_threads() {
    let v: Vec<u64, HakMem> = {
        let mut v = Vec::new_in(HakMem);
        v.extend(0..100_000u64);
        v
    };
    let h = std::thread::spawn(move || {
        let mut v = v;
        v.extend(0..100_000u64);
        v.iter().sum::<u64>()
    });
    assert_eq!(h.join().unwrap(), 2 * (99_999 * 100_000 / 2));
}

fn layouts() -> impl Iterator<Item = Layout> {
    let sizes = [
        0usize,
        1,
        8,
        15,
        16,
        17,
        100,
        1000,
        1024,
        1025,
        4096,
        5000,
        65536,
        200_000,
        256 << 10,
        (256 << 10) + 1,
        1 << 20,
        (3 << 20) + 7,
    ];
    let aligns = [1usize, 8, 16, 32, 64, 4096, 1 << 16, 1 << 17];
    sizes.into_iter().flat_map(move |s| {
        aligns
            .into_iter()
            .map(move |a| Layout::from_size_align(s, a).unwrap())
    })
}

fn fill(p: NonNull<[u8]>, from: usize, to: usize, v: u8) {
    // SAFETY: callers pass a range inside the block's reported length.
    unsafe { p.cast::<u8>().as_ptr().add(from).write_bytes(v, to - from) };
}

fn check(p: NonNull<[u8]>, from: usize, to: usize, v: u8) {
    for i in from..to {
        // SAFETY: callers pass a range of initialized bytes inside the block.
        let b = unsafe { *p.cast::<u8>().as_ptr().add(i) };
        assert_eq!(b, v, "byte {i}");
    }
}

#[test]
fn raw_contract_allocate_and_zero_sizes() {
    let a = HakMem;
    for l in layouts() {
        let p = a.allocate(l).unwrap();
        assert_eq!(p.cast::<u8>().as_ptr() as usize % l.align(), 0, "{l:?}");
        assert!(p.len() >= l.size());
        if l.size() == 0 {
            assert_eq!(p.len(), 0);
            assert_eq!(p.cast::<u8>().as_ptr() as usize, l.align(), "dangling");
        }
        fill(p, 0, p.len(), 0xC3);
        // Deallocate with the largest fitting layout (the reported length).
        // SAFETY: live block; a layout of any size in size..=len fits it.
        unsafe {
            a.deallocate(
                p.cast(),
                Layout::from_size_align(p.len(), l.align()).unwrap(),
            )
        };

        let z = a.allocate_zeroed(l).unwrap();
        assert!(z.len() >= l.size());
        check(z, 0, z.len(), 0);
        // SAFETY: live block, requested layout.
        unsafe { a.deallocate(z.cast(), l) };
    }
    // Reused blocks come back zeroed too.
    for _ in 0..3 {
        for l in layouts() {
            let p = a.allocate(l).unwrap();
            fill(p, 0, p.len(), 0xFF);
            // SAFETY: live block.
            unsafe { a.deallocate(p.cast(), l) };
            let z = a.allocate_zeroed(l).unwrap();
            check(z, 0, z.len(), 0);
            // SAFETY: live block.
            unsafe { a.deallocate(z.cast(), l) };
        }
    }
}

#[test]
fn raw_contract_grow_and_shrink_every_pair() {
    let a = HakMem;
    let ls: std::vec::Vec<Layout> = layouts().collect();
    for &old in &ls {
        for &new in &ls {
            let p = a.allocate(old).unwrap();
            fill(p, 0, old.size(), 0x11);
            // Any size in the fitting range is a valid `old_layout`.
            let fit = Layout::from_size_align(p.len(), old.align()).unwrap();
            if new.size() >= fit.size() {
                // SAFETY: live block, fitting layout, new size not smaller.
                let q = unsafe { a.grow(p.cast(), fit, new) }.unwrap();
                assert_eq!(q.cast::<u8>().as_ptr() as usize % new.align(), 0);
                assert!(q.len() >= new.size());
                check(q, 0, old.size(), 0x11);
                fill(q, 0, q.len(), 0x22);
                // SAFETY: live block; the reported length fits.
                unsafe {
                    a.deallocate(
                        q.cast(),
                        Layout::from_size_align(q.len(), new.align()).unwrap(),
                    )
                };

                let p = a.allocate(old).unwrap();
                fill(p, 0, old.size(), 0x33);
                // SAFETY: live block, requested layout, new size not smaller.
                let q = unsafe { a.grow_zeroed(p.cast(), old, new) }.unwrap();
                assert!(q.len() >= new.size());
                check(q, 0, old.size(), 0x33);
                check(q, old.size(), q.len(), 0);
                // SAFETY: live block.
                unsafe { a.deallocate(q.cast(), new) };
            } else if new.size() <= old.size() {
                // SAFETY: live block, fitting layout, new size not larger.
                let q = unsafe { a.shrink(p.cast(), fit, new) }.unwrap();
                assert_eq!(q.cast::<u8>().as_ptr() as usize % new.align(), 0);
                assert!(q.len() >= new.size());
                check(q, 0, new.size(), 0x11);
                // SAFETY: live block.
                unsafe { a.deallocate(q.cast(), new) };
            } else {
                // SAFETY: live block, requested layout.
                unsafe { a.deallocate(p.cast(), old) };
            }
        }
    }
}

#[test]
fn by_ref_and_clones_share_one_heap() {
    let a = HakMem;
    let r = &a;
    let mut v: Vec<u32, &HakMem> = Vec::new_in(r);
    v.extend(0..1000);
    let p = HakMem.allocate(Layout::new::<[u64; 8]>()).unwrap();
    // SAFETY: a block from one `HakMem` value freed through another (one heap).
    unsafe { a.deallocate(p.cast(), Layout::new::<[u64; 8]>()) };
    assert_eq!(v.iter().sum::<u32>(), 999 * 1000 / 2);
}
