//! The chained paired ratios of a history: what the plots draw.
//!
//! Each commit's point is the product of the paired REF/BASE ratios of every
//! pair since the first commit, so a point moves only when a pair measured a
//! change. Medians of separate runs drift by ±10–40 % from run to run
//! (measurements.md) and would draw changes where the pairs saw none.
//!
//! The interval is propagated on the log scale: the lower (upper) half-widths
//! `ln(ratio) − ln(lo)` of the chained pairs add in quadrature, as for
//! independent estimates (each pair is measured in its own rounds). A pair
//! whose two programs are byte-identical ([`CaseComparison::same_program`])
//! adds nothing, neither to the point nor to the width: it is drawn flat,
//! without timing. A case that could not be compared at some pair (failed,
//! unsupported) has no chain from there on.

use bench_harness::engine::{CaseComparison, Comparison};
use bench_harness::results::Unit;
use serde::{Deserialize, Serialize};

/// One point of a chain: the product of the pair ratios since the first
/// commit, with its propagated interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Chained REF/BASE ratio relative to the first commit (1.0 there).
    pub ratio: f64,
    /// Lower bound of the propagated interval.
    pub lo: f64,
    /// Upper bound of the propagated interval.
    pub hi: f64,
    /// This commit's programs are byte-identical to the previous measured
    /// commit's: the step is flat, no timing entered it.
    pub identical: bool,
}

/// The chain of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseTrend {
    /// Case name.
    pub case: String,
    /// One entry per point of the history (`None`: not measured there, or
    /// the chain broke at or before it).
    pub points: Vec<Option<TrendPoint>>,
}

/// The chains of a whole history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Confidence level of the pair intervals chained.
    pub level: f64,
    /// The suite geometric mean's chain, one entry per point.
    pub suite: Vec<Option<TrendPoint>>,
    /// Per case, in suite order.
    pub cases: Vec<CaseTrend>,
}

/// A running chain on the log scale.
#[derive(Clone, Copy)]
struct Chain {
    log: f64,
    lo2: f64,
    hi2: f64,
}

impl Chain {
    const START: Chain = Chain { log: 0.0, lo2: 0.0, hi2: 0.0 };

    fn point(self, identical: bool) -> TrendPoint {
        TrendPoint {
            ratio: self.log.exp(),
            lo: (self.log - self.lo2.sqrt()).exp(),
            hi: (self.log + self.hi2.sqrt()).exp(),
            identical,
        }
    }

    /// The chain after one more pair with estimate `(ratio, lo, hi)`.
    fn then(self, ratio: f64, lo: f64, hi: f64) -> Chain {
        let (l, a, b) = (ratio.ln(), lo.ln(), hi.ln());
        Chain { log: self.log + l, lo2: self.lo2 + (l - a).max(0.0).powi(2), hi2: self.hi2 + (b - l).max(0.0).powi(2) }
    }
}

/// One pair's step in a chain: `(identical, ratio, lo, hi)`.
type Step = (bool, f64, f64, f64);

/// The step one pair adds to a case's chain, or `None` when the case has no
/// ratio at this pair.
fn case_step(c: &CaseComparison) -> Option<Step> {
    if !c.is_ok() {
        return None;
    }
    if c.same_program == Some(true) {
        return Some((true, 1.0, 1.0, 1.0));
    }
    let e = c.estimate?;
    (e.ratio > 0.0 && e.lo > 0.0 && e.hi > 0.0).then_some((false, e.ratio, e.lo, e.hi))
}

/// The step one pair adds to the suite's chain: flat when every runtime case
/// loaded byte-identical programs on both sides, else the pair's geometric mean.
fn suite_step(c: &Comparison) -> Option<Step> {
    let runtime: Vec<&CaseComparison> = c.cases.iter().filter(|x| x.unit == Unit::NsPerPacket && x.is_ok()).collect();
    if !runtime.is_empty() && runtime.iter().all(|x| x.same_program == Some(true)) {
        return Some((true, 1.0, 1.0, 1.0));
    }
    let g = c.geomean?;
    (g.ratio > 0.0 && g.lo > 0.0 && g.hi > 0.0).then_some((false, g.ratio, g.lo, g.hi))
}

/// The chains of `cases` over a history's points: `pairs[i]` is point `i`'s
/// base point (an earlier one: the previous measured point, or with
/// `--all-parents` its first parent) and their comparison (`None` for the
/// first measured point and for points not measured). `first` is the index of
/// the first measured point, where every chain starts at 1; a point's chain
/// is its base's times their ratio.
pub fn chain(cases: &[String], pairs: &[Option<(usize, &Comparison)>], first: Option<usize>, level: f64) -> Trend {
    let run = |step: &dyn Fn(&Comparison) -> Option<Step>| {
        let mut chains: Vec<Option<Chain>> = vec![None; pairs.len()];
        let mut out = vec![None; pairs.len()];
        let Some(first) = first else { return out };
        chains[first] = Some(Chain::START);
        out[first] = Some(Chain::START.point(false));
        for (i, pair) in pairs.iter().enumerate().skip(first + 1) {
            let Some((base, pair)) = pair else { continue };
            let from = chains.get(*base).copied().flatten().filter(|_| *base < i);
            let next = from.and_then(|c| step(pair).map(|(identical, r, lo, hi)| (c.then(r, lo, hi), identical)));
            chains[i] = next.map(|(c, _)| c);
            out[i] = next.map(|(c, identical)| c.point(identical));
        }
        out
    };
    Trend {
        level,
        suite: run(&suite_step),
        cases: cases
            .iter()
            .map(|name| CaseTrend {
                case: name.clone(),
                points: run(&|c: &Comparison| c.cases.iter().find(|x| &x.name == name).and_then(case_step)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_harness::engine::{CompareConfig, SideInfo};
    use bench_harness::results::{HostInfo, Status, HARNESS_VERSION};
    use bench_harness::stats::paired::RatioEstimate;

    fn est(ratio: f64, lo: f64, hi: f64) -> RatioEstimate {
        RatioEstimate { ratio, lo, hi, n: 12, level: 0.99 }
    }

    fn case(name: &str, e: Option<RatioEstimate>, same: Option<bool>) -> CaseComparison {
        CaseComparison {
            ref_status: if e.is_some() || same.is_some() { Status::Ok } else { Status::Failed { reason: "x".into() } },
            same_program: same,
            estimate: e,
            ..CaseComparison::new(name, bench_harness::flavor::Flavor::Xdp)
        }
    }

    fn pair(cases: Vec<CaseComparison>, geomean: Option<RatioEstimate>) -> Comparison {
        Comparison {
            schema: bench_harness::engine::SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: String::new(),
            wall_time_s: 0.0,
            host: HostInfo::current(),
            base: SideInfo { label: "a".into(), source: Default::default() },
            reference: SideInfo { label: "b".into(), source: Default::default() },
            same_build: false,
            config: CompareConfig::default(),
            cases,
            geomean,
        }
    }

    #[test]
    fn ratios_multiply_and_widths_add_in_quadrature() {
        let names = vec!["a".to_string(), "b".to_string()];
        // Point 1: a +10 % [+5, +15]; b identical. Point 2 did not build.
        // Point 3: a +10 % again; b failed.
        let p1 = pair(
            vec![case("a", Some(est(1.1, 1.05, 1.15)), Some(false)), case("b", Some(est(0.9, 0.8, 1.0)), Some(true))],
            Some(est(1.05, 1.0, 1.1)),
        );
        let p3 = pair(vec![case("a", Some(est(1.1, 1.05, 1.15)), None), case("b", None, None)], None);
        let t = chain(&names, &[None, Some((0, &p1)), None, Some((1, &p3))], Some(0), 0.99);
        let a = &t.cases[0].points;
        assert_eq!(a[0], Some(TrendPoint { ratio: 1.0, lo: 1.0, hi: 1.0, identical: false }));
        assert!((a[1].unwrap().ratio - 1.1).abs() < 1e-12);
        assert_eq!(a[2], None);
        let last = a[3].unwrap();
        assert!((last.ratio - 1.21).abs() < 1e-12);
        let lo_half = (1.1f64.ln() - 1.05f64.ln()) * 2f64.sqrt();
        assert!((last.lo - (1.21f64.ln() - lo_half).exp()).abs() < 1e-12);
        assert!(last.hi > 1.21 && last.lo < 1.21);
        // b: the identical step is flat whatever its timing said; then the chain breaks.
        let b = &t.cases[1].points;
        assert_eq!(b[1], Some(TrendPoint { ratio: 1.0, lo: 1.0, hi: 1.0, identical: true }));
        assert_eq!(b[3], None);
        // The suite: the geometric mean, then no estimate: the chain breaks.
        assert!((t.suite[1].unwrap().ratio - 1.05).abs() < 1e-12);
        assert_eq!(t.suite[3], None);
    }

    #[test]
    fn a_point_chains_from_its_base_not_from_the_point_before_it() {
        // --all-parents: 0 ← 1 (branch, +10 %), 0 ← 2 (main, identical), 2 ← 3 (merge, +10 %).
        let names = vec!["a".to_string()];
        let up = pair(vec![case("a", Some(est(1.1, 1.05, 1.15)), Some(false))], Some(est(1.1, 1.05, 1.15)));
        let same = pair(vec![case("a", Some(est(0.9, 0.8, 1.0)), Some(true))], Some(est(0.9, 0.8, 1.0)));
        let t = chain(&names, &[None, Some((0, &up)), Some((0, &same)), Some((2, &up))], Some(0), 0.99);
        let ratio = |i: usize| t.cases[0].points[i].unwrap().ratio;
        assert!((ratio(1) - 1.1).abs() < 1e-12);
        assert_eq!(ratio(2), 1.0, "from point 0, not from point 1");
        assert!((ratio(3) - 1.1).abs() < 1e-12, "from point 2: {}", ratio(3));
    }

    #[test]
    fn a_pair_of_identical_programs_is_flat_for_the_suite() {
        let names = vec!["a".to_string()];
        let p1 = pair(vec![case("a", Some(est(0.93, 0.9, 0.96)), Some(true))], Some(est(0.93, 0.9, 0.96)));
        let t = chain(&names, &[None, Some((0, &p1))], Some(0), 0.99);
        assert_eq!(t.suite[1], Some(TrendPoint { ratio: 1.0, lo: 1.0, hi: 1.0, identical: true }));
        assert_eq!(chain(&names, &[None], None, 0.99).suite, vec![None]);
    }
}
