//! The shadow model's pieces: the fill pattern of a block, which bytes of a block are
//! written and checked, and the map of live address ranges (no two live blocks overlap).

use std::collections::BTreeMap;

/// Blocks whose usable size is at most this are written and checked whole; bigger ones
/// are sampled (see [`ranges`]).
pub const FULL: usize = 16 * 1024;

/// Bytes written and checked whole at both ends of a sampled block, and around its size.
const EDGE: usize = 1024;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The pattern word `k` (bytes `8k..8k+8`) of the block with key `key`.
#[inline]
fn word(key: u64, k: usize) -> u64 {
    (key ^ (k as u64).wrapping_mul(K)).rotate_left((k & 31) as u32)
}

/// The pattern byte at offset `off` of the block with key `key`.
#[inline]
pub fn byte(key: u64, off: usize) -> u8 {
    word(key, off / 8).to_le_bytes()[off % 8]
}

/// The ranges of a block of `size` bytes and `usable` usable bytes that the model writes
/// and checks, in increasing order of start (they may overlap): the whole block when
/// `usable <= FULL`; else its first and last KiB, the KiB on each side of `size`, and one
/// 8-byte word every `stride` bytes, `stride` a power of two that gives about 2,048
/// samples up to 1 MiB (at least 64 bytes apart), about 512 beyond (each touches a page:
/// large blocks cost page faults, not comparisons).
pub fn ranges(size: usize, usable: usize, mut f: impl FnMut(usize, usize) -> bool) -> bool {
    if usable <= FULL {
        return usable == 0 || f(0, usable);
    }
    if !f(0, EDGE) {
        return false;
    }
    let stride = if usable <= 1 << 20 {
        (usable / 2048).next_power_of_two().max(64)
    } else {
        (usable / 512).next_power_of_two()
    };
    let mut off = stride;
    let around = (
        size.saturating_sub(EDGE).max(EDGE),
        (size + EDGE).min(usable),
    );
    let mut around_done = around.0 >= around.1;
    while off + 8 <= usable - EDGE {
        if !around_done && around.0 <= off {
            if !f(around.0, around.1) {
                return false;
            }
            around_done = true;
        }
        if !f(off, off + 8) {
            return false;
        }
        off += stride;
    }
    if !around_done && !f(around.0, around.1) {
        return false;
    }
    f(usable - EDGE, usable)
}

/// Writes the pattern of `key` over `p[from..to]`.
///
/// # Safety
/// `p[from..to]` is writable.
pub unsafe fn fill(p: *mut u8, key: u64, from: usize, to: usize) {
    let mut off = from;
    while off < to && !off.is_multiple_of(8) {
        // SAFETY: `from <= off < to` (the caller's range).
        unsafe { p.add(off).write(byte(key, off)) };
        off += 1;
    }
    while off + 8 <= to {
        // SAFETY: as above; unaligned writes are fine.
        unsafe {
            p.add(off)
                .cast::<u64>()
                .write_unaligned(word(key, off / 8).to_le())
        };
        off += 8;
    }
    while off < to {
        // SAFETY: as above.
        unsafe { p.add(off).write(byte(key, off)) };
        off += 1;
    }
}

/// A byte that differs from what the model expects.
#[derive(Clone, Copy, Debug)]
pub struct Mismatch {
    /// Offset in the block.
    pub off: usize,
    /// What the model expects there.
    pub want: u8,
    /// What the block holds.
    pub got: u8,
}

/// Checks `p[from..to]` against the pattern of `key` (or zero, when `key` is `None`).
///
/// # Safety
/// `p[from..to]` is readable.
pub unsafe fn check(
    p: *const u8,
    key: Option<u64>,
    from: usize,
    to: usize,
) -> Result<(), Mismatch> {
    let want = |off: usize| key.map_or(0, |k| byte(k, off));
    let mut off = from;
    while off < to {
        if off.is_multiple_of(8) {
            // Whole words first (the common case), byte by byte only where one differs.
            let mut good = true;
            while off + 8 <= to {
                // SAFETY: `from <= off`, `off + 8 <= to` (the caller's range).
                let got = unsafe { p.add(off).cast::<u64>().read_unaligned() };
                let exp = match key {
                    Some(k) => word(k, off / 8).to_le(),
                    None => 0,
                };
                if got != exp {
                    good = false;
                    break;
                }
                off += 8;
            }
            if good && off >= to {
                break;
            }
        }
        // SAFETY: `from <= off < to`.
        let got = unsafe { p.add(off).read() };
        if got != want(off) {
            return Err(Mismatch {
                off,
                want: want(off),
                got,
            });
        }
        off += 1;
    }
    Ok(())
}

/// The address ranges of live blocks (their whole usable size), for the no-overlap
/// check. A block leaves the map before it is given back to the allocator and enters it
/// after the allocator returned it, so an overlap found is a real one.
#[derive(Default)]
pub struct Intervals {
    /// start -> (end, block id).
    map: BTreeMap<usize, (usize, u64)>,
}

impl Intervals {
    /// Adds `[start, end)` for block `id`; the block it overlaps, if any, is returned
    /// (as `(start, end, id)`) and nothing is added.
    pub fn insert(&mut self, start: usize, end: usize, id: u64) -> Result<(), (usize, usize, u64)> {
        if let Some((&s, &(e, other))) = self.map.range(..end).next_back()
            && e > start
        {
            return Err((s, e, other));
        }
        self.map.insert(start, (end, id));
        Ok(())
    }

    /// Removes the block starting at `start`; false if it was not there.
    pub fn remove(&mut self, start: usize, id: u64) -> bool {
        match self.map.get(&start) {
            Some(&(_, i)) if i == id => {
                self.map.remove(&start);
                true
            }
            _ => false,
        }
    }

    /// Live blocks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No live block.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_edges_and_stay_inside() {
        for &(size, usable) in &[
            (0usize, 16usize),
            (100, 112),
            (FULL, FULL),
            (FULL + 1, FULL + 4096),
            (300_000, 4 << 20),
            (48 << 20, 52 << 20),
        ] {
            let mut seen = Vec::new();
            ranges(size, usable, |a, b| {
                assert!(a < b && b <= usable, "{a}..{b} of {usable}");
                seen.push((a, b));
                true
            });
            assert!(!seen.is_empty());
            assert_eq!(seen[0].0, 0);
            assert_eq!(seen.last().unwrap().1, usable);
            assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
            if usable > FULL {
                assert!(seen.len() > 100 && seen.len() < 3000, "{}", seen.len());
            }
        }
    }

    #[test]
    fn fill_then_check() {
        let mut v = vec![0u8; 300];
        // SAFETY: in bounds.
        unsafe {
            fill(v.as_mut_ptr(), 7, 3, 290);
            check(v.as_ptr(), Some(7), 3, 290).unwrap();
            check(v.as_ptr(), Some(8), 3, 290).unwrap_err();
            check(v.as_ptr(), None, 0, 3).unwrap();
            check(v.as_ptr(), None, 290, 300).unwrap();
            v[100] ^= 1;
            let m = check(v.as_ptr(), Some(7), 3, 290).unwrap_err();
            assert_eq!(m.off, 100);
            assert_eq!(m.want ^ 1, m.got);
        }
    }

    #[test]
    fn intervals_refuse_overlap() {
        let mut m = Intervals::default();
        m.insert(100, 200, 1).unwrap();
        m.insert(200, 300, 2).unwrap();
        m.insert(0, 100, 3).unwrap();
        assert_eq!(m.insert(150, 160, 4), Err((100, 200, 1)));
        assert_eq!(m.insert(50, 120, 4), Err((100, 200, 1)));
        assert_eq!(m.insert(299, 400, 4), Err((200, 300, 2)));
        assert!(!m.remove(100, 2));
        assert!(m.remove(100, 1));
        m.insert(150, 160, 4).unwrap();
        assert_eq!(m.len(), 3);
    }
}
