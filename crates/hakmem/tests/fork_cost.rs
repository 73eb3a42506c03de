//! What a `fork` costs a process that uses hakmem (a test with its own `main`: one
//! thread, no harness). The fork handlers take every lock of the allocator, so they
//! write the pages those locks sit on: in the parent before the `fork`, and in both
//! processes after it, where each written page is a copy-on-write fault. With the
//! transfer caches' locks each on a page of its own (every shard's array of 1,024
//! pointers inline), a `fork` cost the parent about 214 page faults and 1.4 ms, and the
//! child 231 faults (mimalloc: 2 and 16; results/205). The locks now share a few pages.

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn minflt(who: i32) -> i64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-parameter.
    unsafe { libc::getrusage(who, &mut ru) };
    ru.ru_minflt
}

fn main() {
    // Use the allocator as a program would: blocks of many classes, some freed (into
    // the thread cache and past it, into the transfer caches), a large one.
    let mut keep = Vec::new();
    for size in (16..=16384).step_by(48) {
        let l = Layout::from_size_align(size, 8).unwrap();
        for _ in 0..64 {
            // SAFETY: a non-zero layout.
            let p = unsafe { GLOBAL.alloc(l) };
            assert!(!p.is_null());
            keep.push((p, l));
        }
    }
    for (p, l) in keep.drain(..).step_by(2) {
        // SAFETY: from `alloc` with `l`, freed once.
        unsafe { GLOBAL.dealloc(p, l) };
    }
    let big = vec![7u8; 3 << 20];

    const FORKS: i64 = 100;
    // One fork first: the pages the handlers write become the parent's own once.
    let fork_and_wait = || {
        // SAFETY: the child only calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: async-signal-safe, ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0);
    };
    fork_and_wait();
    let (parent0, children0) = (minflt(libc::RUSAGE_SELF), minflt(libc::RUSAGE_CHILDREN));
    for _ in 0..FORKS {
        fork_and_wait();
    }
    let parent = (minflt(libc::RUSAGE_SELF) - parent0) as f64 / FORKS as f64;
    let child = (minflt(libc::RUSAGE_CHILDREN) - children0) as f64 / FORKS as f64;
    println!("fork_cost: page faults per fork: parent {parent:.1}, child {child:.1}");
    // A few pages of locks (the transfer caches' 13 KiB, the class locks, the caches'
    // and the registry's), the stack and libc's own: far from one page per shard.
    assert!(
        parent <= 40.0,
        "a fork costs the parent {parent:.1} page faults"
    );
    assert!(
        child <= 80.0,
        "a fork costs the child {child:.1} page faults"
    );
    assert_eq!(big[(3 << 20) - 1], 7);
    for (p, l) in keep {
        // SAFETY: from `alloc` with `l`, freed once.
        unsafe { GLOBAL.dealloc(p, l) };
    }
}
