//! Tests over many comparisons at once: p-values of the paired statistics of
//! [`super::paired`] and the Benjamini–Hochberg procedure that keeps the
//! false discovery rate of a whole history (cases × commits) at a chosen rate.
//!
//! * [`signed_rank_p`]: the two-sided p-value of the Wilcoxon signed-rank test
//!   on the per-round log-ratios, the test whose inversion gives
//!   [`paired_ratio`](super::paired::paired_ratio)'s interval: the interval at
//!   level `1 - α` excludes 1 exactly when this p-value is at most `α` (up to
//!   the discreteness of the exact distribution).
//! * [`geometric_mean_p`]: the p-value of the suite's geometric mean, by
//!   inverting the same seeded percentile bootstrap as
//!   [`geometric_mean`](super::paired::geometric_mean).
//! * [`benjamini_hochberg`]: which of `m` hypotheses are rejected at false
//!   discovery rate `q`, and the level of the false-coverage-adjusted
//!   intervals of the rejected ones (Benjamini & Yekutieli 2005: `1 - R q / m`).
//!
//! Pure functions: no I/O, randomness only from an explicit seed.

use super::paired::{paired_log_ratios, signed_rank_counts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Two-sided p-value of the Wilcoxon signed-rank test of "REF/BASE = 1" on
/// paired rounds (values in ns/pkt; rounds without a ratio are left out).
///
/// Rounds with a log-ratio of exactly 0 are dropped (Wilcoxon's convention).
/// Exact for up to 30 rounds without tied absolute values (the distribution of
/// the positive rank sum counted by dynamic programming); otherwise the normal
/// approximation with continuity correction and the tie-corrected variance.
/// With no usable round the p-value is 1.
pub fn signed_rank_p(base: &[f64], reference: &[f64]) -> f64 {
    let d: Vec<f64> = paired_log_ratios(base, reference).into_iter().filter(|x| *x != 0.0).collect();
    let n = d.len();
    if n == 0 {
        return 1.0;
    }
    // Average ranks of |d|.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs()));
    let mut ranks = vec![0.0; n];
    let mut ties = false;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[order[j + 1]].abs() == d[order[i]].abs() {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        let t = (j - i + 1) as f64;
        if t > 1.0 {
            ties = true;
            tie_term += t * t * t - t;
        }
        i = j + 1;
    }
    let w_plus: f64 = (0..n).filter(|&k| d[k] > 0.0).map(|k| ranks[k]).sum();
    if n <= 30 && !ties {
        let w = w_plus.round() as usize;
        let counts = signed_rank_counts(n);
        let total = (1u64 << n) as f64;
        let below: u64 = counts[..=w].iter().sum();
        let above: u64 = counts[w..].iter().sum();
        return (2.0 * below.min(above) as f64 / total).min(1.0);
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((w_plus - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * upper_normal_tail(z)).min(1.0)
}

/// `P(Z > z)` for a standard normal `Z`, `z ≥ 0` (W. J. Cody's rational
/// approximation of erfc as in Numerical Recipes' `erfcc`, relative error
/// below 1.2e-7: ample for p-values).
fn upper_normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    0.5 * t * poly.exp()
}

/// Two-sided p-value of "the suite's geometric mean of REF/BASE is 1": the
/// seeded percentile bootstrap of [`geometric_mean`](super::paired::geometric_mean)
/// (rounds resampled within each case, the mean over cases of each case's
/// median log-ratio), inverted: `2 · min(share ≤ 0, share ≥ 0)`, with the
/// usual `+1` so that a p-value is never 0. Cases without a usable round are
/// left out; with none the p-value is 1.
pub fn geometric_mean_p(cases: &[(&[f64], &[f64])], iterations: usize, seed: u64) -> f64 {
    let logs: Vec<Vec<f64>> = cases.iter().map(|(b, r)| paired_log_ratios(b, r)).filter(|l| !l.is_empty()).collect();
    if logs.is_empty() || iterations == 0 {
        return 1.0;
    }
    let k = logs.len() as f64;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut at_or_below, mut at_or_above) = (0usize, 0usize);
    let mut resample = Vec::new();
    for _ in 0..iterations {
        let mut sum = 0.0;
        for case in &logs {
            resample.clear();
            resample.extend((0..case.len()).map(|_| case[rng.gen_range(0..case.len())]));
            sum += super::median(&resample);
        }
        let mean = sum / k;
        at_or_below += usize::from(mean <= 0.0);
        at_or_above += usize::from(mean >= 0.0);
    }
    let tail = (at_or_below.min(at_or_above) + 1) as f64 / (iterations + 1) as f64;
    (2.0 * tail).min(1.0)
}

/// The outcome of [`benjamini_hochberg`].
#[derive(Debug, Clone, PartialEq)]
pub struct Discoveries {
    /// Per hypothesis, in input order: rejected ("a discovery").
    pub rejected: Vec<bool>,
    /// The largest p-value rejected against: `R q / m` (0 when none).
    pub cutoff: f64,
    /// Level of the false-coverage-rate adjusted intervals of the rejected
    /// hypotheses, `1 - R q / m` (Benjamini & Yekutieli 2005): over the
    /// selected ones, the expected share of intervals missing their true value
    /// stays at most `q`. With nothing rejected: `1 - q / m`, the level a
    /// single rejection would have.
    pub interval_level: f64,
}

/// The Benjamini–Hochberg step-up procedure at false discovery rate `q`:
/// with p-values sorted `p(1) ≤ … ≤ p(m)`, reject the `k` smallest for the
/// largest `k` with `p(k) ≤ k q / m`. Valid for independent tests and for
/// positively dependent ones (PRDS), as the cases of one build pair are.
/// Non-finite p-values are never rejected (they count in `m`).
///
/// # Panics
///
/// If `q` is not strictly between 0 and 1.
pub fn benjamini_hochberg(p_values: &[f64], q: f64) -> Discoveries {
    assert!(q > 0.0 && q < 1.0, "false discovery rate must be in (0, 1), got {q}");
    let m = p_values.len();
    if m == 0 {
        return Discoveries { rejected: vec![], cutoff: 0.0, interval_level: 1.0 - q };
    }
    let mut order: Vec<usize> = (0..m).filter(|&i| p_values[i].is_finite()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mf = m as f64;
    let k = order
        .iter()
        .enumerate()
        .filter(|(rank, &i)| p_values[i] <= (rank + 1) as f64 * q / mf)
        .map(|(rank, _)| rank + 1)
        .max()
        .unwrap_or(0);
    let mut rejected = vec![false; m];
    for &i in &order[..k] {
        rejected[i] = true;
    }
    let cutoff = k as f64 * q / mf;
    let interval_level = 1.0 - k.max(1) as f64 * q / mf;
    Discoveries { rejected, cutoff, interval_level }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::paired::{paired_ratio, MIN_PAIRED_ROUNDS};

    #[test]
    fn signed_rank_p_matches_published_values() {
        // All 8 differences positive: W+ = 36, P = 2 / 2^8 = 0.0078125 (the
        // smallest two-sided p-value of 8 rounds).
        let base = vec![100.0; 8];
        let slower: Vec<f64> = (1..=8).map(|i| 100.0 + i as f64).collect();
        assert!((signed_rank_p(&base, &slower) - 0.0078125).abs() < 1e-12);
        assert!((signed_rank_p(&slower, &base) - 0.0078125).abs() < 1e-12);
        // n = 10, W+ = 8 (ranks 1, 3, 4 positive): P(W ≤ 8) = 25 / 1024 by
        // enumeration (Wilcoxon's tables: 0.0244), two-sided 0.0488.
        let d = [0.01, -0.02, 0.03, 0.04, -0.05, -0.06, -0.07, -0.08, -0.09, -0.10];
        let reference: Vec<f64> = d.iter().map(|x: &f64| 100.0 * x.exp()).collect();
        assert!((signed_rank_p(&[100.0; 10], &reference) - 50.0 / 1024.0).abs() < 1e-12);
        // Nothing usable, or all equal: no evidence.
        assert_eq!(signed_rank_p(&[], &[]), 1.0);
        assert_eq!(signed_rank_p(&[5.0, 5.0], &[5.0, 5.0]), 1.0);
    }

    #[test]
    fn signed_rank_p_agrees_with_the_interval_it_inverts() {
        // Seeded noise around several true shifts: the 95 % interval excludes
        // 1 exactly when p ≤ 0.05 (both from the exact signed-rank law).
        let mut rng = StdRng::seed_from_u64(7);
        for trial in 0..400 {
            let n = MIN_PAIRED_ROUNDS + trial % 20;
            let shift = [0.0, 0.005, 0.01, 0.03][trial % 4];
            let base: Vec<f64> = (0..n).map(|_| 100.0 * (1.0 + 0.05 * rng.gen::<f64>())).collect();
            let reference: Vec<f64> =
                base.iter().map(|b| b * (shift + 0.02 * (rng.gen::<f64>() - 0.5)).exp()).collect();
            let est = paired_ratio(&base, &reference, 0.95);
            let p = signed_rank_p(&base, &reference);
            let excludes = est.lo > 1.0 || est.hi < 1.0;
            assert_eq!(excludes, p <= 0.05, "n {n} shift {shift}: p {p}, interval [{}, {}]", est.lo, est.hi);
        }
    }

    #[test]
    fn normal_tail_is_accurate() {
        for (z, want) in [(0.0, 0.5), (1.959_963_984_540_054, 0.025), (2.575_829_303_548_901, 0.005), (4.0, 3.167e-5)] {
            let got = upper_normal_tail(z);
            assert!((got - want).abs() / want < 1e-3, "z {z}: {got} vs {want}");
        }
        // Large n uses the approximation: 40 positive rounds is far below 1e-6.
        let base = vec![100.0; 40];
        let reference: Vec<f64> = (1..=40).map(|i| 100.0 + i as f64).collect();
        assert!(signed_rank_p(&base, &reference) < 1e-6);
    }

    #[test]
    fn geometric_mean_p_separates_change_from_noise() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut case = |shift: f64| {
            let base: Vec<f64> = (0..12).map(|_| 50.0 * (1.0 + 0.05 * rng.gen::<f64>())).collect();
            let reference: Vec<f64> =
                base.iter().map(|b| b * (shift + 0.01 * (rng.gen::<f64>() - 0.5)).exp()).collect();
            (base, reference)
        };
        let changed: Vec<_> = (0..5).map(|_| case(0.05)).collect();
        let cases: Vec<(&[f64], &[f64])> = changed.iter().map(|(b, r)| (b.as_slice(), r.as_slice())).collect();
        let p = geometric_mean_p(&cases, 2000, 1);
        assert!(p <= 2.0 / 2001.0 + 1e-12, "{p}");
        let same: Vec<_> = (0..5).map(|_| case(0.0)).collect();
        let cases: Vec<(&[f64], &[f64])> = same.iter().map(|(b, r)| (b.as_slice(), r.as_slice())).collect();
        assert!(geometric_mean_p(&cases, 2000, 1) > 0.05);
        assert_eq!(geometric_mean_p(&[], 2000, 1), 1.0);
    }

    #[test]
    fn benjamini_hochberg_steps_up() {
        // Textbook example: m = 10, q = 0.05; thresholds k·0.005.
        let p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216];
        let d = benjamini_hochberg(&p, 0.05);
        // p(2) = 0.008 ≤ 0.010, p(3) = 0.039 > 0.015, ... none above k = 2 qualifies.
        assert_eq!(d.rejected, [true, true, false, false, false, false, false, false, false, false]);
        assert!((d.cutoff - 0.01).abs() < 1e-12);
        assert!((d.interval_level - 0.99).abs() < 1e-12);
        // Step-up: a later p-value under its threshold carries the earlier ones.
        let d = benjamini_hochberg(&[0.04, 0.03, 0.02, 0.05], 0.05);
        assert_eq!(d.rejected, [true, true, true, true]);
        // Order does not matter, NaN is never rejected.
        let d = benjamini_hochberg(&[0.5, f64::NAN, 0.0001], 0.05);
        assert_eq!(d.rejected, [false, false, true]);
        assert!((d.interval_level - (1.0 - 0.05 / 3.0)).abs() < 1e-12);
        let d = benjamini_hochberg(&[0.9, 0.8], 0.05);
        assert_eq!(d.rejected, [false, false]);
        assert_eq!(d.cutoff, 0.0);
    }

    #[test]
    fn benjamini_hochberg_controls_the_rate_in_simulation() {
        // 100 hypotheses, 80 true nulls (uniform p), 20 strong effects; the
        // mean false discovery proportion over 500 seeded trials stays
        // below q·m0/m = 0.04 (plus simulation error).
        let mut rng = StdRng::seed_from_u64(11);
        let mut fdp = 0.0;
        for _ in 0..500 {
            let p: Vec<f64> =
                (0..100).map(|i| if i < 80 { rng.gen::<f64>() } else { rng.gen::<f64>() * 1e-4 }).collect();
            let d = benjamini_hochberg(&p, 0.05);
            let r = d.rejected.iter().filter(|x| **x).count();
            let v = d.rejected[..80].iter().filter(|x| **x).count();
            fdp += if r == 0 { 0.0 } else { v as f64 / r as f64 };
        }
        let mean = fdp / 500.0;
        assert!(mean < 0.05, "mean false discovery proportion {mean}");
    }
}
