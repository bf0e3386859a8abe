//! `cargo xtask bench-selfcheck`: measure the comparison statistics on this
//! host — the false-verdict rate of A/A comparisons of a real build, and the
//! smallest slowdown a comparison detects 9 times out of 10.

use crate::revisions::select_cases;
use anyhow::Result;
use bench_harness::engine::Change;
use bench_harness::engine::{self, CompareConfig, SideInfo};
use bench_harness::power::PowerPoint;
use bench_harness::program::Bfcli;
use bench_harness::results::SourceInfo;
use bench_harness::suite;
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

/// Run `runs` A/A comparisons of `bfcli` over the selected cases.
pub fn aa(
    bfcli: &Bfcli,
    filter: Option<&str>,
    runs: usize,
    config: CompareConfig,
    mut on_run: impl FnMut(usize, &AaOutcome),
) -> Result<AaOutcome> {
    let cases = suite::suite();
    let selected = select_cases(&cases, filter)?;
    let side = || {
        let info = SideInfo {
            label: "A".into(),
            source: SourceInfo { bfcli: bfcli.path().display().to_string(), ..Default::default() },
        };
        (bfcli.clone(), info)
    };
    let mut widths = vec![];
    let mut out = AaOutcome { runs: 0, verdicts: 0, false_verdicts: 0, median_ci_width_pct: 0.0 };
    for run in 0..runs {
        let c = {
            let _isolated = crate::host::measuring()?;
            engine::run(side(), side(), &selected, config, |_| {})?
        };
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

/// The power part: see [`bench_harness::power::power`].
pub fn power(reps: usize, config: CompareConfig, on_point: impl FnMut(&PowerPoint)) -> Result<Vec<PowerPoint>> {
    // Extra instructions on top of a 64-instruction base: from well under 1 %
    // of the program's cost to several %.
    let _isolated = crate::host::measuring()?;
    Ok(bench_harness::power::power(64, &[1, 2, 4, 8, 16, 32], reps, &config, on_point)?)
}
