//! The verdict on a comparison: [`classify`] turns an estimate with its
//! confidence interval into [`Change`], the rule of DESIGN.md ("Statistics").

use serde::{Deserialize, Serialize};

use crate::stats::paired::RatioEstimate;

/// Verdict on a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// REF is faster than BASE (ratio below 1).
    Faster,
    /// REF is slower than BASE (ratio above 1).
    Slower,
    /// No change that is both significant and large enough to matter.
    NoChange,
}

/// Verdict rule of DESIGN.md: [`Change::Faster`] when `hi < 1` and
/// `|delta| ≥ threshold_pct`; [`Change::Slower`] when `lo > 1` and
/// `|delta| ≥ threshold_pct`; else [`Change::NoChange`].
///
/// The threshold keeps changes that are real but too small to matter (below
/// the noise floor of the machine, or of other builds) out of the verdicts.
pub fn classify(est: &RatioEstimate, threshold_pct: f64) -> Change {
    let big_enough = est.delta_pct().abs() >= threshold_pct;
    if est.hi < 1.0 && big_enough {
        Change::Faster
    } else if est.lo > 1.0 && big_enough {
        Change::Slower
    } else {
        Change::NoChange
    }
}

/// The largest change an interval leaves possible, in %:
/// `max(1 − lo, hi − 1) × 100`. The interval rules out any true change
/// larger than this (at its level), so a `no change` verdict reads "no
/// change (< ±resolution)". `None` for an estimate without a real interval
/// ([`crate::engine::has_interval`]).
///
/// This is what the interval excludes, not its half-width: an interval of
/// [−0.5, +2.9] % rules out −3 % and +3 %, but not +2.5 %, and says so
/// (< ±2.9 %) even though it is only 3.4 points wide.
pub fn resolution_pct(est: &RatioEstimate) -> Option<f64> {
    crate::engine::has_interval(est).then(|| (1.0 - est.lo).max(est.hi - 1.0).max(0.0) * 100.0)
}
