//! Size classes: 16-byte steps up to 128 B, then four classes per doubling up to
//! [`MAX_SLAB_BLOCK`] (256 KiB). Worst-case internal waste is under 25% for every request
//! of 64 B and more (see `docs/size-classes.md`, checked by a test).

/// Number of size classes.
pub const NCLASS: usize = 52;
/// Classes `0..NTINY` hold blocks of at most [`TINY_MAX`] bytes (the tiny range).
pub const NTINY: usize = 20;
/// Largest tiny block.
pub const TINY_MAX: usize = 1024;
/// Largest block served from slabs; larger requests get dedicated mappings.
pub const MAX_SLAB_BLOCK: usize = 256 * 1024;
/// Largest alignment a slab block can honour (slabs start on 64 KiB boundaries).
pub const MAX_SLAB_ALIGN: usize = 64 * 1024;

/// Block size of class `c` (`c < NCLASS`).
#[inline]
pub const fn block_size(c: usize) -> usize {
    if c < 8 {
        16 * (c + 1)
    } else {
        let k = c - 8;
        let base = 128usize << (k / 4);
        base + (base >> 2) * (k % 4 + 1)
    }
}

/// The smallest class whose blocks hold `size` bytes (`size <= MAX_SLAB_BLOCK`; 0 is
/// treated as 1).
#[inline]
pub const fn class_of(size: usize) -> usize {
    if size <= 128 {
        if size == 0 { 0 } else { size.div_ceil(16) - 1 }
    } else {
        let s1 = size - 1;
        let msb = (usize::BITS - 1 - s1.leading_zeros()) as usize;
        let sub = (s1 >> (msb - 2)) & 3;
        8 + (msb - 7) * 4 + sub
    }
}

const fn build_tiny_table() -> [u8; TINY_MAX / 16 + 1] {
    let mut t = [0u8; TINY_MAX / 16 + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = class_of(i * 16) as u8;
        i += 1;
    }
    t
}

/// `TINY_CLASS[(size + 15) >> 4]` is `class_of(size)` for `size <= TINY_MAX`.
pub static TINY_CLASS: [u8; TINY_MAX / 16 + 1] = build_tiny_table();

/// The tiny class of `size` by table lookup (`size <= TINY_MAX`).
#[inline(always)]
pub fn tiny_class(size: usize) -> usize {
    // The index is at most TINY_MAX / 16 for size <= TINY_MAX; `get` keeps a bad caller
    // from reading out of bounds (it then gets the largest tiny class... never reached).
    match TINY_CLASS.get((size + 15) >> 4) {
        Some(&c) => c as usize,
        None => NTINY - 1,
    }
}

/// The smallest class that serves `size` bytes at alignment `align` (a power of two),
/// or `None` when the request needs a dedicated mapping. A class fits when its block
/// size is a multiple of `align` (blocks start at a 64 KiB-aligned slab start).
#[inline]
pub const fn class_for(size: usize, align: usize) -> Option<usize> {
    if size > MAX_SLAB_BLOCK || align > MAX_SLAB_ALIGN {
        return None;
    }
    let mut c = class_of(size);
    if align <= 16 {
        return Some(c);
    }
    while c < NCLASS {
        if block_size(c).is_multiple_of(align) {
            return Some(c);
        }
        c += 1;
    }
    None
}

/// log2 of the slab size of class `c`: 64 KiB, or bigger so that a slab holds at least
/// eight blocks, at most 2 MiB.
#[inline]
pub const fn slab_shift(c: usize) -> u32 {
    let want = block_size(c) * 8;
    let mut shift = 16;
    while (1usize << shift) < want && shift < 21 {
        shift += 1;
    }
    shift
}

const _: () = {
    assert!(block_size(NTINY - 1) == TINY_MAX);
    assert!(block_size(NTINY) > TINY_MAX);
    assert!(block_size(NCLASS - 1) == MAX_SLAB_BLOCK);
    assert!(class_of(TINY_MAX) == NTINY - 1);
    assert!(class_of(MAX_SLAB_BLOCK) == NCLASS - 1);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_increasing_multiples_of_16() {
        for c in 0..NCLASS {
            assert_eq!(block_size(c) % 16, 0);
            if c > 0 {
                assert!(block_size(c) > block_size(c - 1));
            }
        }
    }

    #[test]
    fn class_of_is_smallest_fit() {
        for size in 0..=MAX_SLAB_BLOCK {
            let c = class_of(size);
            assert!(block_size(c) >= size.max(1), "size {size}");
            if c > 0 {
                assert!(block_size(c - 1) < size, "size {size} class {c}");
            }
            if size <= TINY_MAX {
                assert_eq!(tiny_class(size), c);
            }
        }
    }

    #[test]
    fn waste_under_25_percent_from_64_bytes() {
        for size in 64..=MAX_SLAB_BLOCK {
            let bs = block_size(class_of(size));
            assert!((bs - size) * 4 < size, "size {size} -> {bs}");
        }
    }

    #[test]
    fn class_for_honours_alignment() {
        for &align in &[1usize, 2, 8, 16, 32, 64, 128, 256, 4096, 65536] {
            for size in [0usize, 1, 17, 100, 1000, 5000, 70000, 200000] {
                if let Some(c) = class_for(size, align) {
                    assert!(block_size(c) >= size);
                    assert_eq!(block_size(c) % align, 0);
                } else {
                    assert!(size > MAX_SLAB_BLOCK || align > MAX_SLAB_ALIGN);
                }
            }
        }
        assert_eq!(class_for(MAX_SLAB_BLOCK + 1, 8), None);
        assert_eq!(class_for(8, 128 * 1024), None);
    }

    #[test]
    fn slabs_hold_at_least_eight_blocks_or_are_max() {
        for c in 0..NCLASS {
            let s = 1usize << slab_shift(c);
            assert!(s / block_size(c) >= 8 || s == 2 << 20);
        }
    }
}
