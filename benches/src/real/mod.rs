//! Realistic workloads (`json`, `text`, `btree`, `arena`): small programs written with the
//! standard collections, `String`s and `serde_json`, so that the allocator sees the mix of
//! sizes, lifetimes and `realloc`s real Rust code makes rather than one synthetic pattern.
//!
//! They allocate through the global allocator like any Rust program (the allocator calls
//! are not counted): their *op* is a unit of work (a record, a word, a map operation, a
//! request; see each module). Each returns a checksum of what it computed, deterministic for
//! a seed and a number of ops and the same whatever the allocator (nothing depends on
//! addresses or on `HashMap` iteration order), so the work cannot be optimized away and a
//! contender that computed something else is caught (`cargo xtask bench` compares them).

pub mod arena;
pub mod btree;
pub mod json;
pub mod text;

use crate::measure::{Probe, Timer};
use crate::rng::{Rng, below};
use crate::workloads::{Outcome, Params};

/// Folds `v` into the running checksum `h` (order matters).
#[inline]
pub fn mix(h: u64, v: u64) -> u64 {
    crate::rng::splitmix64(h ^ v).wrapping_add(v)
}

/// FNV-1a of `bytes`: a hash that is the same in every process (unlike `HashMap`'s).
#[inline]
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "qua", "ba", "de", "fo", "gu", "hi",
    "jo", "pe", "ri", "su", "tan", "wen", "xo", "yu", "str",
];

/// A deterministic vocabulary of `n` words of 1 to 4 syllables (owned `String`s).
pub fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            let syl = 1 + below(r, 4) as usize;
            let mut w = String::new();
            for k in 0..syl {
                w.push_str(SYLLABLES[((r >> (32 + 5 * k)) % SYLLABLES.len() as u64) as usize]);
            }
            w
        })
        .collect()
}

/// A skewed pick in `0..n`: small indices are much more frequent (a word frequency of
/// roughly the shape of natural text).
#[inline]
pub fn skewed(r: u64, n: usize) -> usize {
    let top = 1 + below(r, n as u64);
    below(r >> 32, top) as usize
}

/// The ops of a document workload asked for `p.ops`: whole documents of `p.ws` items, at
/// least one unless `p.ops` is 0 (so that `--quick` still builds a full document).
pub fn document_ops(p: &Params) -> u64 {
    let per = p.ws.max(1) as u64;
    p.ops.div_ceil(per) * per
}

/// Runs a workload made of *documents*: `round(seed, index, items)` builds, uses and drops
/// one document of `items` work items and returns its checksum: [`document_ops`] items in
/// all, `p.ws` per document; the time cap is looked at between documents.
pub fn run_rounds(p: &Params, probe: Probe, round: fn(u64, u64, usize) -> u64) -> Outcome {
    let per = p.ws.max(1) as u64;
    let total = document_ops(p);
    let deadline = p.deadline();
    let t = Timer::start(probe);
    let (mut done, mut sum, mut k) = (0u64, 0u64, 0u64);
    while done < total {
        sum = mix(sum, round(p.seed, k, per as usize));
        done += per;
        k += 1;
        if deadline.passed() {
            break;
        }
    }
    let elapsed = t.stop();
    Outcome {
        ops: done,
        checksum: Some(sum),
        elapsed,
        ..Outcome::default()
    }
}
