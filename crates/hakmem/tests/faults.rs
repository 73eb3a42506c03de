//! Faults: the OS box's test hook makes `mmap` fail. Every allocation path must then
//! return null (never crash, never corrupt), a failed `realloc` must leave the old block
//! intact, and the allocator must recover when `mmap` works again. One test per binary
//! run order: everything is in one test so the hook's global state is not shared.

use hakmem::HakMem;
use hakmem_os_stats::fault;
use std::alloc::{GlobalAlloc, Layout};

/// The fault hook is process-wide: the tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// Allocate `layout` until null (at most `cap` blocks); returns the blocks.
fn exhaust(layout: Layout, cap: usize) -> (Vec<*mut u8>, bool) {
    let mut v = Vec::new();
    for i in 0..cap {
        // SAFETY: non-zero layout.
        let p = unsafe { HakMem.alloc(layout) };
        if p.is_null() {
            return (v, true);
        }
        // SAFETY: the block holds layout.size() bytes.
        unsafe { p.write_bytes((i % 251) as u8, layout.size()) };
        v.push(p);
    }
    (v, false)
}

#[test]
fn out_of_memory_returns_null_and_recovers() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // HakMem is not this binary's global allocator: the test's own vectors use glibc and
    // are unaffected by the hook.
    std::thread::spawn(|| {
        let layouts = [
            l(24, 8),
            l(1000, 16),
            l(64, 64),
            l(5000, 8),
            l(200_000, 8),
            l(3 << 20, 8),
            l(100, 1 << 20),
        ];
        fault::fail_maps_after(0);
        let mut all = Vec::new();
        for &layout in &layouts {
            let (v, hit_null) = exhaust(layout, 200_000);
            assert!(
                hit_null,
                "{layout:?}: never returned null with mmap failing"
            );
            all.push((layout, v));
        }
        // alloc_zeroed fails cleanly too.
        // SAFETY: non-zero layout.
        assert!(unsafe { HakMem.alloc_zeroed(l(8 << 20, 8)) }.is_null());
        // A failed realloc leaves the old block intact.
        fault::fail_maps_after(u64::MAX);
        // SAFETY: non-zero layout.
        let p = unsafe { HakMem.alloc(l(300_000, 8)) };
        assert!(!p.is_null());
        // SAFETY: 300,000 bytes.
        unsafe { p.write_bytes(0x5A, 300_000) };
        fault::fail_maps_after(0);
        // SAFETY: p is live with this layout.
        let q = unsafe { HakMem.realloc(p, l(300_000, 8), 64 << 20) };
        assert!(q.is_null(), "realloc cannot grow without mmap");
        // SAFETY: p is still live.
        assert!((0..300_000).all(|i| unsafe { *p.add(i) } == 0x5A));
        // The raw (C) API sets nothing and returns null as well.
        assert!(hakmem::raw::malloc(16 << 20).is_null());

        // Every 3rd mmap failing: allocations mostly succeed, nothing crashes.
        fault::fail_every(3);
        let mut some = Vec::new();
        for i in 0..2000usize {
            let layout = l(1 + (i * 7919) % (1 << 20), 8);
            // SAFETY: non-zero layout.
            let p = unsafe { HakMem.alloc(layout) };
            if !p.is_null() {
                // SAFETY: layout.size() bytes.
                unsafe { p.write_bytes(1, layout.size()) };
                some.push((p, layout));
            }
        }
        fault::fail_every(0);
        fault::fail_maps_after(u64::MAX);

        // Recovery: every path allocates again.
        for &layout in &layouts {
            // SAFETY: non-zero layout.
            let p = unsafe { HakMem.alloc(layout) };
            assert!(!p.is_null(), "{layout:?}: no recovery");
            // SAFETY: p is live.
            unsafe { HakMem.dealloc(p, layout) };
        }
        // SAFETY: p is live; now realloc can grow.
        let q = unsafe { HakMem.realloc(p, l(300_000, 8), 64 << 20) };
        assert!(!q.is_null());
        // SAFETY: q is live with the new layout.
        unsafe {
            assert!((0..300_000).all(|i| *q.add(i) == 0x5A));
            HakMem.dealloc(q, l(64 << 20, 8));
        }
        for (layout, v) in all {
            for (i, p) in v.into_iter().enumerate() {
                // SAFETY: blocks allocated above with this layout, freed once.
                unsafe {
                    assert_eq!(*p, (i % 251) as u8);
                    HakMem.dealloc(p, layout);
                }
            }
        }
        for (p, layout) in some {
            // SAFETY: live blocks with their layouts.
            unsafe { HakMem.dealloc(p, layout) };
        }
    })
    .join()
    .unwrap();
}

#[test]
fn tight_address_space_limit_fails_gracefully() {
    // In a child process (the limit cannot be lifted again), cap the address space and
    // allocate until null: the child must exit normally, not crash.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: fork in a test; the child only uses hakmem and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let lim = libc::rlimit {
            rlim_cur: 256 << 20,
            rlim_max: 256 << 20,
        };
        // SAFETY: setting our own limit.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
        let mut n = 0usize;
        let mut nulls = 0usize;
        for i in 0..100_000usize {
            let layout = l(1 + (i * 104_729) % (4 << 20), 8);
            // SAFETY: non-zero layout; blocks are leaked on purpose until memory runs out.
            let p = unsafe { HakMem.alloc(layout) };
            if p.is_null() {
                nulls += 1;
                if nulls > 100 {
                    break;
                }
            } else {
                n += 1;
            }
        }
        // SAFETY: leaving the child.
        unsafe { libc::_exit(if nulls > 0 && n > 0 { 0 } else { 3 }) };
    }
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child crashed: status {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}
