//! hakmem as the `#[global_allocator]` of a whole test program: std collections,
//! strings and maps, threads with channels (cross-thread frees), and fork in a threaded
//! process. (Thousands of short-lived threads with the RSS checked are in
//! `thread_churn_rss.rs`, a process of their own: the RSS is the whole process's.)
//!
//! `HAKMEM_CHANNEL_MSGS` (default 30,000) scales the channel test (the sanitizer runs,
//! `cargo xtask sanitize`, make it smaller).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc;
use std::thread;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

#[test]
fn collections_strings_maps() {
    let mut v: Vec<String> = Vec::new();
    for i in 0..50_000 {
        v.push(format!("item-{i}-{}", "x".repeat(i % 300)));
    }
    let mut m: HashMap<String, usize> = HashMap::new();
    for (i, s) in v.iter().enumerate() {
        m.insert(s.clone(), i);
    }
    let mut b: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for i in 0..20_000usize {
        b.insert(i, vec![(i % 251) as u8; i % 5000]);
    }
    for (i, s) in v.iter().enumerate() {
        assert_eq!(m[s], i);
    }
    for (i, val) in &b {
        assert_eq!(val.len(), i % 5000);
        assert!(val.iter().all(|&x| x == (i % 251) as u8));
    }
    let mut q: VecDeque<Box<[u64]>> = VecDeque::new();
    for i in 0..100_000u64 {
        q.push_back(vec![i; (i % 64) as usize].into_boxed_slice());
        if q.len() > 1000 {
            let x = q.pop_front().unwrap();
            let id = i - 1000;
            assert_eq!(x.len(), (id % 64) as usize);
            assert!(x.iter().all(|&y| y == id));
        }
    }
    // Big vectors grow by realloc through every size range.
    let mut big: Vec<u32> = Vec::new();
    for i in 0..5_000_000u32 {
        big.push(i);
    }
    assert!(big.iter().enumerate().all(|(i, &x)| x == i as u32));
    let s: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    assert_eq!(s.len(), 100_000);
}

#[test]
fn channels_move_blocks_between_threads() {
    let msgs: usize = std::env::var("HAKMEM_CHANNEL_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(256);
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    let producer = thread::spawn(move || {
        for i in 0..msgs {
            let n = [8, 100, 1000, 5000, 70_000, 300_000][i % 6];
            tx.send(vec![(i % 256) as u8; n]).unwrap();
            if i % 1000 == 0 {
                while back_rx.try_recv().is_ok() {}
            }
        }
    });
    let consumer = thread::spawn(move || {
        let mut i = 0usize;
        while let Ok(v) = rx.recv() {
            assert!(
                v.iter().all(|&x| x == (i % 256) as u8),
                "block {i} corrupted"
            );
            if i.is_multiple_of(7) {
                let _ = back_tx.send(v);
            }
            i += 1;
        }
        i
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), msgs);
}

#[test]
fn fork_in_a_threaded_process() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hs: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut v: Vec<Vec<u8>> = Vec::new();
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    v.push(vec![t as u8; 1 + i % 2000]);
                    if v.len() > 500 {
                        v.clear();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..8 {
        // SAFETY: fork in a test; the child only allocates and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut ok = true;
            let mut v: Vec<Box<[u8]>> = Vec::new();
            for i in 0..20_000usize {
                v.push(vec![(i % 256) as u8; 1 + i % 4000].into_boxed_slice());
            }
            for (i, b) in v.iter().enumerate() {
                ok &= b.iter().all(|&x| x == (i % 256) as u8);
            }
            let t = thread::spawn(|| vec![1u8; 100_000].len()).join().unwrap();
            ok &= t == 100_000;
            // SAFETY: leaving the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed: {status}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn stats_count_syscalls() {
    let before = hakmem::stats();
    let v = vec![0u8; 64 << 20];
    let mid = hakmem::stats();
    assert!(mid.mmap > before.mmap);
    drop(v);
    assert!(hakmem::stats().syscalls() >= mid.syscalls());
}
