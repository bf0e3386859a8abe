//! `cargo xtask`: bfperf's command line. Thin: parsing, dispatch, printing;
//! the work is in the library modules.

use anyhow::{Context as _, Result};
use bench_harness::{report, results::Status, runner::SamplingConfig, suite};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use xtask::{bench, workspace};

/// Performance tooling for bpfilter's generated BPF programs.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build one bpfilter tree and benchmark its generated programs.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench --sources ~/bpfilter\n  \
        BPFILTER_SOURCES=~/bpfilter cargo xtask bench --filter prologue,ip4_saddr\n  \
        cargo xtask bench --bfcli ~/bpfilter/build/output/sbin/bfcli --json-output results.json\n  \
        cargo xtask bench --list")]
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The bpfilter checkout to build and measure [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Use this prebuilt bfcli instead of building the sources.
    #[arg(long, value_name = "PATH", conflicts_with = "sources")]
    bfcli: Option<PathBuf>,
    /// Only cases whose name contains one of these comma-separated substrings.
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// List the suite's cases (with --filter: the selected ones) and exit.
    #[arg(long, short)]
    list: bool,
    /// Write the results as JSON (schema bfperf.results.v1) to this file.
    #[arg(long, value_name = "FILE")]
    json_output: Option<PathBuf>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct SamplingArgs {
    /// Samples per runtime case.
    #[arg(long, default_value_t = SamplingConfig::default().samples)]
    samples: usize,
    /// Target duration of one sample (one BPF_PROG_TEST_RUN call), in ms.
    #[arg(long, default_value_t = SamplingConfig::default().sample_ms)]
    sample_ms: f64,
}

impl SamplingArgs {
    fn config(&self) -> SamplingConfig {
        SamplingConfig { samples: self.samples, sample_ms: self.sample_ms, ..SamplingConfig::default() }
    }
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Where builds, worktrees and cached results live [default: $BFPERF_CACHE or ~/.cache/bfperf].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    bench_harness::interrupt::install();
    let result = match cli.command {
        Command::Bench(args) => cmd_bench(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        let code = if bench_harness::interrupt::requested() { 130 } else { 1 };
        std::process::exit(code);
    }
}

fn color() -> bool {
    console::Term::stdout().is_term() && std::env::var_os("NO_COLOR").is_none()
}

fn cmd_bench(args: BenchArgs) -> Result<()> {
    if args.list {
        let cases = suite::suite();
        for case in suite::select(&cases, args.filter.as_deref()) {
            println!("{:<45} {}", case.name, case.label);
        }
        return Ok(());
    }
    let opts = bench::BenchOptions {
        sources: args.sources,
        bfcli: args.bfcli,
        filter: args.filter,
        sampling: args.sampling.config(),
        cache: workspace::cache_dir(args.common.cache_dir.as_deref())?,
    };
    let results = bench::run(&opts)?;
    println!("{}", report::run_table(&results, color()));
    for line in report::floor_lines(&results) {
        println!("{line}");
    }
    let commit = results.source.commit.as_deref().map(|c| format!(" at {}", &c[..c.len().min(12)])).unwrap_or_default();
    println!("{}{commit}: {} in {:.1} s", results.source.bfcli, report::status_counts(&results), results.wall_time_s);
    let path = match args.json_output {
        Some(p) => p,
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            opts.cache.join("runs").join(format!("bench-{stamp}.json"))
        }
    };
    results.write_atomic(&path).with_context(|| format!("cannot write {}", path.display()))?;
    println!("results: {}", path.display());
    let failed = results.cases.iter().filter(|c| matches!(c.status, Status::Failed { .. })).count();
    anyhow::ensure!(failed == 0, "{failed} case(s) failed: their programs returned the wrong verdict or could not run");
    Ok(())
}
