//! Simulated coverage of the intervals verdicts and keeps rest on, as
//! Markdown tables (doc/measurements.md, "Coverage of the intervals").
//!
//! ```sh
//! cargo run -p bench-harness --release --example coverage -- --seed 42 --reps 10000
//! ```
//!
//! The tables that bootstrap (each replication is 2000 resamples of every
//! case) run `--reps / 20` replications.

use bench_harness::coverage::{self, Noise};
use bench_harness::engine::CompareConfig;

fn main() {
    let mut seed = 42u64;
    let mut reps = 10_000usize;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), parsed) {
            ("--seed", Some(v)) => seed = v,
            ("--reps", Some(v)) if v > 0 => reps = v as usize,
            ("--only", None) if matches!(value.as_deref(), Some("paired" | "geomean" | "adaptive" | "power")) => {
                only = value
            }
            _ => {
                eprintln!(
                    "error: usage: coverage [--seed N] [--reps N] [--only paired|geomean|adaptive|power] (got `{arg}`)"
                );
                std::process::exit(1);
            }
        }
    }
    let wanted = |table: &str| only.as_deref().is_none_or(|o| o == table);
    let boot_reps = (reps / 20).max(1);
    let level = 0.95;
    let pct = |c: coverage::Coverage| format!("{:.1}", 100.0 * c.rate());
    let header = |first: &str| {
        let names: Vec<&str> = Noise::ALL.iter().map(|n| n.name()).collect();
        println!("| {first} | {} |", names.join(" | "));
        println!("|---|{}", "---:|".repeat(names.len()));
    };

    println!("Seed {seed}; nominal 95 %.\n");
    if wanted("paired") {
        println!("**Paired interval** (`paired_ratio`), one case at exactly n rounds, σ = 3 %, {reps} replications:\n");
        header("n");
        for n in [6, 7, 8, 10, 12, 16, 20, 24, 30, 31, 40, 50, 60, 80] {
            let row: Vec<String> =
                Noise::ALL.iter().map(|&noise| pct(coverage::paired(noise, n, level, reps, seed))).collect();
            println!("| {n}{} | {} |", if n > 30 { " (normal)" } else { "" }, row.join(" | "));
        }
    }

    for (name, config) in [("`--quick`", CompareConfig::quick()), ("default", CompareConfig::default())] {
        if !wanted("geomean") {
            break;
        }
        println!("\n**Suite geometric mean** (`suite_geomean`, bootstrap), {name} level, k cases × n rounds, {boot_reps} replications:\n");
        header("k × n");
        let rounds = [config.min_rounds, config.max_rounds];
        for k in [2, 3, 5, 31] {
            for &n in &rounds {
                let row: Vec<String> = Noise::ALL
                    .iter()
                    .map(|&noise| pct(coverage::geomean(noise, k, n, &config, boot_reps, seed)))
                    .collect();
                println!("| {k} × {n} | {} |", row.join(" | "));
            }
        }
    }

    if wanted("power") {
        println!("\n**Sequential loop, power** (`engine::adaptive`, measured-like noise, σ per sample; suites of 31 cases, no budget limit), {boot_reps} replications: share called `slower` / mean rounds:\n");
        println!("| σ | config | 0 % | 1 % | 2 % | 3 % | 5 % |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for sigma in [0.01, 0.02, 0.03, 0.05] {
            for (name, config) in [("`--quick`", CompareConfig::quick()), ("default", CompareConfig::default())] {
                let row: Vec<String> = [0.0, 1.0, 2.0, 3.0, 5.0]
                    .iter()
                    .map(|d| {
                        let out =
                            coverage::detection(Noise::Measured, 31, 1.0 + d / 100.0, sigma, &config, boot_reps, seed);
                        let rate = if *d == 0.0 { out.slower + out.faster } else { out.slower };
                        format!("{:.1} / {:.0}", 100.0 * rate as f64 / out.cases as f64, out.mean_rounds)
                    })
                    .collect();
                println!("| {:.0} % | {name} | {} |", sigma * 100.0, row.join(" | "));
            }
        }
    }
    if !wanted("adaptive") {
        return;
    }
    println!("\n**Adaptive loop** (`engine::adaptive`), suites of 31 cases, {boot_reps} replications: per-case coverage / suite coverage / A/A false verdicts (threshold 1 %) / mean rounds:\n");
    println!("| noise | config | cases | suite | A/A false verdicts | rounds |");
    println!("|---|---|---:|---:|---:|---:|");
    for noise in Noise::ALL {
        for (name, config) in [("`--quick`", CompareConfig::quick()), ("default", CompareConfig::default())] {
            let out = coverage::adaptive(noise, 31, false, &config, boot_reps, seed);
            let aa = coverage::adaptive(noise, 31, true, &config, boot_reps, seed ^ 0xaa);
            println!(
                "| {} | {name} | {} | {} | {:.2} % | {:.1} |",
                noise.name(),
                pct(out.cases),
                pct(out.suite),
                100.0 * aa.false_verdicts as f64 / aa.null_verdicts.max(1) as f64,
                out.mean_rounds
            );
        }
    }
}
