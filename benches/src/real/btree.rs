//! `btree`: a `BTreeMap<u64, Box<Item>>` under churn, with objects of mixed lifetimes
//! around it. Each op inserts a key (a boxed item owning a `String` name and a `Vec<u32>`)
//! or removes it if present, over a key space of `2 * ws` keys (about `ws` live entries);
//! a `Vec<Box<Event>>` of short-lived objects gets one push per op and is emptied every 256
//! ops; a set of 1,024 long-lived boxed buffers (64 B..4 KiB) has one replaced every 16 ops.
//! The map's nodes, the items, their names and vectors are all separate allocations, freed
//! in an order unrelated to their allocation.
//!
//! One op = one map insert or remove. Everything is dropped at the end (timed).

use super::{fnv, mix};
use crate::measure::{Probe, Timer};
use crate::rng::{Rng, below};
use crate::workloads::{Outcome, Params};
use std::collections::BTreeMap;

struct Item {
    name: String,
    data: Vec<u32>,
}

struct Event {
    key: u64,
    seq: u64,
    _pad: [u64; 2],
}

const LONG: usize = 1_024;

/// Runs `p.ops` map operations; looks at the time cap every 4,096.
pub fn run(p: &Params, probe: Probe) -> Outcome {
    let keys = 2 * p.ws.max(1) as u64;
    let mut rng = Rng::new(p.seed, 0x4254_5245);
    let deadline = p.deadline();
    let t = Timer::start(probe);
    let mut map: BTreeMap<u64, Box<Item>> = BTreeMap::new();
    let mut events: Vec<Box<Event>> = Vec::new();
    let mut long: Vec<Box<[u8]>> = (0..LONG)
        .map(|i| vec![i as u8; 64 + i * 4].into_boxed_slice())
        .collect();
    let mut h = 0u64;
    let mut done = 0u64;
    while done < p.ops {
        let r = rng.next_u64();
        let key = below(r, keys);
        if let Some(it) = map.remove(&key) {
            h = h.wrapping_add(
                fnv(it.name.as_bytes()) ^ it.data.iter().map(|&x| u64::from(x)).sum::<u64>(),
            );
        } else {
            let len = below(r >> 32, 64) as usize;
            let mut data = Vec::new();
            for k in 0..len {
                data.push((key as u32).wrapping_mul(k as u32 + 1));
            }
            let name = format!("item-{key:x}-{}", "z".repeat(below(r >> 48, 32) as usize));
            map.insert(key, Box::new(Item { name, data }));
        }
        events.push(Box::new(Event {
            key,
            seq: done,
            _pad: [0; 2],
        }));
        if events.len() == 256 {
            h = events
                .drain(..)
                .fold(h, |a, e| a.wrapping_add(e.key ^ e.seq));
        }
        if done.is_multiple_of(16) {
            let i = below(r >> 16, LONG as u64) as usize;
            let size = 64 + below(r >> 24, 4096 - 64) as usize;
            h = h.wrapping_add(long[i].len() as u64);
            long[i] = vec![(r >> 8) as u8; size].into_boxed_slice();
        }
        done += 1;
        if done.is_multiple_of(4096) && deadline.passed() {
            break;
        }
    }
    let h = mix(h, map.len() as u64);
    let h = mix(h, map.keys().fold(0u64, |a, k| a.wrapping_add(*k)));
    drop(map);
    drop(events);
    drop(long);
    let elapsed = t.stop();
    Outcome {
        ops: done,
        checksum: Some(h),
        elapsed,
        ..Outcome::default()
    }
}
