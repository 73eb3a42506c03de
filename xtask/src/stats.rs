//! Every statistic of the xtask commands, in one place: order statistics (median,
//! percentiles, min/max), moments (mean, sample variance, CV), the geometric mean (`bench`'s
//! summary), and the differences of two samples with their 95% intervals (`ab`: bootstrap
//! of the medians, Welch's t on the means, and the normal and t quantiles they need).
//! `bench`, `soak` and `ab` all use these; none has a statistic of its own.

use hakmem_bench::rng::{Rng, below};

/// `xs` sorted (NaN last, by `total_cmp`).
fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Median of `xs` (mean of the two middle values for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let v = sorted(xs);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile `q` (0..=1) of `xs` by linear interpolation between order statistics; NaN
/// when empty.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let v = sorted(xs);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Arithmetic mean; NaN when empty.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Sample variance of `xs` around their mean `mu` (divided by n - 1).
fn variance(xs: &[f64], mu: f64) -> f64 {
    xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0)
}

/// Coefficient of variation: sample standard deviation over the mean (0 for one sample).
pub fn cv(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let mu = mean(xs);
    if mu == 0.0 {
        0.0
    } else {
        variance(xs, mu).sqrt() / mu
    }
}

/// Smallest and largest of `xs`.
pub fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Geometric mean of the finite, positive values of `xs`; NaN when there are none.
pub fn geomean(xs: &[f64]) -> f64 {
    let v: Vec<f64> = xs
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// A 95% confidence interval (low, high), in percent of B against A.
pub type Ci = (f64, f64);

/// The difference of B's median against A's, percent.
pub fn median_diff(a: &[f64], b: &[f64]) -> f64 {
    (median(b) / median(a) - 1.0) * 100.0
}

/// 95% percentile-bootstrap CI of [`median_diff`]: `iters` resamples of each side (with
/// replacement), deterministic for a seed.
pub fn bootstrap_ci(a: &[f64], b: &[f64], iters: usize, seed: u64) -> Ci {
    let mut rng = Rng::new(seed, 7);
    let mut diffs = Vec::with_capacity(iters);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    for _ in 0..iters {
        for x in ra.iter_mut() {
            *x = a[below(rng.next_u64() >> 32, a.len() as u64) as usize];
        }
        for x in rb.iter_mut() {
            *x = b[below(rng.next_u64() >> 32, b.len() as u64) as usize];
        }
        diffs.push(median_diff(&ra, &rb));
    }
    (percentile(&diffs, 0.025), percentile(&diffs, 0.975))
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub fn norm_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -norm_quantile(1.0 - p)
    }
}

/// Student's t quantile for `df` degrees of freedom (Cornish-Fisher expansion around the
/// normal quantile; within 0.5% of the exact value for df >= 3).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let z = norm_quantile(p);
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df.powi(2))
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / (92160.0 * df.powi(4))
}

/// Welch's 95% CI of (mean B - mean A) / mean A, percent; and the point estimate.
pub fn welch_ci(a: &[f64], b: &[f64]) -> (f64, Ci) {
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (
        variance(a, ma) / a.len() as f64,
        variance(b, mb) / b.len() as f64,
    );
    let se = (va + vb).sqrt();
    let df = if va + vb > 0.0 {
        (va + vb).powi(2)
            / (va.powi(2) / (a.len() as f64 - 1.0) + vb.powi(2) / (b.len() as f64 - 1.0))
    } else {
        1e9
    };
    let t = t_quantile(0.975, df.max(1.0));
    let d = mb - ma;
    (
        d / ma * 100.0,
        ((d - t * se) / ma * 100.0, (d + t * se) / ma * 100.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(cv(&[5.0]), 0.0);
        assert!((cv(&[9.0, 10.0, 11.0]) - 0.1).abs() < 1e-12);
        assert_eq!(min_max(&[2.0, -1.0, 7.0]), (-1.0, 7.0));
        assert!((geomean(&[2.0, 8.0]) - 4.0).abs() < 1e-12);
        assert!(geomean(&[f64::NAN]).is_nan());
    }

    #[test]
    fn quantiles() {
        assert!((norm_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!((norm_quantile(0.5)).abs() < 1e-12);
        assert!((norm_quantile(0.01) + 2.326348).abs() < 1e-5);
        // Exact t(0.975): df 5: 2.5706, df 10: 2.2281, df 30: 2.0423.
        for (df, t) in [(5.0, 2.5706), (10.0, 2.2281), (30.0, 2.0423)] {
            let q = t_quantile(0.975, df);
            assert!((q - t).abs() / t < 0.005, "df {df}: {q} vs {t}");
        }
    }
}
