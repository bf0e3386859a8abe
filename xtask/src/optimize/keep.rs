//! The keep rule of `optimize` (doc/optimize.md, step 6): which cases judge
//! an attempt, and whether the attempt's comparison with its parent keeps it.
//!
//! Pure functions over the comparison the engine produced, so that every
//! branch is tested at its boundaries. The per-case verdicts (and with them
//! `--threshold`) come from the engine: a case counts as a regression only
//! if the engine classified it `slower`.

use super::Objective;
use bench_harness::engine::Change;
use bench_harness::engine::Comparison;
use bench_harness::suite::Case;

/// Whether `case` takes part in judging an attempt. As upstream, cases
/// through a set, with a log, or timing userspace only do not judge codegen
/// changes, unless `--include-flagged`.
pub fn judges(case: &Case, include_flagged: bool) -> bool {
    include_flagged || !(case.flags.use_set || case.flags.use_log || case.flags.userspace_only)
}

/// The acceptance rule of `objective`: `Err(reason)` when the attempt is
/// rejected.
///
/// * [`Objective::Runtime`]: the suite geometric mean's interval lies
///   entirely below 1 (`hi < 1`), and no case the engine judged `slower` is
///   slower by more than `max_regression_pct` (a slowdown of exactly
///   `max_regression_pct` is accepted).
/// * [`Objective::Insns`]: [`accept_insns`] of the instruction delta summed
///   over the cases; the timings are not looked at.
///
/// Under the runtime objective, without a suite geometric mean (no runtime
/// case measured on both sides) nothing is kept.
pub fn accept(c: &Comparison, objective: Objective, max_regression_pct: f64) -> Result<(), String> {
    if objective == Objective::Insns {
        return accept_insns(c.cases.iter().filter_map(|x| x.insns_delta()).sum());
    }
    let worst = c
        .cases
        .iter()
        .filter(|x| x.change == Some(Change::Slower))
        .filter_map(|x| x.estimate.map(|e| (x.name.clone(), e)))
        .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio));
    let Some(g) = c.geomean else { return Err("nothing measured".into()) };
    match objective {
        Objective::Runtime => {
            if g.hi >= 1.0 {
                return Err(format!(
                    "not significantly faster: suite {:+.2} % [{:+.2}, {:+.2}]",
                    g.delta_pct(),
                    g.ci_pct().0,
                    g.ci_pct().1
                ));
            }
            // Compared as ratios: `(ratio - 1) × 100` rounds 1.08 to 8.000000000000007 %,
            // which would reject a case measured at exactly --max-regression 8.
            let limit = 1.0 + max_regression_pct / 100.0;
            if let Some((name, e)) = worst.filter(|(_, e)| e.ratio > limit) {
                return Err(format!(
                    "{name} is {:+.1} % slower (more than --max-regression {max_regression_pct:.1} %)",
                    e.delta_pct()
                ));
            }
            Ok(())
        }
        Objective::Insns => unreachable!("decided above"),
    }
}

/// The rule of `--objective insns`: the xlated instruction count, summed over
/// the judged cases, drops by at least one (`delta` is attempt minus parent).
/// No timing is needed: the loop compares the code and times nothing.
pub fn accept_insns(delta: i64) -> Result<(), String> {
    if delta >= 0 {
        return Err(format!("no fewer instructions ({delta:+})"));
    }
    Ok(())
}

/// Why an attempt whose every program is its parent's is rejected, untimed.
pub const NO_CODE_CHANGE: &str = "no change in generated code: every case's program is identical to its parent's";

#[cfg(test)]
mod tests {
    use super::*;
    use bench_harness::engine::classify;
    use bench_harness::engine::{CaseComparison, CompareConfig, SideInfo};
    use bench_harness::flavor::Flavor;
    use bench_harness::program::ProgramMetrics;
    use bench_harness::results::{HostInfo, HARNESS_VERSION};
    use bench_harness::stats::paired::RatioEstimate;
    use bench_harness::suite::Flags;

    /// Ratios whose `delta_pct()` is exact in binary: 1 + 1/32 is +3.125 %,
    /// 1 + 1/64 is +1.5625 %. Boundaries are tested on exact values, not on
    /// values that merely print alike.
    const PLUS_3_125: f64 = 1.0 + 1.0 / 32.0;
    const PLUS_1_5625: f64 = 1.0 + 1.0 / 64.0;

    fn est(ratio: f64, lo: f64, hi: f64) -> RatioEstimate {
        RatioEstimate { ratio, lo, hi, n: 20, level: 0.95 }
    }

    /// A measured case whose verdict the engine's rule gives at `threshold_pct`.
    fn case(name: &str, e: RatioEstimate, threshold_pct: f64, insns: (u32, u32)) -> CaseComparison {
        let metrics = |xlated_insns| Some(ProgramMetrics { xlated_insns, jited_bytes: 0, verified_insns: 0 });
        CaseComparison {
            repeat: Some(1),
            base_metrics: metrics(insns.0),
            ref_metrics: metrics(insns.1),
            estimate: Some(e),
            change: Some(classify(&e, threshold_pct)),
            ..CaseComparison::new(name, Flavor::Xdp)
        }
    }

    fn comparison(cases: Vec<CaseComparison>, geomean: Option<RatioEstimate>) -> Comparison {
        let side = || SideInfo { label: "x".into(), source: Default::default() };
        Comparison {
            schema: bench_harness::engine::SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: "2026-12-03T00:00:00Z".into(),
            wall_time_s: 1.0,
            host: HostInfo { hostname: "h".into(), kernel: "k".into(), cpu_model: "c".into(), cpus: 1 },
            base: side(),
            reference: side(),
            same_build: false,
            config: CompareConfig::default(),
            cases,
            geomean,
        }
    }

    /// A suite that is significantly faster, with no case slower.
    fn faster_suite() -> RatioEstimate {
        est(0.95, 0.93, 0.97)
    }

    #[test]
    fn runtime_needs_the_whole_suite_interval_below_one() {
        let ok = |hi: f64| accept(&comparison(vec![], Some(est(0.99, 0.98, hi))), Objective::Runtime, 2.0);
        assert_eq!(ok(0.999), Ok(()));
        assert_eq!(ok(1.0_f64.next_down()), Ok(()));
        // Touching 1 is not "below 1".
        let reason = ok(1.0).unwrap_err();
        assert!(reason.starts_with("not significantly faster: suite -1.00 % [-2.00, +0.00]"), "{reason}");
        assert!(ok(1.0_f64.next_up()).is_err());
        // A faster point estimate does not help when the interval reaches above 1.
        assert!(accept(&comparison(vec![], Some(est(0.9, 0.8, 1.01))), Objective::Runtime, 2.0).is_err());
    }

    #[test]
    fn nothing_measured_keeps_nothing() {
        let c = comparison(vec![case("a", est(0.5, 0.4, 0.6), 1.0, (10, 5))], None);
        assert_eq!(accept(&c, Objective::Runtime, 2.0), Err("nothing measured".into()));
        // Instructions need no timing.
        assert_eq!(accept(&c, Objective::Insns, 2.0), Ok(()));
    }

    #[test]
    fn max_regression_at_its_boundary() {
        // A case significantly slower by exactly 3.125 %: at --max-regression
        // 3.125 it is accepted (the rule is "more than"), just below it is not.
        let slow = case("slow", est(PLUS_3_125, 1.01, 1.05), 1.0, (10, 10));
        assert_eq!(slow.change, Some(Change::Slower));
        let c = comparison(vec![slow], Some(faster_suite()));
        assert_eq!(accept(&c, Objective::Runtime, 3.125), Ok(()));
        assert_eq!(accept(&c, Objective::Runtime, 3.2), Ok(()));
        let reason = accept(&c, Objective::Runtime, 3.125 - 1e-9).unwrap_err();
        assert_eq!(reason, "slow is +3.1 % slower (more than --max-regression 3.1 %)");
        assert!(accept(&c, Objective::Runtime, 2.0).is_err());
        // --max-regression 0: no significant slowdown at all.
        assert!(accept(&c, Objective::Runtime, 0.0).is_err());
    }

    #[test]
    fn the_worst_significant_slowdown_decides() {
        let cases = vec![
            case("small", est(1.01, 1.005, 1.02), 0.5, (10, 10)),
            case("big", est(1.08, 1.02, 1.1), 0.5, (10, 10)),
            // Larger, but not significant: the interval holds 1.
            case("noisy", est(1.3, 0.99, 1.6), 0.5, (10, 10)),
            // A big speedup is never a regression.
            case("fast", est(0.5, 0.45, 0.55), 0.5, (10, 10)),
        ];
        assert_eq!(cases[2].change, Some(Change::NoChange));
        let c = comparison(cases, Some(faster_suite()));
        let reason = accept(&c, Objective::Runtime, 5.0).unwrap_err();
        assert!(reason.starts_with("big is +8.0 % slower"), "{reason}");
        // 1.08 is exactly the limit of --max-regression 8, although
        // (1.08 - 1) × 100 is 8.000000000000007 in floating point.
        assert!(Change::Slower == c.cases[1].change.unwrap() && c.cases[1].estimate.unwrap().delta_pct() > 8.0);
        assert_eq!(accept(&c, Objective::Runtime, 8.0), Ok(()));
        assert!(accept(&c, Objective::Runtime, 7.99).is_err());
    }

    #[test]
    fn threshold_decides_which_slowdowns_count() {
        // Significant +1.5625 %: a regression at --threshold 1.5625 (|Δ| ≥ threshold),
        // no change above it; --max-regression 1 then rejects only in the first case.
        let at = |threshold: f64| {
            let c =
                comparison(vec![case("c", est(PLUS_1_5625, 1.01, 1.02), threshold, (10, 10))], Some(faster_suite()));
            (c.cases[0].change, accept(&c, Objective::Runtime, 1.0))
        };
        let (change, verdict) = at(1.5625);
        assert_eq!(change, Some(Change::Slower));
        assert!(verdict.is_err(), "{verdict:?}");
        let (change, verdict) = at(1.5625_f64.next_up());
        assert_eq!(change, Some(Change::NoChange));
        assert_eq!(verdict, Ok(()));
        // An interval that only touches 1 is not significant, whatever the threshold.
        let c = comparison(vec![case("c", est(1.05, 1.0, 1.1), 0.0, (10, 10))], Some(faster_suite()));
        assert_eq!(c.cases[0].change, Some(Change::NoChange));
        assert_eq!(accept(&c, Objective::Runtime, 0.0), Ok(()));
    }

    #[test]
    fn insns_needs_fewer_instructions() {
        let with = |insns: &[(u32, u32)], g: RatioEstimate| {
            let cases = insns.iter().enumerate().map(|(i, &n)| case(&format!("c{i}"), est(1.0, 0.99, 1.01), 1.0, n));
            accept(&comparison(cases.collect(), Some(g)), Objective::Insns, 2.0)
        };
        let flat = est(1.0, 0.99, 1.01);
        assert_eq!(with(&[(10, 9)], flat), Ok(()));
        // The sum decides: -1 and +1 cancel.
        assert_eq!(with(&[(10, 9), (10, 11)], flat), Err("no fewer instructions (+0)".into()));
        assert_eq!(with(&[(10, 9), (10, 12)], flat), Err("no fewer instructions (+1)".into()));
        assert_eq!(with(&[(10, 10)], flat), Err("no fewer instructions (+0)".into()));
        // The timings are not looked at: a slower suite is kept on fewer instructions.
        assert_eq!(with(&[(10, 9)], est(1.05, 1.0_f64.next_up(), 1.1)), Ok(()));
        assert_eq!(accept_insns(-1), Ok(()));
        assert_eq!(accept_insns(0), Err("no fewer instructions (+0)".into()));
        // A faster suite is not required.
        assert_eq!(with(&[(10, 9)], est(1.01, 0.99, 1.03)), Ok(()));
    }

    #[test]
    fn insns_ignores_per_case_regressions_and_missing_metrics() {
        let mut cases = vec![
            case("slow", est(1.25, 1.2, 1.3), 1.0, (100, 90)),
            case("unmeasured", est(1.0, 0.99, 1.01), 1.0, (0, 0)),
        ];
        // A case without metrics on one side adds nothing to the sum.
        cases[1].ref_metrics = None;
        cases[1].base_metrics = Some(ProgramMetrics { xlated_insns: 1000, jited_bytes: 0, verified_insns: 0 });
        let c = comparison(cases, Some(est(1.0, 0.98, 1.02)));
        assert_eq!(accept(&c, Objective::Insns, 2.0), Ok(()));
        // The same comparison under the runtime objective: rejected twice over.
        assert!(accept(&c, Objective::Runtime, 2.0).unwrap_err().starts_with("not significantly faster"));
    }

    #[test]
    fn flagged_cases_judge_only_when_included() {
        let with = |flags: Flags| {
            let mut c = bench_harness::suite::suite().remove(0);
            c.flags = flags;
            (judges(&c, false), judges(&c, true))
        };
        assert_eq!(with(Flags::default()), (true, true));
        for flags in [
            Flags { use_set: true, ..Flags::default() },
            Flags { use_log: true, ..Flags::default() },
            Flags { userspace_only: true, ..Flags::default() },
        ] {
            assert_eq!(with(flags), (false, true), "{flags:?}");
        }
        // On the real suite: some cases are left out by default, none with --include-flagged.
        let suite = bench_harness::suite::suite();
        let judged = suite.iter().filter(|c| judges(c, false)).count();
        assert!(judged > 0 && judged < suite.len(), "{judged} of {}", suite.len());
        assert!(suite.iter().all(|c| judges(c, true)));
    }
}
