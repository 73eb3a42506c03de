//! Multi-threaded stress: threads hand blocks to each other through queues in a ring;
//! every block carries a pattern derived from its id and size, verified on every hop and
//! before it is freed. Sizes cover tiny, mid and large blocks. Threads also come and go.
//!
//! `HAKMEM_STRESS_ROUNDS` (default 40,000 per thread) scales it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

struct Block {
    ptr: *mut u8,
    layout: Layout,
    id: u64,
}
// SAFETY: the block is exclusively owned by whoever holds this struct.
unsafe impl Send for Block {}

fn byte(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9E37_79B9) as usize ^ i.wrapping_mul(131)) as u8
}

fn make(id: u64, size: usize, align: usize) -> Block {
    let layout = Layout::from_size_align(size, align).unwrap();
    // SAFETY: non-zero-checked layout; the block is filled before anyone reads it.
    let ptr = unsafe { hakmem::HakMem.alloc(layout) };
    assert!(!ptr.is_null());
    assert_eq!(ptr as usize % align, 0);
    for i in (0..size).step_by(if size > 4096 { 257 } else { 1 }) {
        // SAFETY: i < size.
        unsafe { *ptr.add(i) = byte(id, i) };
    }
    Block { ptr, layout, id }
}

fn check(b: &Block) {
    let size = b.layout.size();
    for i in (0..size).step_by(if size > 4096 { 257 } else { 1 }) {
        // SAFETY: i < size; the block is ours.
        let got = unsafe { *b.ptr.add(i) };
        assert_eq!(
            got,
            byte(b.id, i),
            "block {} ({} B) corrupted at {i}",
            b.id,
            size
        );
    }
}

fn free(b: Block) {
    check(&b);
    // SAFETY: the block is live and ours.
    unsafe { hakmem::HakMem.dealloc(b.ptr, b.layout) };
}

fn unsent(e: std::sync::mpsc::TrySendError<Block>) -> Block {
    match e {
        std::sync::mpsc::TrySendError::Full(b) | std::sync::mpsc::TrySendError::Disconnected(b) => {
            b
        }
    }
}

fn size_for(r: u64) -> (usize, usize) {
    let size = match r % 100 {
        0..=79 => (r >> 8) as usize % 1025,
        80..=97 => 1025 + (r >> 8) as usize % (64 << 10),
        _ => (256 << 10) + (r >> 8) as usize % (2 << 20),
    };
    let align = if r.is_multiple_of(7) {
        1 << ((r >> 40) % 13)
    } else {
        8
    };
    (size, align)
}

fn worker(t: u64, n_threads: u64, rounds: u64, rx: Receiver<Block>, tx: SyncSender<Block>) {
    let mut rng = 0x1234_5678u64 ^ (t << 32);
    let mut local: Vec<Block> = Vec::new();
    for k in 0..rounds {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (size, align) = size_for(rng);
        let id = (k << 8) | t;
        let b = make(id, size, align);
        if rng.is_multiple_of(3) {
            // Hand it to the next thread (if its queue is full, keep it).
            if let Err(e) = tx.try_send(b) {
                local.push(unsent(e));
            }
        } else {
            local.push(b);
        }
        while let Ok(b) = rx.try_recv() {
            check(&b);
            if b.id % 5 == 0 && n_threads > 1 {
                if let Err(e) = tx.try_send(b) {
                    free(unsent(e));
                }
            } else {
                free(b);
            }
        }
        if local.len() > 200 {
            let i = (rng as usize >> 3) % local.len();
            free(local.swap_remove(i));
        }
    }
    for b in local {
        free(b);
    }
}

#[test]
fn ring_of_threads_hands_blocks_over() {
    let rounds: u64 = std::env::var("HAKMEM_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let n = 4u64;
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..n {
        let (tx, rx) = sync_channel::<Block>(1024);
        txs.push(tx);
        rxs.push(Some(rx));
    }
    let hs: Vec<_> = (0..n)
        .map(|t| {
            let rx = rxs[t as usize].take().unwrap();
            let tx = txs[((t + 1) % n) as usize].clone();
            thread::spawn(move || {
                worker(t, n, rounds, rx, tx);
            })
        })
        .collect();
    drop(txs);
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn threads_come_and_go_while_others_free_their_blocks() {
    let (tx, rx) = sync_channel::<Block>(4096);
    let freer = thread::spawn(move || {
        let mut n = 0u64;
        while let Ok(b) = rx.recv() {
            free(b);
            n += 1;
        }
        n
    });
    let mut sent = 0u64;
    for wave in 0..50u64 {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut s = 0;
                    for k in 0..400u64 {
                        let r =
                            (wave * 7919 + t * 104729 + k * 31).wrapping_mul(0x2545_F491_4F6C_DD1D);
                        let (size, align) = size_for(r);
                        let b = make((wave << 24) | (t << 16) | k, size, align);
                        if k % 2 == 0 {
                            tx.send(b).unwrap();
                            s += 1;
                        } else {
                            free(b);
                        }
                    }
                    s
                })
            })
            .collect();
        for h in hs {
            sent += h.join().unwrap();
        }
    }
    drop(tx);
    assert_eq!(freer.join().unwrap(), sent);
}
