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
