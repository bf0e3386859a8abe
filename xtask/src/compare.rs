//! `cargo xtask bench-compare BASE REF`: build both revisions in their own
//! worktrees and compare them with the paired, interleaved engine.

use crate::exit;
use crate::machine::Machine;
use crate::progress;
use crate::sources::Sources;
use crate::worktree::{Repo, Rev};
use anyhow::{Context as _, Result};
use bench_harness::interleave::{CompareConfig, Comparison, Progress, SideInfo};
use bench_harness::results::SourceInfo;
use bench_harness::suite::{self, Case};
use std::path::{Path, PathBuf};

/// Cases left out unless `--filter` names them: loading a 2^20-element set
/// takes seconds per sample, longer than the rest of the suite together.
pub const SLOW_BY_DEFAULT: &[&str] = &["chain_set__ip4_saddr__x_elem_set/1048576"];

/// The cases a comparison or history runs: `--filter`, else all but [`SLOW_BY_DEFAULT`].
pub fn select_cases<'a>(cases: &'a [Case], filter: Option<&str>) -> Result<Vec<&'a Case>> {
    let selected: Vec<&Case> = match filter {
        Some(_) => suite::select(cases, filter),
        None => cases.iter().filter(|c| !SLOW_BY_DEFAULT.contains(&c.name.as_str())).collect(),
    };
    anyhow::ensure!(
        !selected.is_empty(),
        "no case matches --filter {:?}; see cargo xtask bench --list",
        filter.unwrap_or("")
    );
    Ok(selected)
}

/// The cache layout of one repository: its worktrees and build directories.
#[derive(Debug, Clone)]
pub struct RepoCache {
    /// `<cache>/worktrees/<repo>`.
    pub worktrees: PathBuf,
    /// `<cache>/builds/<repo>`.
    pub builds: PathBuf,
}

impl RepoCache {
    /// The layout for the repository at `root` under `cache`.
    pub fn new(cache: &Path, root: &Path) -> Self {
        let key = crate::workspace::path_key(root);
        RepoCache { worktrees: cache.join("worktrees").join(&key), builds: cache.join("builds").join(key) }
    }
}

/// Check `rev` out in `slot` and build its bfcli on `machine`; returns its
/// path there. On a build failure the slot's worktree is removed (nothing
/// half-built is left) and the error carries the log tail. `sandbox` confines
/// the build of a tree holding model-written code (optimize's parents).
pub fn build_rev(
    machine: &Machine,
    repo: &Repo,
    layout: &RepoCache,
    slot: &str,
    rev: &Rev,
    sandbox: Option<&crate::sandbox::Policy>,
) -> Result<PathBuf> {
    let tree = repo.checkout(&layout.worktrees, slot, rev)?;
    let spin = progress::spinner(format!("building {} ({slot}) on {}", rev.label(), machine.name()));
    let built = machine.build_confined(&tree, &layout.builds.join(slot), sandbox);
    spin.finish_and_clear();
    match built {
        Ok(path) => Ok(path),
        Err(e) => {
            let _ = repo.remove_slot(&layout.worktrees, slot);
            Err(e.context(format!("cannot build {}", rev.label())))
        }
    }
}

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The bpfilter checkout.
    pub sources: Option<PathBuf>,
    /// BASE ref.
    pub base: String,
    /// REF ref (`wip` allowed).
    pub reference: String,
    /// Case filter.
    pub filter: Option<String>,
    /// Measurement and verdict settings.
    pub config: CompareConfig,
    /// Cache directory.
    pub cache: PathBuf,
    /// Where to build and measure.
    pub machine: Machine,
}

fn side_info(repo: &Repo, rev: &Rev, bfcli: &Path) -> SideInfo {
    let source = SourceInfo {
        bfcli: bfcli.display().to_string(),
        commit: Some(rev.oid().to_string()),
        dirty: matches!(rev, Rev::Wip { .. }),
    };
    let subject = repo.subject(rev.oid());
    let label = if matches!(rev, Rev::Wip { .. }) { rev.label() } else { format!("{} {subject}", rev.label()) };
    SideInfo { label, source }
}

/// Build both sides and run the comparison.
pub fn run(opts: &CompareOptions) -> Result<Comparison> {
    let sources = Sources::from_arg_or_env(opts.sources.as_deref())?;
    let repo = Repo::open(sources.root())?;
    let base = repo.resolve(&opts.base)?;
    let reference = repo.resolve(&opts.reference)?;
    let cases = suite::suite();
    let selected = select_cases(&cases, opts.filter.as_deref())?;
    let layout = RepoCache::new(&opts.cache, repo.root());

    // The same commit however it was spelled (`HEAD main` too); `wip` only with itself.
    let same = base.oid() == reference.oid() && matches!(base, Rev::Wip { .. }) == matches!(reference, Rev::Wip { .. });
    if same {
        eprintln!("BASE and REF are the same revision: this is an A/A run, measuring the noise (every verdict should be `no change`)");
    }
    let machine = &opts.machine;
    let base_bfcli = build_rev(machine, &repo, &layout, "base", &base, None)?;
    let ref_bfcli =
        if same { base_bfcli.clone() } else { build_rev(machine, &repo, &layout, "ref", &reference, None)? };
    let sides = (
        (base_bfcli.clone(), side_info(&repo, &base, &base_bfcli)),
        (ref_bfcli.clone(), side_info(&repo, &reference, &ref_bfcli)),
    );

    let bar = progress::bar(selected.len() as u64, "loading");
    let min_total = (selected.len() * opts.config.min_rounds) as u64;
    let mut measuring = false;
    let comparison = machine.compare(sides.0, sides.1, &selected, opts.config, |p| match p {
        Progress::Loading(name) => {
            bar.set_message(name.to_owned());
            bar.inc(1);
        }
        Progress::Round { case, done } => {
            if !measuring {
                measuring = true;
                bar.set_prefix("measuring");
                bar.set_length(min_total);
                bar.set_position(0);
            }
            if done as u64 > bar.length().unwrap_or(0) {
                bar.set_length(done as u64);
            }
            bar.set_position(done as u64);
            bar.set_message(case.to_owned());
        }
    });
    bar.finish_and_clear();
    comparison.context("comparison aborted")
}

/// What `--fail-on` fails on (bench-compare and bench-history alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A case significantly slower.
    #[value(alias = "worse")] // bench-history's old `--fail-on-significant-change worse`
    Regression,
    /// A case significantly faster (e.g. to force updating a baseline).
    #[value(alias = "better")]
    Improvement,
    /// Either.
    Any,
}

/// The exit code a comparison warrants under the given flags (doc/exit-codes.md):
/// [`exit::BENCHMARK_ERROR`] with `fail_on_error` when a case failed or was
/// unsupported on either side, else [`exit::SIGNIFICANT`] when `fail_on`
/// selects a verdict found, else [`exit::OK`].
pub fn exit_code(c: &Comparison, fail_on: Option<FailOn>, fail_on_error: bool) -> i32 {
    if fail_on_error && c.errors().next().is_some() {
        return exit::BENCHMARK_ERROR;
    }
    let hit = match fail_on {
        None => false,
        Some(FailOn::Regression) => c.regressions().next().is_some(),
        Some(FailOn::Improvement) => c.improvements().next().is_some(),
        Some(FailOn::Any) => c.regressions().chain(c.improvements()).next().is_some(),
    };
    if hit {
        exit::SIGNIFICANT
    } else {
        exit::OK
    }
}
