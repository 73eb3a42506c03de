//! Large blocks moved by `realloc` while other threads map and free large blocks: the
//! registry must never say "not ours" about a live block (issue 12, bug 1).
//!
//! Before the fix, `large_realloc` moved the pages with `mremap` and unmarked the old
//! range only afterwards; another thread could map a new block at the freed address in
//! between, and the late unmark erased its registration: its next `free` or
//! `usable_size` was refused as "not allocated by hakmem". Both patterns below failed
//! within a second on that code (the first in every run, the second within
//! milliseconds); each runs for a fixed time and stops at the first refusal.
//!
//! `HAKMEM_RACE_SECS` (default 2 per test) scales them.

use hakmem::raw;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn secs() -> Duration {
    let s = std::env::var("HAKMEM_RACE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0f64);
    Duration::from_secs_f64(s)
}

/// Check that `p` is accepted, with at least `size` usable bytes whose first and last
/// bytes hold `tag`.
fn check(p: *mut u8, size: usize, tag: u8, what: &str) {
    // SAFETY: `p` is a live block of at least `size` bytes (the property under test: the
    // registry must agree).
    let usable = unsafe { raw::usable_size(p) }
        .unwrap_or_else(|e| panic!("{what}: a live block of {size} bytes refused: {e:?}"));
    assert!(usable >= size, "{what}: usable {usable} < {size}");
    // SAFETY: as above.
    unsafe {
        assert_eq!(*p, tag, "{what}: first byte lost");
        assert_eq!(*p.add(size - 1), tag, "{what}: last byte lost");
    }
}

/// Four threads each grow a buffer by doubling up to 48 MiB with `realloc`, checking it
/// at every step, and free it; over and over.
#[test]
fn threads_growing_buffers_by_realloc() {
    let deadline = Instant::now() + secs();
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            thread::spawn(move || {
                let mut rounds = 0u64;
                while Instant::now() < deadline {
                    let mut size = 256 << 10;
                    let mut p = raw::malloc(size);
                    assert!(!p.is_null());
                    // SAFETY: `p` holds `size` bytes.
                    unsafe {
                        *p = t;
                        *p.add(size - 1) = t;
                    }
                    while size < 48 << 20 {
                        let next = size * 2;
                        // SAFETY: `p` is live; on success it is given up for the result.
                        p = unsafe { raw::realloc(p, next) }
                            .unwrap_or_else(|e| panic!("realloc of a live block refused: {e:?}"));
                        assert!(!p.is_null());
                        // SAFETY: the first `size` bytes moved with the block; the
                        // new tail is ours to write.
                        unsafe {
                            assert_eq!(*p.add(size - 1), t, "contents lost in realloc");
                            *p.add(next - 1) = t;
                        }
                        size = next;
                        check(p, size, t, "grown buffer");
                    }
                    // SAFETY: `p` is live.
                    unsafe { raw::free(p) }
                        .unwrap_or_else(|e| panic!("free of a live block refused: {e:?}"));
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let rounds: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("{rounds} buffers grown to 48 MiB in 4 threads");
    assert!(rounds > 0);
}

/// One thread moves a block by `realloc` (up and down, so the pages move) while another
/// mallocs, checks and frees 5 MiB blocks, which land at the addresses just vacated.
#[test]
fn realloc_moves_while_another_thread_maps() {
    let deadline = Instant::now() + secs();
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut moves = 0u64;
            // A block in between keeps the address space after the buffer taken, so
            // growing in place fails and the pages move.
            while !stop.load(Ordering::Relaxed) {
                let mut p = raw::malloc(1 << 20);
                assert!(!p.is_null());
                // SAFETY: `p` holds 1 MiB.
                unsafe { *p = 0xA5 };
                let blocker = raw::malloc(5 << 20);
                for size in [6 << 20, 13 << 20, 27 << 20] {
                    let old = p;
                    // SAFETY: `p` is live.
                    p = unsafe { raw::realloc(p, size) }
                        .unwrap_or_else(|e| panic!("realloc refused: {e:?}"));
                    assert!(!p.is_null());
                    moves += u64::from(p != old);
                    // SAFETY: `p` holds `size` bytes now.
                    unsafe { *p.add(size - 1) = 0xA5 };
                    check(p, size, 0xA5, "moved block");
                }
                // SAFETY: both live.
                unsafe {
                    raw::free(blocker).unwrap();
                    raw::free(p).unwrap();
                }
            }
            moves
        })
    };
    let mut blocks = 0u64;
    while Instant::now() < deadline {
        let mut live = [std::ptr::null_mut::<u8>(); 4];
        for (i, slot) in live.iter_mut().enumerate() {
            let p = raw::malloc(5 << 20);
            assert!(!p.is_null());
            // SAFETY: `p` holds 5 MiB.
            unsafe {
                *p = i as u8;
                *p.add((5 << 20) - 1) = i as u8;
            }
            *slot = p;
        }
        thread::yield_now();
        for (i, &p) in live.iter().enumerate() {
            check(p, 5 << 20, i as u8, "5 MiB block of the other thread");
            // SAFETY: live.
            unsafe { raw::free(p) }.unwrap_or_else(|e| panic!("free refused: {e:?}"));
            blocks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let moves = mover.join().unwrap();
    println!("{moves} moves by realloc, {blocks} blocks of 5 MiB checked");
    assert!(
        moves > 0,
        "the pages never moved: the test did not test anything"
    );
}
