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
            ("--only", None)
                if matches!(value.as_deref(), Some("paired" | "geomean" | "adaptive" | "power" | "suite")) =>
            {
                only = value
            }
            _ => {
                eprintln!(
                    "error: usage: coverage [--seed N] [--reps N] [--only paired|geomean|adaptive|power|suite] (got `{arg}`)"
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
    if wanted("suite") {
        println!("\n**Suite estimators after the sequential loop** (`engine::adaptive`, suites of 31 cases, {boot_reps} replications): coverage % / mean width (points):\n");
        println!("| suite | noise | config | first look | all rounds | all rounds, stopping replayed |");
        println!("|---|---|---|---:|---:|---:|");
        type Scenario = (&'static str, fn(usize) -> (f64, f64));
        let scenarios: [Scenario; 3] = [
            ("A/A, σ 1–10 %", |i| (1.0, [0.01, 0.02, 0.03, 0.05, 0.10][i % 5])),
            ("all +3 %, σ 2 %", |_| (1.03, 0.02)),
            ("−6 … +6 %, σ 1–10 %", |i| {
                ((0.02 * ((i % 7) as f64 - 3.0)).exp(), [0.01, 0.02, 0.03, 0.05, 0.10][i % 5])
            }),
        ];
        for (name, case) in scenarios {
            for noise in [Noise::Placement, Noise::Measured] {
                for (cname, config) in [("`--quick`", CompareConfig::quick()), ("default", CompareConfig::default())] {
                    let sims: Vec<coverage::SimCase> = (0..31)
                        .map(|i| {
                            let (ratio, sigma) = case(i);
                            coverage::SimCase { ratio, sigma, noise }
                        })
                        .collect();
                    let out = coverage::suite(&sims, &config, boot_reps, seed);
                    let cell = |s: coverage::SuiteInterval| format!("{} / {:.2}", pct(s.coverage), s.mean_width_pct);
                    println!(
                        "| {name} | {} | {cname} | {} | {} | {} |",
                        noise.name(),
                        cell(out.first_look),
                        cell(out.all_rounds),
                        cell(out.sequential)
                    );
                }
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
