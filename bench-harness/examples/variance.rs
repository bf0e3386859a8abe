//! Where the variance of a case's samples comes from, on this host's kernel
//! (doc/measurements.md, "Where the variance comes from").
//!
//! ```sh
//! cargo run -p bench-harness --example variance -- --bfcli PATH --case xdp__prologue \
//!     [--copies 8] [--samples 12] [--sample-ms 10]
//! ```
//!
//! Loads `--copies` copies of the case's program (timing each bfcli load),
//! then takes `--samples` rounds; each round samples every copy once, in an
//! order rotated from round to round. Prints, on the log scale in % of the
//! level: the within-copy SD of a sample, the between-copy SD (the JIT
//! placement offset: variance of the copy means less the within part), the
//! same two for the kernel's own `duration`, the effect of a sample's
//! position in its round and of the copy's first samples (warm-up).

use bench_harness::program::Bfcli;
use bench_harness::runner::{self, RunInput};
use bench_harness::suite::{self, Measure};
use bench_harness::suite_run::Side;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut bfcli, mut case_name, mut copies, mut samples, mut sample_ms) = (None, None, 8usize, 12usize, 10.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or("every flag takes a value")?;
        match arg.as_str() {
            "--bfcli" => bfcli = Some(value),
            "--case" => case_name = Some(value),
            "--copies" => copies = value.parse()?,
            "--samples" => samples = value.parse()?,
            "--sample-ms" => sample_ms = value.parse()?,
            _ => return Err(format!("unknown flag {arg}").into()),
        }
    }
    let side = Side::new(Bfcli::new(std::path::PathBuf::from(bfcli.ok_or("--bfcli")?))?)?;
    let cases = suite::suite();
    let name = case_name.ok_or("--case")?;
    let case = cases.iter().find(|c| c.name == name).ok_or("no such case")?;
    let Measure::Runtime { packet, .. } = case.measure else { return Err("not a runtime case".into()) };
    let input = RunInput::new(case.flavor(), packet);

    let mut loads = vec![];
    let mut programs = vec![];
    for _ in 0..copies {
        let t = Instant::now();
        programs.push(side.load(case)?.into_program());
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let repeat = runner::calibrate(&programs[0], &input, Duration::from_secs_f64(sample_ms / 1000.0))?;
    // cpu[copy][round], kernel[copy][round], position[copy][round]
    let mut cpu = vec![vec![]; copies];
    let mut kernel = vec![vec![]; copies];
    let mut position = vec![vec![]; copies];
    for round in 0..samples {
        for k in 0..copies {
            let copy = (k + round) % copies;
            let out = runner::test_run(&programs[copy], &input, repeat)?;
            cpu[copy].push((out.cpu_ns as f64 / f64::from(repeat)).ln());
            kernel[copy].push(f64::from(out.kernel_ns.max(1)).ln());
            position[copy].push(k);
        }
    }
    let pct = |v: f64| (v.max(0.0).sqrt()) * 100.0;
    let components = |x: &[Vec<f64>]| {
        let means: Vec<f64> = x.iter().map(|s| mean(s)).collect();
        let within = x.iter().map(|s| var(s)).sum::<f64>() / x.len() as f64;
        let between = var(&means) - within / samples as f64;
        (pct(within), pct(between))
    };
    let (cw, cb) = components(&cpu);
    let (kw, kb) = components(&kernel);
    let level = mean(&cpu.iter().map(|s| mean(s)).collect::<Vec<_>>()).exp();
    let kernel_level = mean(&kernel.iter().map(|s| mean(s)).collect::<Vec<_>>()).exp();
    println!(
        "{name}: {copies} copies x {samples} samples of {sample_ms} ms (repeat {repeat}); level {level:.1} ns (kernel duration {kernel_level:.0} ns)"
    );
    println!("  bfcli load: median {:.0} ms", median(&loads));
    println!("  thread CPU time: within-copy SD {cw:.2} %, between-copy SD {cb:.2} %");
    println!("  kernel duration: within-copy SD {kw:.2} %, between-copy SD {kb:.2} %");
    // Position in the round: first sample of a round against the others (residuals from each copy's mean).
    let (mut first, mut rest) = (vec![], vec![]);
    let (mut early, mut late) = (vec![], vec![]);
    for (copy, s) in cpu.iter().enumerate() {
        let m = mean(s);
        for (r, v) in s.iter().enumerate() {
            if position[copy][r] == 0 {
                first.push(v - m)
            } else {
                rest.push(v - m)
            }
            if r < 2 {
                early.push(v - m)
            } else {
                late.push(v - m)
            }
        }
    }
    println!(
        "  first in its round vs the rest: {:+.2} %; a copy's first 2 samples vs its later ones: {:+.2} %",
        (mean(&first) - mean(&rest)) * 100.0,
        (mean(&early) - mean(&late)) * 100.0
    );
    Ok(())
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn var(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len().max(2) - 1) as f64
}

fn median(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
