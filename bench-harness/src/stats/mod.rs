//! Statistics. Here: descriptive summaries of samples, robust to the outliers
//! a busy machine produces (median and MAD rather than mean and standard
//! deviation). [`paired`]: the paired comparison of two builds' samples;
//! [`fdr`]: p-values and the false discovery rate over many comparisons.

pub mod fdr;
pub mod paired;

use serde::{Deserialize, Serialize};

/// Quantile `q` (0..=1) of sorted data, linear interpolation between ranks.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no data");
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Median of unsorted data.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

/// Summary of one case's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
}

impl Summary {
    /// Summarise `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let med = quantile(&sorted, 0.5);
        let deviations: Vec<f64> = sorted.iter().map(|x| (x - med).abs()).collect();
        Some(Summary {
            n: sorted.len(),
            median: med,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            p05: quantile(&sorted, 0.05),
            p95: quantile(&sorted, 0.95),
            mad: median(&deviations),
        })
    }

    /// The spread as a percentage of the median: MAD / median × 100.
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            self.mad / self.median * 100.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn summary_is_robust_to_one_outlier() {
        let s = Summary::of(&[10.0, 10.5, 9.5, 10.0, 1000.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 10.0);
        assert_eq!(s.mad, 0.5);
        assert_eq!(s.max, 1000.0);
        assert!((s.spread_pct() - 5.0).abs() < 1e-9);
        assert!(s.mean > 200.0);
        assert!(Summary::of(&[]).is_none());
    }
}
