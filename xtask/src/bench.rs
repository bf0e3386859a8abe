//! `cargo xtask bench`: build one tree and run the suite on it.

use crate::machine::Machine;
use crate::progress;
use crate::sources::Sources;
use anyhow::Result;
use bench_harness::results::{RunResults, SourceInfo};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite::{self, Case};
use std::path::{Path, PathBuf};

/// What to benchmark and how.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The bpfilter tree; ignored when `bfcli` is given.
    pub sources: Option<PathBuf>,
    /// A prebuilt bfcli, skipping the build.
    pub bfcli: Option<PathBuf>,
    /// Case filter (comma-separated substrings).
    pub filter: Option<String>,
    /// Sampling.
    pub sampling: SamplingConfig,
    /// The cache directory (build directories live there).
    pub cache: PathBuf,
    /// Where to build and measure.
    pub machine: Machine,
}

/// Build (unless a bfcli is given) and return the bfcli (a path on the
/// machine) and what it was built from. On a remote host, `--bfcli` names a
/// bfcli there.
pub fn prepare(opts: &BenchOptions) -> Result<(PathBuf, SourceInfo)> {
    if let Some(path) = &opts.bfcli {
        let path = match &opts.machine {
            Machine::Local => bench_harness::program::Bfcli::new(path)?.path().to_owned(),
            Machine::Remote(r) => {
                anyhow::ensure!(
                    path.is_absolute(),
                    "with --host, --bfcli names a bfcli on {}: give its absolute path there",
                    r.host()
                );
                path.clone()
            }
        };
        let info = SourceInfo { bfcli: path.display().to_string(), ..SourceInfo::default() };
        return Ok((path, info));
    }
    let sources = Sources::from_arg_or_env(opts.sources.as_deref())?;
    let dir = build_dir(&opts.cache, sources.root());
    let spin = progress::spinner(format!("building bfcli of {} on {}", sources.root().display(), opts.machine.name()));
    let built = opts.machine.build(sources.root(), &dir);
    spin.finish_and_clear();
    let bfcli = built?;
    let (commit, dirty) = sources.git_state().map(|(c, d)| (Some(c), d)).unwrap_or((None, false));
    Ok((bfcli.clone(), SourceInfo { bfcli: bfcli.display().to_string(), commit, dirty }))
}

/// The build directory of a source tree (outside the tree: the user's
/// checkout is never written to).
pub fn build_dir(cache: &Path, sources: &Path) -> PathBuf {
    cache.join("builds").join(crate::workspace::path_key(sources))
}

/// Run the selected cases of the suite, with a progress bar.
pub fn run(opts: &BenchOptions) -> Result<RunResults> {
    let cases = suite::suite();
    let selected: Vec<&Case> = suite::select(&cases, opts.filter.as_deref());
    anyhow::ensure!(
        !selected.is_empty(),
        "no case matches --filter {:?}; see --list",
        opts.filter.clone().unwrap_or_default()
    );
    let (bfcli, source) = prepare(opts)?;
    let bar = progress::bar(selected.len() as u64, "bench");
    let results = opts.machine.bench(
        &bfcli,
        &selected,
        opts.sampling,
        source,
        |name| bar.set_message(name.to_owned()),
        |r| {
            if let bench_harness::results::Status::Failed { reason } = &r.status {
                progress::note(&bar, format!("{}: FAILED: {}", r.name, crate::text::line(reason)));
            }
            bar.inc(1)
        },
    );
    bar.finish_and_clear();
    results
}
