//! What the programs ask for: sizes that hit every size-class boundary, the box limits
//! and the large range, and alignments from 8 B to 16 MiB.

use super::rng::{Rng, below};
use hakmem_ss_allocation::class::{self, MAX_SLAB_ALIGN, MAX_SLAB_BLOCK, NCLASS, TINY_MAX};

/// 1 MiB.
pub const MIB: usize = 1 << 20;
/// A superslab, and the unit of a large mapping.
pub const UNIT: usize = 4 * MIB;
/// The header in front of a large block.
const LARGE_HEADER: usize = 64;

/// A number in `0..n` from the generator.
#[inline]
pub fn pick(rng: &mut Rng, n: u64) -> u64 {
    below(rng.next_u64() >> 32, n)
}

/// A size in `lo..=hi`, log-uniform.
pub fn log_uniform(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let (llo, lhi) = ((lo.max(1) as f64).ln(), (hi as f64).ln());
    let x = llo + (lhi - llo) * (pick(rng, 1 << 30) as f64 / (1u64 << 30) as f64);
    (x.exp() as usize).clamp(lo, hi)
}

/// Sizes at the edges of the boxes and of large mappings.
const LIMITS: [usize; 16] = [
    TINY_MAX - 1,
    TINY_MAX,
    TINY_MAX + 1,
    MAX_SLAB_ALIGN - 1,
    MAX_SLAB_ALIGN,
    MAX_SLAB_ALIGN + 1,
    MAX_SLAB_BLOCK - 1,
    MAX_SLAB_BLOCK,
    MAX_SLAB_BLOCK + 1,
    UNIT - LARGE_HEADER - 1,
    UNIT - LARGE_HEADER,
    UNIT - LARGE_HEADER + 1,
    UNIT,
    2 * UNIT - LARGE_HEADER,
    2 * UNIT - LARGE_HEADER + 1,
    4096 - 1,
];

/// A class boundary +-1: `block_size(c) - 1`, `block_size(c)` or `block_size(c) + 1`.
pub fn boundary(rng: &mut Rng) -> usize {
    let c = pick(rng, NCLASS as u64) as usize;
    class::block_size(c) - 1 + pick(rng, 3) as usize
}

/// A size for a new block: 1.5% 0, 45% tiny, 20% a class boundary +-1, 5% a box or
/// mapping limit, 24% mid, 6% large (1% above 8 MiB); with `large_heavy`, half of the
/// draws are large.
pub fn size(rng: &mut Rng, large_heavy: bool) -> usize {
    let r = pick(rng, 1000);
    let r = if large_heavy && r >= 500 {
        940 + r % 60
    } else {
        r
    };
    match r {
        0..15 => 0,
        15..250 => 1 + pick(rng, 128) as usize,
        250..450 => 1 + pick(rng, TINY_MAX as u64) as usize,
        450..650 => boundary(rng),
        650..700 => LIMITS[pick(rng, LIMITS.len() as u64) as usize],
        700..940 => log_uniform(rng, TINY_MAX + 1, MAX_SLAB_BLOCK),
        940..990 => log_uniform(rng, MAX_SLAB_BLOCK + 1, 8 * MIB),
        _ => log_uniform(rng, 8 * MIB, 32 * MIB),
    }
}

/// An alignment for a new block: 0 (none: `malloc`-style) or a power of two from 8 B to
/// 16 MiB, most of them small.
pub fn align(rng: &mut Rng) -> usize {
    match pick(rng, 100) {
        0..60 => 0,
        60..90 => 8 << pick(rng, 10),      // 8 B ..= 4 KiB
        90..97 => 8192 << pick(rng, 4),    // 8 KiB ..= 64 KiB (the slab limit)
        _ => (128 * 1024) << pick(rng, 8), // 128 KiB ..= 16 MiB
    }
}

/// The new size of a block of `size` bytes for a `realloc`: grow or shrink by a few
/// bytes, to a neighbouring class boundary, double, halve, across the boxes, to tiny.
pub fn resize(rng: &mut Rng, size: usize, large_heavy: bool) -> usize {
    match pick(rng, 12) {
        0 => size + 1 + pick(rng, 16) as usize,
        1 => size.saturating_sub(1 + pick(rng, 16) as usize),
        2 => {
            // The class boundary just above (or at) the size, +-1.
            let c = if size > MAX_SLAB_BLOCK {
                NCLASS - 1
            } else {
                class::class_of(size)
            };
            class::block_size(c) - 1 + pick(rng, 3) as usize
        }
        3 => {
            let c = if size > MAX_SLAB_BLOCK || size == 0 {
                0
            } else {
                (class::class_of(size) + 1).min(NCLASS - 1)
            };
            class::block_size(c) + pick(rng, 2) as usize
        }
        4 | 5 => size.saturating_mul(2).max(1),
        6 => size / 2,
        7 => 1 + pick(rng, 64) as usize,
        8 => MAX_SLAB_BLOCK - 1 + pick(rng, 3) as usize,
        9 => log_uniform(rng, MAX_SLAB_BLOCK + 1, 8 * MIB),
        _ => self::size(rng, large_heavy),
    }
}

/// Sizes no allocator can give (beyond the 47-bit address space, or overflowing).
pub const HUGE: [usize; 5] = [
    1 << 48,
    1 << 62,
    isize::MAX as usize - 4095,
    usize::MAX - 15,
    usize::MAX,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_boundary_and_range_is_drawn() {
        let mut rng = Rng::new(1, 2);
        let mut classes = [false; NCLASS];
        let (mut zero, mut large, mut big) = (false, false, false);
        for _ in 0..200_000 {
            let s = size(&mut rng, false);
            if s == 0 {
                zero = true;
            } else if s <= MAX_SLAB_BLOCK {
                classes[class::class_of(s)] = true;
            } else if s > 8 * MIB {
                big = true;
            } else {
                large = true;
            }
            assert!(s <= 32 * MIB);
            let a = align(&mut rng);
            assert!(a == 0 || (a.is_power_of_two() && (8..=16 * MIB).contains(&a)));
        }
        assert!(zero && large && big);
        assert!(classes.iter().all(|&c| c), "{classes:?}");
    }
}
