//! `cargo xtask bench-selfcheck`.

use anyhow::Result;
use bench_harness::engine::CompareConfig;
use xtask::flags::SelfcheckFlags;
use xtask::output::{self, Human};
use xtask::session::Session;
use xtask::{bench, exit, progress, selfcheck};

/// The A/A part (unless `--power-only`) and the power part, printed as they go.
pub fn run(flags: SelfcheckFlags) -> Result<i32> {
    let human = Human::new(&[("--json-output", flags.json.json_output.as_deref())])?;
    let session = Session::local(&flags.host, &flags.common, "bench-selfcheck")?;
    // Checked by the session: every measurement below runs under it.
    let isolation = flags.host.isolation();
    let config = flags.quick.base(CompareConfig::default());
    let mut json = serde_json::Map::new();
    if !flags.power_only {
        let bfcli = bench_harness::program::Bfcli::new(bench::prepare(&flags.tree, &flags.bfcli, &session)?.0)?;
        progress::info(format!("A/A: {} comparisons of {} with itself", flags.aa_runs, bfcli.path().display()));
        let aa = selfcheck::aa(&isolation, &bfcli, flags.cases.filter.as_deref(), flags.aa_runs, config, |run, o| {
            progress::info(format!("  run {}: {} false verdicts of {} so far", run + 1, o.false_verdicts, o.verdicts))
        })?;
        human.line(format!(
            "A/A false-verdict rate: {:.1} % ({} of {} case verdicts over {} runs; goal <= 5 %); median 95 % CI width {:.2} points",
            aa.rate() * 100.0,
            aa.false_verdicts,
            aa.verdicts,
            aa.runs,
            aa.median_ci_width_pct
        ));
        json.insert("aa".into(), serde_json::to_value(&aa)?);
        progress::info(format!(
            "power on the build: {} comparisons per injected slowdown, REF's samples scaled",
            flags.power_reps
        ));
        let filter = flags.cases.filter.as_deref();
        let points = selfcheck::injected(&isolation, &bfcli, filter, &flags.inject, flags.power_reps, config, |p| {
            human.line(format!(
                "  injected +{:.1} %: called slower in {:.0} % of case verdicts; {} of {} cases 9 times in 10 or more; {:.0} s per comparison",
                p.inject_pct,
                p.rate() * 100.0,
                p.cases_at_nine_in_ten(),
                p.cases.len(),
                p.mean_wall_time_s
            ));
            for c in &p.cases {
                progress::info(format!(
                    "    {}: slower {}/{} (faster {}), {:.0} rounds",
                    c.case, c.slower, c.verdicts, c.faster, c.mean_rounds
                ));
            }
        })?;
        json.insert("injected".into(), serde_json::to_value(&points)?);
    }
    progress::info(format!(
        "power: {} comparisons per slowdown ({} to {} adaptive rounds each, as the engine does per case)",
        flags.power_reps, config.min_rounds, config.max_rounds
    ));
    let points = selfcheck::power(&isolation, flags.power_reps, config, |p| {
        human.line(format!(
            "  +{:>2} insns: true slowdown {:+.2} %: detected {}/{} (wrong direction {})",
            p.extra_insns, p.true_delta_pct, p.detected, p.reps, p.wrong
        ))
    })?;
    match bench_harness::power::smallest_detected(&points) {
        Some(d) => human.line(format!("smallest slowdown detected 9 times out of 10: {d:.2} % (goal <= 2 %)")),
        None => human.line("no slowdown tried was detected 9 times out of 10"),
    }
    json.insert("power".into(), serde_json::to_value(&points)?);
    if let Some(path) = &flags.json.json_output {
        output::write_output(path, &serde_json::to_vec_pretty(&json)?)?;
        human.wrote("JSON", path);
    }
    Ok(exit::OK)
}
