//! The suite estimators on a saved comparison (`bench-compare --json-output`):
//! the geometric mean on each case's first-look rounds (the engine's before
//! `suite_geomean_sequential`), on all rounds as if their number were fixed,
//! and on all rounds with the stopping replayed (the engine's now), with the
//! time each took.
//!
//! ```sh
//! cargo run -p bench-harness --release --example suite -- compare.json
//! ```

use bench_harness::engine::{self, Comparison};
use bench_harness::results::Unit;
use bench_harness::stats::paired::RatioEstimate;
use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("error: usage: suite COMPARISON.json");
        std::process::exit(1);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("error: cannot read {path}: {e}");
        std::process::exit(1);
    });
    let c = Comparison::from_json(&text).unwrap_or_else(|e| {
        eprintln!("error: {path} is not a comparison: {e}");
        std::process::exit(1);
    });
    let config = c.config;
    let ones: (&[f64], &[f64]) = (&[1.0], &[1.0]);
    let runtime: Vec<(&[f64], &[f64])> = c
        .cases
        .iter()
        .filter(|x| x.unit == Unit::NsPerPacket && x.is_ok())
        .filter_map(|x| {
            if x.untimed_same_program() {
                Some(ones)
            } else {
                x.estimate.is_some().then_some((x.base_samples.as_slice(), x.ref_samples.as_slice()))
            }
        })
        .collect();
    let first: Vec<(&[f64], &[f64])> = runtime.iter().map(|(b, r)| engine::first_look(b, r, &config)).collect();
    let show = |name: &str, f: &dyn Fn() -> Option<RatioEstimate>| {
        let started = Instant::now();
        let est = f();
        let took = started.elapsed().as_secs_f64();
        match est {
            Some(e) => {
                let (lo, hi) = e.ci_pct();
                println!(
                    "{name:<32} {:+.2} % [{lo:+.2}, {hi:+.2}]  width {:.2} points  ({took:.2} s)",
                    e.delta_pct(),
                    e.width_pct()
                );
            }
            None => println!("{name:<32} none"),
        }
    };
    println!("{path}: {} runtime cases, wall_time_s {:.1}", runtime.len(), c.wall_time_s);
    show("first-look rounds", &|| engine::suite_geomean(&first, &config));
    show("all rounds (fixed n)", &|| engine::suite_geomean(&runtime, &config));
    show("all rounds, stopping replayed", &|| engine::suite_geomean_sequential(&runtime, &config));
}
