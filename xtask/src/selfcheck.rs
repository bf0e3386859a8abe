//! `cargo xtask bench-selfcheck`: measure the comparison statistics on this
//! host — the false-verdict rate of A/A comparisons of a real build, the
//! per-case power curve (slowdowns injected into A/A comparisons of that
//! build), and the smallest slowdown of generated programs a comparison
//! detects 9 times out of 10.

use crate::host::Isolation;
use crate::revisions::select_cases;
use anyhow::Result;
use bench_harness::engine::Change;
use bench_harness::engine::{self, CompareConfig, SideInfo};
use bench_harness::power::PowerPoint;
use bench_harness::program::Bfcli;
use bench_harness::results::SourceInfo;
use bench_harness::suite::{self, Case};
use serde::{Deserialize, Serialize};

/// Outcome of the A/A part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AaOutcome {
    /// A/A comparisons run.
    pub runs: usize,
    /// Case verdicts produced (runs × cases measured).
    pub verdicts: usize,
    /// Verdicts other than `no change`.
    pub false_verdicts: usize,
    /// Median interval width, in percentage points.
    pub median_ci_width_pct: f64,
}

impl AaOutcome {
    /// False verdicts as a fraction of all verdicts.
    pub fn rate(&self) -> f64 {
        if self.verdicts == 0 {
            0.0
        } else {
            self.false_verdicts as f64 / self.verdicts as f64
        }
    }
}

/// One case's verdicts over the runs at one injected slowdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRate {
    /// Case name.
    pub case: String,
    /// Runs that called it `slower`.
    pub slower: usize,
    /// Runs that called it `faster` (the wrong direction).
    pub faster: usize,
    /// Runs with a verdict on it.
    pub verdicts: usize,
    /// Mean rounds it got.
    pub mean_rounds: f64,
}

/// The detection rates of one injected slowdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedPoint {
    /// REF's samples were multiplied by `1 + inject_pct / 100`.
    pub inject_pct: f64,
    /// Comparisons run.
    pub runs: usize,
    /// Per case.
    pub cases: Vec<CaseRate>,
    /// Mean measuring time of a comparison (`wall_time_s`), in seconds.
    pub mean_wall_time_s: f64,
}

impl InjectedPoint {
    /// `slower` verdicts over all case verdicts.
    pub fn rate(&self) -> f64 {
        let (hit, all) = self.cases.iter().fold((0, 0), |(h, a), c| (h + c.slower, a + c.verdicts));
        if all == 0 {
            0.0
        } else {
            hit as f64 / all as f64
        }
    }

    /// Cases called `slower` in at least 9 of 10 runs.
    pub fn cases_at_nine_in_ten(&self) -> usize {
        self.cases.iter().filter(|c| c.verdicts > 0 && c.slower * 10 >= c.verdicts * 9).count()
    }
}

fn side(bfcli: &Bfcli) -> (Bfcli, SideInfo) {
    let info = SideInfo {
        label: "A".into(),
        source: SourceInfo { bfcli: bfcli.path().display().to_string(), ..Default::default() },
    };
    (bfcli.clone(), info)
}

/// One A/A comparison of `bfcli` with itself, identical programs timed,
/// REF's samples scaled by `1 + inject_pct / 100`, measured on this thread under `isolation`.
fn compare(
    bfcli: &Bfcli,
    selected: &[&Case],
    inject_pct: f64,
    config: CompareConfig,
    isolation: &Isolation,
) -> Result<engine::Comparison> {
    let config = CompareConfig { measure_identical: true, inject_pct, ..config };
    let _isolated = isolation.scope()?;
    Ok(engine::run(side(bfcli), side(bfcli), selected, config, |_| {})?)
}

/// Run `runs` A/A comparisons of `bfcli` over the selected cases (identical
/// programs are always timed here: that is the point), under `isolation`.
pub fn aa(
    isolation: &Isolation,
    bfcli: &Bfcli,
    filter: Option<&str>,
    runs: usize,
    config: CompareConfig,
    mut on_run: impl FnMut(usize, &AaOutcome),
) -> Result<AaOutcome> {
    let cases = suite::suite();
    let selected = select_cases(&cases, filter)?;
    let mut widths = vec![];
    let mut out = AaOutcome { runs: 0, verdicts: 0, false_verdicts: 0, median_ci_width_pct: 0.0 };
    for run in 0..runs {
        let c = compare(bfcli, &selected, 0.0, config, isolation)?;
        for case in c.cases.iter().filter(|x| x.is_ok()) {
            if let (Some(est), Some(change)) = (case.estimate, case.change) {
                out.verdicts += 1;
                widths.push(est.width_pct());
                if change != Change::NoChange {
                    out.false_verdicts += 1;
                }
            }
        }
        out.runs = run + 1;
        out.median_ci_width_pct = bench_harness::stats::median(&widths);
        on_run(run, &out);
    }
    Ok(out)
}

/// The power curve on a real build: for each of `sizes` (in %), `runs`
/// comparisons of `bfcli` with itself with that slowdown injected into REF's
/// samples. Each case keeps its own noise, so its detection rate is what
/// `bench-compare` would achieve on a real change of that size in it.
/// Measured under `isolation`.
pub fn injected(
    isolation: &Isolation,
    bfcli: &Bfcli,
    filter: Option<&str>,
    sizes: &[f64],
    runs: usize,
    config: CompareConfig,
    mut on_point: impl FnMut(&InjectedPoint),
) -> Result<Vec<InjectedPoint>> {
    let cases = suite::suite();
    let selected = select_cases(&cases, filter)?;
    let mut points = vec![];
    for &size in sizes {
        let mut point = InjectedPoint { inject_pct: size, runs: 0, cases: vec![], mean_wall_time_s: 0.0 };
        for _ in 0..runs {
            let c = compare(bfcli, &selected, size, config, isolation)?;
            point.mean_wall_time_s += c.wall_time_s / runs as f64;
            for case in c.cases.iter().filter(|x| x.is_ok() && x.change.is_some()) {
                let i = match point.cases.iter().position(|r| r.case == case.name) {
                    Some(i) => i,
                    None => {
                        let rate =
                            CaseRate { case: case.name.clone(), slower: 0, faster: 0, verdicts: 0, mean_rounds: 0.0 };
                        point.cases.push(rate);
                        point.cases.len() - 1
                    }
                };
                let rate = &mut point.cases[i];
                rate.mean_rounds = (rate.mean_rounds * rate.verdicts as f64 + case.base_samples.len() as f64)
                    / (rate.verdicts + 1) as f64;
                rate.verdicts += 1;
                match case.change {
                    Some(Change::Slower) => rate.slower += 1,
                    Some(Change::Faster) => rate.faster += 1,
                    _ => {}
                }
            }
            point.runs += 1;
        }
        on_point(&point);
        points.push(point);
    }
    Ok(points)
}

/// The power part, measured under `isolation`: see [`bench_harness::power::power`].
pub fn power(
    isolation: &Isolation,
    reps: usize,
    config: CompareConfig,
    on_point: impl FnMut(&PowerPoint),
) -> Result<Vec<PowerPoint>> {
    // Extra instructions on top of a 64-instruction base: from well under 1 %
    // of the program's cost to several %.
    let _isolated = isolation.scope()?;
    Ok(bench_harness::power::power(64, &[1, 2, 4, 8, 16, 32], reps, &config, on_point)?)
}
