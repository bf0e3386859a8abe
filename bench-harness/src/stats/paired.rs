//! Paired statistics of two builds' benchmark samples: effect sizes with
//! confidence intervals (the verdict on them is [`crate::engine::verdict`]).
//!
//! Everything is computed on the log scale. A ratio REF/BASE becomes a shift
//! `ln(REF) - ln(BASE)`, so "5 % slower" and "5 % faster" are symmetric, the
//! geometric mean is a plain mean, and the interval maps back to ratios with
//! `exp()` without losing its coverage.
//!
//! * [`paired_ratio`]: interleaved A/B rounds of one case. Hodges–Lehmann
//!   estimate of the per-round log-ratio with the Wilcoxon signed-rank
//!   interval (exact up to 30 rounds).
//! * [`geometric_mean`]: the suite summary, with a seeded bootstrap interval.
//!
//! The rank-based methods are distribution-free: they assume neither normal
//! noise nor the absence of the outliers that a busy machine produces.
//!
//! All functions are pure: no I/O, and randomness only from an explicit seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::quantile;

/// Fewest paired rounds for which [`paired_ratio`] gives a real interval.
///
/// Below this, no 95 % Wilcoxon interval exists (the most extreme outcome of
/// 5 rounds still has a two-sided probability of 1/16 > 5 %).
pub const MIN_PAIRED_ROUNDS: usize = 6;

/// Estimate of REF/BASE with a confidence interval (all as ratios, 1.0 = equal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatioEstimate {
    /// Point estimate of the ratio.
    pub ratio: f64,
    /// Lower bound of the confidence interval.
    pub lo: f64,
    /// Upper bound of the confidence interval.
    pub hi: f64,
    /// Number of observations the estimate rests on: rounds for
    /// [`paired_ratio`], cases for [`geometric_mean`].
    pub n: usize,
    /// Requested two-sided confidence level, e.g. 0.95.
    pub level: f64,
}

impl RatioEstimate {
    /// Relative change in percent: `(ratio - 1) × 100` (positive = REF slower).
    pub fn delta_pct(&self) -> f64 {
        (self.ratio - 1.0) * 100.0
    }

    /// The confidence interval as relative changes in percent.
    pub fn ci_pct(&self) -> (f64, f64) {
        ((self.lo - 1.0) * 100.0, (self.hi - 1.0) * 100.0)
    }

    /// Width of the confidence interval in percentage points.
    pub fn width_pct(&self) -> f64 {
        (self.hi - self.lo) * 100.0
    }

    /// An estimate from a log-scale point and interval.
    fn from_logs(point: f64, lo: f64, hi: f64, n: usize, level: f64) -> Self {
        RatioEstimate { ratio: point.exp(), lo: lo.exp(), hi: hi.exp(), n, level }
    }

    /// An estimate whose interval collapses onto its point.
    fn degenerate(point: f64, n: usize, level: f64) -> Self {
        Self::from_logs(point, point, point, n, level)
    }
}

/// Paired rounds: `base[i]` and `reference[i]` were measured in the same
/// round (ABBA interleaving), values are ns/pkt.
///
/// Hodges–Lehmann estimate of the median per-round log-ratio `ln(ref/base)`
/// (the median of the Walsh averages) with the distribution-free Wilcoxon
/// signed-rank confidence interval (exact critical values for n ≤ 30,
/// computed by dynamic programming over the signed-rank distribution; normal
/// approximation with continuity correction above), mapped back with `exp()`.
///
/// Rounds where either value is not a positive finite number carry no ratio
/// and are left out; `n` counts the rounds used.
///
/// Degenerate cases: with no usable round the estimate is 1.0 with `lo = hi =
/// 1.0`. With fewer than [`MIN_PAIRED_ROUNDS`] rounds, or too few for any
/// interval at the requested `level` (e.g. n < 8 at 0.99), the interval is
/// collapsed onto the point (`lo = hi = ratio`), `level` is kept as asked.
/// Such an estimate is not evidence of anything: [`classify`](crate::engine::verdict::classify) would judge it
/// on its point alone, and its width is 0, so callers (verdicts, the adaptive
/// "narrow enough" test) should check `n` first.
///
/// # Panics
///
/// If the slices differ in length, or `level` is not strictly between 0 and 1.
pub fn paired_ratio(base: &[f64], reference: &[f64], level: f64) -> RatioEstimate {
    ratio_of_logs(&paired_log_ratios(base, reference), level)
}

/// [`paired_ratio`] on the per-round log-ratios themselves (every one usable).
pub(crate) fn ratio_of_logs(logs: &[f64], level: f64) -> RatioEstimate {
    ratio_of_logs_with(logs, level, wilcoxon_critical(logs.len(), level), &mut Vec::new())
}

/// [`ratio_of_logs`] with the critical value for `logs.len()` at `level`
/// given ([`wilcoxon_critical`]) and the Walsh averages built in `walsh`:
/// for callers that compute many intervals of the same sizes (the suite's
/// replayed bootstrap).
pub(crate) fn ratio_of_logs_with(
    logs: &[f64],
    level: f64,
    critical: Option<usize>,
    walsh: &mut Vec<f64>,
) -> RatioEstimate {
    let n = logs.len();
    if n == 0 {
        return RatioEstimate::degenerate(0.0, 0, level);
    }
    walsh_into(logs, walsh);
    let point = median_in_place(walsh);
    match critical {
        Some(c) if n >= MIN_PAIRED_ROUNDS => {
            // The number of Walsh averages below the true shift is distributed
            // as T, so the shift lies below the (c+1)-th smallest one with
            // probability P(T ≤ c) ≤ α/2, and above the (c+1)-th largest likewise.
            let m = walsh.len();
            let lo = kth_smallest(walsh, c);
            let hi = kth_smallest(walsh, m - 1 - c);
            RatioEstimate::from_logs(point, lo, hi, n, level)
        }
        _ => RatioEstimate::degenerate(point, n, level),
    }
}

/// Suite summary: geometric mean over cases of REF/BASE. Input: per case, its
/// paired rounds `(base, reference)`.
///
/// The point estimate is `exp(mean over cases of the per-case Hodges–Lehmann
/// log-ratio)`. The interval is a seeded percentile bootstrap with
/// `iterations` resamples (e.g. 2000): rounds are resampled with replacement
/// within each case, each case's statistic is the plain median of its
/// resampled log-ratios (cheaper than Hodges–Lehmann, and close to it), and
/// the case statistics are averaged. As the point and the resampled
/// statistic differ slightly, the interval is widened if needed so that it
/// contains the point. With `iterations == 0` the interval is degenerate.
///
/// Deterministic for a given seed (and a given version of `rand`, whose
/// [`StdRng`] algorithm may change between releases). `n` is the number of
/// cases used; cases without a usable round (see [`paired_ratio`]) are left
/// out. Returns `None` when no case is left.
///
/// # Panics
///
/// If a case's slices differ in length, or `level` is not strictly between
/// 0 and 1.
pub fn geometric_mean(cases: &[(&[f64], &[f64])], level: f64, iterations: usize, seed: u64) -> Option<RatioEstimate> {
    check_level(level);
    let logs: Vec<Vec<f64>> = cases
        .iter()
        .map(|(base, reference)| paired_log_ratios(base, reference))
        .filter(|logs| !logs.is_empty())
        .collect();
    if logs.is_empty() {
        return None;
    }
    let k = logs.len() as f64;
    let point = logs.iter().map(|l| median_in_place(&mut walsh_averages(l))).sum::<f64>() / k;
    if iterations == 0 {
        return Some(RatioEstimate::degenerate(point, logs.len(), level));
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let longest = logs.iter().map(Vec::len).max().unwrap_or(0);
    let mut resample = Vec::with_capacity(longest);
    let mut means = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let mut sum = 0.0;
        for case in &logs {
            resample.clear();
            resample.extend((0..case.len()).map(|_| case[rng.gen_range(0..case.len())]));
            sum += median_in_place(&mut resample);
        }
        means.push(sum / k);
    }
    means.sort_unstable_by(f64::total_cmp);
    let alpha = 1.0 - level;
    let lo = quantile(&means, alpha / 2.0).min(point);
    let hi = quantile(&means, 1.0 - alpha / 2.0).max(point);
    Some(RatioEstimate::from_logs(point, lo, hi, logs.len(), level))
}

/// Normal quantile for a two-sided confidence level: the `z` with
/// `P(|Z| ≤ z) = level`, e.g. `z_two_sided(0.95) = 1.959964`.
///
/// Computed with Wichura's algorithm AS 241 (PPND16), accurate to about
/// 1e-16 relative.
///
/// # Panics
///
/// If `level` is not strictly between 0 and 1.
pub fn z_two_sided(level: f64) -> f64 {
    check_level(level);
    // Upper tail α/2 computed directly: (1 + level) / 2 would round away the
    // tail for levels very close to 1.
    upper_normal_quantile((1.0 - level) / 2.0)
}

/// Panics unless `level` is a usable confidence level.
fn check_level(level: f64) {
    assert!(level > 0.0 && level < 1.0, "confidence level must be in (0, 1), got {level}");
}

/// Per-round `ln(reference / base)`, leaving out rounds without a ratio.
pub(crate) fn paired_log_ratios(base: &[f64], reference: &[f64]) -> Vec<f64> {
    assert_eq!(base.len(), reference.len(), "paired samples must have as many base as reference values");
    base.iter().zip(reference).filter(|(b, r)| usable(**b) && usable(**r)).map(|(b, r)| (r / b).ln()).collect()
}

/// Whether a ns/pkt value can enter a ratio.
fn usable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// The `n(n+1)/2` Walsh averages `(d_i + d_j) / 2`, `i ≤ j`.
fn walsh_averages(d: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(d.len() * (d.len() + 1) / 2);
    walsh_into(d, &mut out);
    out
}

/// [`walsh_averages`] into `out`, replacing its content.
fn walsh_into(d: &[f64], out: &mut Vec<f64>) {
    out.clear();
    for (i, &a) in d.iter().enumerate() {
        out.extend(d[i..].iter().map(|&b| 0.5 * (a + b)));
    }
}

/// The `k`-th smallest value (0-based), reordering `v`. Selection rather than
/// a full sort: the statistics here need only two to four order statistics
/// of up to millions of values.
fn kth_smallest(v: &mut [f64], k: usize) -> f64 {
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// Median of non-empty `v`, reordering it.
fn median_in_place(v: &mut [f64]) -> f64 {
    let m = v.len();
    let upper = kth_smallest(v, m / 2);
    if m % 2 == 1 {
        upper
    } else {
        // After selection, everything before m/2 is ≤ the upper middle.
        let lower = v[..m / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// Critical value `c` of the Wilcoxon signed-rank statistic `T` for `n`
/// non-zero differences: the largest `c` with `P(T ≤ c) ≤ α/2` under the null
/// hypothesis, `α = 1 - level`. `None` when even `P(T = 0)` exceeds `α/2`.
///
/// Exact for `n ≤ 30`: the number of subsets of `{1, …, n}` with rank sum
/// `s` is counted by dynamic programming, and compared in integers with
/// `α/2 · 2ⁿ` (2³⁰ subsets fit easily in a `u64`). Above, the normal
/// approximation with continuity correction.
pub(crate) fn wilcoxon_critical(n: usize, level: f64) -> Option<usize> {
    check_level(level);
    let half_alpha = (1.0 - level) / 2.0;
    if n == 0 {
        return None;
    }
    if n <= 30 {
        let counts = signed_rank_counts(n);
        // Tolerance so that a level meant to land exactly on a tail
        // probability is not lost to the rounding of 1 - level.
        let budget = half_alpha * (1u64 << n) as f64 * (1.0 + 1e-9);
        let mut cumulative = 0u64;
        let mut critical = None;
        for (c, count) in counts.iter().enumerate() {
            cumulative += count;
            if cumulative as f64 > budget {
                break;
            }
            critical = Some(c);
        }
        critical
    } else {
        let n = n as f64;
        let mean = n * (n + 1.0) / 4.0;
        let sd = (n * (n + 1.0) * (2.0 * n + 1.0) / 24.0).sqrt();
        non_negative_floor(mean - 0.5 - z_two_sided(level) * sd)
    }
}

/// The exact null distribution of the signed-rank sum for `n` untied ranks:
/// `counts[s]` is the number of subsets of `{1, …, n}` whose ranks sum to `s`
/// (of `2ⁿ`), by dynamic programming. `n ≤ 30` keeps every count in a `u64`.
pub(crate) fn signed_rank_counts(n: usize) -> Vec<u64> {
    assert!(n <= 30, "exact signed-rank counts up to n = 30, got {n}");
    let max_sum = n * (n + 1) / 2;
    let mut counts = vec![0u64; max_sum + 1];
    counts[0] = 1;
    for rank in 1..=n {
        // Descending so that each rank is used at most once (0/1 knapsack).
        for s in (rank..=rank * (rank + 1) / 2).rev() {
            counts[s] += counts[s - rank];
        }
    }
    counts
}

/// `floor(x)` as an index, `None` if negative.
fn non_negative_floor(x: f64) -> Option<usize> {
    (x >= 0.0).then(|| x.floor() as usize)
}

/// The `x` with `P(Z > x) = p` for a standard normal `Z`, `0 < p < 1`.
///
/// Wichura, "Algorithm AS 241: The percentage points of the normal
/// distribution", Applied Statistics 37 (1988), PPND16: rational
/// approximations in three regions. Taking the upper tail probability keeps
/// full relative accuracy for small `p`.
// The coefficients are kept digit for digit as published, so that they can be
// checked against the paper; f64 rounds them.
#[allow(clippy::excessive_precision)]
fn upper_normal_quantile(p: f64) -> f64 {
    // Coefficients from degree 7 down to degree 0.
    const CENTRAL_NUM: [f64; 8] = [
        2509.0809287301226727,
        33430.575583588128105,
        67265.770927008700853,
        45921.953931549871457,
        13731.693765509461125,
        1971.5909503065514427,
        133.14166789178437745,
        3.387132872796366608,
    ];
    const CENTRAL_DEN: [f64; 8] = [
        5226.495278852545925,
        28729.085735721942674,
        39307.89580009271061,
        21213.794301586595867,
        5394.1960214247511077,
        687.1870074920579083,
        42.313330701600911252,
        1.0,
    ];
    const NEAR_NUM: [f64; 8] = [
        7.7454501427834140764e-4,
        0.0227238449892691845833,
        0.24178072517745061177,
        1.27045825245236838258,
        3.64784832476320460504,
        5.7694972214606914055,
        4.6303378461565452959,
        1.42343711074968357734,
    ];
    const NEAR_DEN: [f64; 8] = [
        1.05075007164441684324e-9,
        5.475938084995344946e-4,
        0.0151986665636164571966,
        0.14810397642748007459,
        0.68976733498510000455,
        1.6763848301838038494,
        2.05319162663775882187,
        1.0,
    ];
    const FAR_NUM: [f64; 8] = [
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        0.0012426609473880784386,
        0.026532189526576123093,
        0.29656057182850489123,
        1.7848265399172913358,
        5.4637849111641143699,
        6.6579046435011037772,
    ];
    const FAR_DEN: [f64; 8] = [
        2.04426310338993978564e-15,
        1.4215117583164458887e-7,
        1.8463183175100546818e-5,
        7.868691311456132591e-4,
        0.0148753612908506148525,
        0.13692988092273580531,
        0.59983220655588793769,
        1.0,
    ];

    // AS 241 works with the lower tail: the quantile of 1 - p.
    let q = 0.5 - p;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q * horner(r, &CENTRAL_NUM) / horner(r, &CENTRAL_DEN);
    }
    // Tails: r = sqrt(-ln(smaller tail probability)), and the result is the
    // positive quantile of that tail, mirrored to the side asked for.
    let tail = if q < 0.0 { 1.0 - p } else { p };
    let r = (-tail.ln()).sqrt();
    let value = if r <= 5.0 {
        let r = r - 1.6;
        horner(r, &NEAR_NUM) / horner(r, &NEAR_DEN)
    } else {
        let r = r - 5.0;
        horner(r, &FAR_NUM) / horner(r, &FAR_DEN)
    };
    if q < 0.0 {
        -value
    } else {
        value
    }
}

/// The polynomial with `coefficients` (highest degree first) at `x`.
fn horner(x: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().fold(0.0, |acc, c| acc * x + c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::verdict::{classify, Change};

    /// A standard normal draw (Box–Muller; `rand` alone has no normal law).
    fn normal(rng: &mut StdRng) -> f64 {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1], safe for ln
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Small deterministic "noise" in [-1, 1] %, uneven so that no two rounds tie.
    fn wiggle(i: usize) -> f64 {
        1.0 + 0.01 * ((i as f64 * 2.399_963).sin())
    }

    /// 20 paired rounds: base drifts from round to round, ref = base × factor × noise.
    fn rounds(factor: f64) -> (Vec<f64>, Vec<f64>) {
        let base: Vec<f64> = (0..20).map(|i| 100.0 * (1.0 + 0.1 * (i as f64 * 0.7).cos())).collect();
        let reference = base.iter().enumerate().map(|(i, b)| b * factor * wiggle(i + 100)).collect();
        (base, reference)
    }

    #[test]
    fn normal_quantiles() {
        // Reference values from mpmath at 40 digits.
        let two_sided = [
            (0.95, 1.959_963_984_540_054),
            (0.99, 2.575_829_303_548_901),
            (0.90, 1.644_853_626_951_472_7),
            (0.50, 0.674_489_750_196_081_7),
        ];
        for (level, z) in two_sided {
            let got = z_two_sided(level);
            assert!((got - z).abs() < 1e-12, "z({level}) = {got}, want {z}");
        }
        // All three regions of AS 241 (central, near tail, far tail), by upper
        // tail probability: a level such as 0.999999 is itself rounded in
        // binary, which alone moves its z by 6e-12.
        let upper = [
            (0.3, 0.524_400_512_708_040_8),
            (0.02, 2.053_748_910_631_823),
            (5e-7, 4.891_638_475_698_59),
            (1e-20, 9.262_340_089_798_407),
        ];
        for (p, x) in upper {
            let got = upper_normal_quantile(p);
            assert!((got - x).abs() < 1e-13 * x, "quantile of upper tail {p} = {got}, want {x}");
            // Mirrored, as far as 1 - p keeps p (it does not keep 1e-20).
            if p > 1e-10 {
                assert!((upper_normal_quantile(1.0 - p) + x).abs() < 1e-9 * x, "lower tail {p}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "confidence level")]
    fn level_one_is_rejected() {
        z_two_sided(1.0);
    }

    #[test]
    fn wilcoxon_critical_values_match_tables() {
        // Two-sided α = 0.05 and 0.01, from the standard signed-rank tables.
        let at_95 = [
            (5, None),
            (6, Some(0)),
            (7, Some(2)),
            (8, Some(3)),
            (9, Some(5)),
            (10, Some(8)),
            (12, Some(13)),
            (15, Some(25)),
            (20, Some(52)),
            (25, Some(89)),
            (30, Some(137)),
        ];
        for (n, c) in at_95 {
            assert_eq!(wilcoxon_critical(n, 0.95), c, "n = {n}, level 0.95");
        }
        let at_99 = [(7, None), (8, Some(0)), (10, Some(3)), (20, Some(37)), (30, Some(109))];
        for (n, c) in at_99 {
            assert_eq!(wilcoxon_critical(n, 0.99), c, "n = {n}, level 0.99");
        }
        // Above 30, the normal approximation: it agrees with the exact
        // distribution (147 at n = 31) or errs by one on the safe side (433
        // against an exact 434 at n = 50).
        assert_eq!(wilcoxon_critical(31, 0.95), Some(147));
        assert_eq!(wilcoxon_critical(50, 0.95), Some(433));
    }

    #[test]
    fn paired_detects_slowdown() {
        let (base, reference) = rounds(1.05);
        let est = paired_ratio(&base, &reference, 0.95);
        assert_eq!(est.n, 20);
        assert!((est.ratio - 1.05).abs() < 0.005, "{est:?}");
        assert!(est.lo <= 1.05 && 1.05 <= est.hi, "{est:?}");
        assert!(est.lo > 1.0, "{est:?}");
        assert!(est.width_pct() < 2.0, "{est:?}");
        assert!((est.delta_pct() - (est.ratio - 1.0) * 100.0).abs() < 1e-12);
        assert_eq!(classify(&est, 1.0), Change::Slower);
    }

    #[test]
    fn paired_equal_is_no_change() {
        let (base, reference) = rounds(1.0);
        let est = paired_ratio(&base, &reference, 0.95);
        assert!(est.lo < 1.0 && est.hi > 1.0, "{est:?}");
        assert_eq!(classify(&est, 1.0), Change::NoChange);
        // Identical samples: an exact zero-width interval at 1.
        let same = paired_ratio(&base, &base, 0.95);
        assert_eq!((same.ratio, same.lo, same.hi), (1.0, 1.0, 1.0));
        assert_eq!(classify(&same, 1.0), Change::NoChange);
    }

    #[test]
    fn paired_detects_speedup() {
        let (base, reference) = rounds(0.97);
        let est = paired_ratio(&base, &reference, 0.95);
        assert!((est.ratio - 0.97).abs() < 0.005, "{est:?}");
        assert!(est.hi < 1.0, "{est:?}");
        let (lo_pct, hi_pct) = est.ci_pct();
        assert!(lo_pct < -2.0 && hi_pct < 0.0, "{est:?}");
        assert_eq!(classify(&est, 1.0), Change::Faster);
    }

    #[test]
    fn small_change_is_below_threshold() {
        // ref = base × 1.005 exactly, plus ±0.01 % noise: significant, but 0.5 % < 1 %.
        let (base, _) = rounds(1.0);
        let reference: Vec<f64> =
            base.iter().enumerate().map(|(i, b)| b * 1.005 * (1.0 + 0.0001 * (i as f64).sin())).collect();
        let est = paired_ratio(&base, &reference, 0.95);
        assert!(est.lo > 1.0, "{est:?}");
        assert!((est.delta_pct() - 0.5).abs() < 0.02, "{est:?}");
        assert_eq!(classify(&est, 1.0), Change::NoChange);
        assert_eq!(classify(&est, 0.25), Change::Slower);
    }

    #[test]
    fn paired_interval_uses_walsh_order_statistics() {
        // n = 6 at 0.95: c = 0, so the interval is [min, max] of the differences.
        let base = [100.0; 6];
        let reference = [101.0, 102.0, 103.0, 104.0, 105.0, 110.0];
        let est = paired_ratio(&base, &reference, 0.95);
        assert!((est.lo - 1.01).abs() < 1e-12 && (est.hi - 1.10).abs() < 1e-12, "{est:?}");
        // Hodges–Lehmann: median of the 21 Walsh averages of ln(1.01..1.10).
        let d: Vec<f64> = reference.iter().map(|r| (r / 100.0_f64).ln()).collect();
        let mut w = walsh_averages(&d);
        w.sort_by(f64::total_cmp);
        assert_eq!(w.len(), 21);
        assert!((est.ratio - w[10].exp()).abs() < 1e-12, "{est:?}");
    }

    #[test]
    fn paired_degenerate_cases() {
        let est = paired_ratio(&[100.0, 100.0, 100.0], &[110.0, 111.0, 109.0], 0.95);
        assert_eq!(est.n, 3);
        assert_eq!(est.level, 0.95);
        assert!((est.ratio - 1.1).abs() < 1e-3, "{est:?}");
        assert_eq!((est.lo, est.hi), (est.ratio, est.ratio));
        // Too few for 99 % even with 7 rounds.
        let est = paired_ratio(&[1.0; 7], &[1.1; 7], 0.99);
        assert_eq!((est.lo, est.hi), (est.ratio, est.ratio));
        // Nothing usable: zeros and NaN are left out.
        let est = paired_ratio(&[0.0, f64::NAN], &[1.0, 1.0], 0.95);
        assert_eq!((est.ratio, est.lo, est.hi, est.n), (1.0, 1.0, 1.0, 0));
        assert_eq!(classify(&est, 1.0), Change::NoChange);
    }

    #[test]
    #[should_panic(expected = "as many base as reference")]
    fn paired_lengths_must_match() {
        paired_ratio(&[1.0, 2.0], &[1.0], 0.95);
    }

    /// `datasets` simulated paired experiments of `n` rounds with a true ratio
    /// `shift`; returns how many were classified Slower and Faster.
    ///
    /// Each round has a drift shared by both sides (σ = 0.10, which pairing
    /// must cancel) and lognormal noise on the per-round ratio (σ = 0.05).
    fn simulate(seed: u64, datasets: usize, n: usize, shift: f64) -> (usize, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut slower, mut faster) = (0, 0);
        for _ in 0..datasets {
            let mut base = Vec::with_capacity(n);
            let mut reference = Vec::with_capacity(n);
            for _ in 0..n {
                let drift = 100.0 * (0.10 * normal(&mut rng)).exp();
                // Split the ratio's σ = 0.05 evenly over the two sides.
                let side = 0.05 / std::f64::consts::SQRT_2;
                base.push(drift * (side * normal(&mut rng)).exp());
                reference.push(drift * shift * (side * normal(&mut rng)).exp());
            }
            match classify(&paired_ratio(&base, &reference, 0.95), 0.0) {
                Change::Slower => slower += 1,
                Change::Faster => faster += 1,
                Change::NoChange => {}
            }
        }
        (slower, faster)
    }

    #[test]
    fn paired_false_verdict_rate_and_power() {
        // A/A: the verdict is wrong at most ~5 % of the time (threshold 0, so
        // this is the interval's coverage alone).
        let (slower, faster) = simulate(0x5eed_a1a1, 500, 20, 1.0);
        let false_rate = (slower + faster) as f64 / 500.0;
        assert!(false_rate <= 0.07, "A/A false verdicts {slower} slower + {faster} faster of 500");
        // A 5 % slowdown is found almost always, never as a speedup.
        let (slower, faster) = simulate(0x5eed_b0b0, 500, 20, 1.05);
        assert!(slower as f64 / 500.0 >= 0.90, "5 % shift detected {slower} of 500");
        assert_eq!(faster, 0);
    }

    #[test]
    fn geometric_mean_of_opposite_changes_is_one() {
        let (b1, r1) = rounds(1.1);
        let (b2, r2) = rounds(1.0 / 1.1);
        let cases: Vec<(&[f64], &[f64])> = vec![(&b1, &r1), (&b2, &r2)];
        let est = geometric_mean(&cases, 0.95, 2000, 42).expect("two cases");
        assert_eq!(est.n, 2);
        assert!((est.ratio - 1.0).abs() < 1e-3, "{est:?}");
        assert!(est.lo <= est.ratio && est.ratio <= est.hi, "{est:?}");
        assert!(est.lo > 0.99 && est.hi < 1.01, "{est:?}");
        assert_eq!(classify(&est, 1.0), Change::NoChange);
        // Same seed, same answer; another seed moves only the interval.
        assert_eq!(geometric_mean(&cases, 0.95, 2000, 42), Some(est));
        let other = geometric_mean(&cases, 0.95, 2000, 43).expect("two cases");
        assert_eq!(other.ratio, est.ratio);
        assert_ne!((other.lo, other.hi), (est.lo, est.hi));
    }

    #[test]
    fn geometric_mean_point_and_interval() {
        // Cases at 1.05 and 1.10: the geometric mean is sqrt(1.05 × 1.10).
        let (b1, r1) = rounds(1.05);
        let (b2, r2) = rounds(1.10);
        let cases: Vec<(&[f64], &[f64])> = vec![(&b1, &r1), (&b2, &r2)];
        let est = geometric_mean(&cases, 0.95, 2000, 7).expect("two cases");
        let want = (1.05_f64 * 1.10).sqrt();
        assert!((est.ratio - want).abs() < 0.005, "{est:?}");
        assert!(est.lo <= est.ratio && est.ratio <= est.hi && est.lo > 1.0, "{est:?}");
        assert_eq!(classify(&est, 1.0), Change::Slower);
        // The point is the mean of the per-case Hodges–Lehmann estimates.
        let per_case = (paired_ratio(&b1, &r1, 0.95).ratio.ln() + paired_ratio(&b2, &r2, 0.95).ratio.ln()) / 2.0;
        assert!((est.ratio - per_case.exp()).abs() < 1e-12);
        // No iterations: no interval.
        let bare = geometric_mean(&cases, 0.95, 0, 7).expect("two cases");
        assert_eq!((bare.lo, bare.hi), (bare.ratio, bare.ratio));
        // No cases, or only empty ones: nothing to summarise.
        assert_eq!(geometric_mean(&[], 0.95, 100, 7), None);
        assert_eq!(geometric_mean(&[(&[], &[])], 0.95, 100, 7), None);
    }

    #[test]
    fn serde_names() {
        assert_eq!(serde_json::to_string(&Change::NoChange).unwrap(), "\"no_change\"");
        let est = RatioEstimate { ratio: 1.5, lo: 1.25, hi: 1.75, n: 12, level: 0.95 };
        let json = serde_json::to_string(&est).unwrap();
        assert_eq!(serde_json::from_str::<RatioEstimate>(&json).unwrap(), est);
        assert_eq!(est.ci_pct(), (25.0, 75.0));
        assert_eq!(est.width_pct(), 50.0);
    }
}
