//! `bench-harness`: run the suite against one bfcli and print/write results.
//! The usual entry point is `cargo xtask bench`, which also builds bpfilter.

use anyhow::Context as _;
use bench_harness::results::Status;
use bench_harness::{program::Bfcli, results::SourceInfo, runner::SamplingConfig, suite, suite_run::Bench};
use clap::Parser;
use std::path::PathBuf;

/// Benchmark the BPF programs a bfcli generates.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Examples:\n  bench-harness --bfcli build/output/sbin/bfcli\n  bench-harness --bfcli ./bfcli --filter prologue,ip4_saddr --json-output results.json\n  bench-harness --list"
)]
struct Args {
    /// Path to the bfcli binary of the build under test.
    #[arg(long, env = "BFCLI", required_unless_present = "list")]
    bfcli: Option<PathBuf>,
    /// Only run cases whose name contains one of these comma-separated substrings.
    #[arg(long, short)]
    filter: Option<String>,
    /// List the cases and exit.
    #[arg(long, short)]
    list: bool,
    /// Write the results as JSON (schema bfperf.results.v1) to this file.
    #[arg(long, short = 'o')]
    json_output: Option<PathBuf>,
    /// Samples per runtime case.
    #[arg(long, default_value_t = SamplingConfig::default().samples)]
    samples: usize,
    /// Target duration of one sample, in ms.
    #[arg(long, default_value_t = SamplingConfig::default().sample_ms)]
    sample_ms: f64,
}

fn main() {
    // Exit codes as bfperf's (doc/exit-codes.md): a usage error is 1, not clap's 2.
    let args = Args::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        use clap::error::ErrorKind;
        let asked = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
        std::process::exit(if asked { 0 } else { 1 })
    });
    if let Err(e) = run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(if bench_harness::interrupt::requested() { bench_harness::interrupt::EXIT_CODE } else { 1 });
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let cases = suite::suite();
    let selected = suite::select(&cases, args.filter.as_deref());
    anyhow::ensure!(!selected.is_empty(), "no case matches --filter {:?}; see --list", args.filter.unwrap_or_default());
    if args.list {
        for case in selected {
            println!("{:<45} {}", case.name, case.label);
        }
        return Ok(());
    }
    let bfcli = Bfcli::new(args.bfcli.expect("required by clap"))?;
    let config = SamplingConfig { samples: args.samples, sample_ms: args.sample_ms, ..SamplingConfig::default() };
    let source = SourceInfo { bfcli: bfcli.path().display().to_string(), ..SourceInfo::default() };
    let mut bench = Bench::new(bfcli, config)?;
    let total = selected.len();
    let results = bench.run(&selected, source, |i, c| eprintln!("[{}/{total}] {}", i + 1, c.name), |_| {})?;
    // Plain lines: the tables are `cargo xtask bench`'s (xtask's output layer).
    for case in &results.cases {
        match (&case.status, case.summary) {
            (Status::Ok, Some(s)) => {
                let unit = if case.unit == bench_harness::results::Unit::Milliseconds { "ms" } else { "ns/pkt" };
                println!("{:<45} {:.2} {unit}", case.name, s.median)
            }
            (status, _) => println!("{:<45} {status:?}", case.name),
        }
    }
    let ok = results.cases.iter().filter(|c| c.status == Status::Ok).count();
    println!("{ok} of {} ok in {:.1} s", results.cases.len(), results.wall_time_s);
    if let Some(path) = args.json_output {
        results.write_atomic(&path).with_context(|| format!("cannot write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}
