//! A small deterministic PRNG for the workloads: xorshift64* seeded through splitmix64.
//!
//! It lives outside the allocator and costs a handful of instructions per op, the same for
//! every contender (the `floor` contender measures it together with the rest of the loop).

/// splitmix64: turns any seed (0 included) into a well-mixed 64-bit value.
#[inline]
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: one multiply per number, period 2^64 - 1.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` and `stream` (e.g. a thread index): distinct streams give
    /// unrelated sequences.
    pub fn new(seed: u64, stream: u64) -> Self {
        let s = splitmix64(seed ^ splitmix64(stream.wrapping_add(0x5851_F42D_4C95_7F2D)));
        Rng(if s == 0 { 0x2545_F491_4F6C_DD1D } else { s })
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Maps 32 random bits to `0..n` without a division (Lemire's multiply-shift).
#[inline(always)]
pub fn below(r32: u64, n: u64) -> u64 {
    ((r32 & 0xFFFF_FFFF) * n) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::new(42, 0);
        let mut b = Rng::new(42, 0);
        let mut c = Rng::new(42, 1);
        let mut same = 0;
        for _ in 0..1000 {
            let x = a.next_u64();
            assert_eq!(x, b.next_u64());
            if x == c.next_u64() {
                same += 1;
            }
            assert!(below(x, 400) < 400);
            assert!(below(x >> 32, 1009) < 1009);
        }
        assert_eq!(same, 0);
    }

    #[test]
    fn below_covers_the_range() {
        let mut r = Rng::new(1, 2);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[below(r.next_u64(), 10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
