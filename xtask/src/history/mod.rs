//! `cargo xtask bench-history`: benchmark every commit of a range (oldest
//! first), find the commits that changed performance, and write a
//! self-contained HTML report.
//!
//! Each commit is compared with the previous one that built, with the same
//! paired, interleaved engine as `bench-compare`. Comparing separate runs
//! instead (each commit measured alone, then tested unpaired) was tried and
//! rejected: run-to-run differences of separately loaded programs reached
//! ±40 % on this class of machine while within-run samples agreed to ±3 %, so
//! README-only commits were flagged as changes. Builds are cached per commit
//! and comparisons per (parent, commit, host, harness version, suite), so a
//! second run builds and measures nothing.

pub mod cache;
pub mod markdown;
pub mod shard;
pub mod trend;

use crate::exit;
use crate::exit::FailOn;
use crate::flags::{HistoryFlags, MeasureFlags};
use crate::machine::Machine;
use crate::progress;
use crate::revisions::{select_cases, RepoCache};
use crate::session::{self, Session};
use crate::worktree::{short, Repo, Rev};
use anyhow::{Context as _, Result};
use bench_harness::engine::Change;
use bench_harness::engine::{CaseComparison, CompareConfig, Comparison, SideInfo};
use bench_harness::results::{self, CaseResult, RunResults, SourceInfo, Status, HARNESS_VERSION};
use bench_harness::stats::paired::RatioEstimate;
use bench_harness::stats::Summary;
use bench_harness::suite::{self, Case};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Each commit is judged against this many predecessors: its nearest one
/// that built, in a paired comparison (see the module documentation).
pub const WINDOW: usize = 1;
/// Confidence level of history verdicts: each commit is a test, so a
/// stricter level than a single comparison keeps false alarms rare.
pub const LEVEL: f64 = 0.99;
/// Default false discovery rate of the change list (`--fdr`).
pub const DEFAULT_FDR: f64 = 0.05;

/// `--fdr`'s parser: a rate strictly between 0 and 1.
pub fn parse_fdr(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if q > 0.0 && q < 1.0 => Ok(q),
        _ => Err(format!("`{text}` is not a rate between 0 and 1 (e.g. 0.05)")),
    }
}

/// Which cached results to measure again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Commits whose build or run failed.
    Failed,
    /// Every commit.
    All,
    /// One commit (resolved ref).
    Commit(String),
}

impl std::str::FromStr for Retry {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "failed" => Retry::Failed,
            "all" => Retry::All,
            other => Retry::Commit(other.to_owned()),
        })
    }
}

/// What happened to one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PointStatus {
    /// Measured (now or from the cache).
    Measured {
        /// Whether the result came from the cache.
        cached: bool,
    },
    /// The commit did not build; it is skipped.
    BuildFailed {
        /// The error, log tail included.
        reason: String,
    },
    /// The commit built, but its bfcli cannot be driven as bfperf drives it
    /// (a tree from before bpfilter's daemon removal): not measured, and not
    /// a failure.
    UnsupportedTree {
        /// The one line saying so, naming the first supported commit.
        reason: String,
    },
    /// Not measured by any shard merged (`--merge`), or another shard's
    /// (a shard's own report): not a failure of the commit.
    Missing {
        /// Which shard owns it, and why it is not here.
        reason: String,
    },
}

/// One commit of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Full commit id (`wip` points: HEAD's).
    pub commit: String,
    /// Short id, or `wip`.
    pub label: String,
    /// Commit subject.
    pub subject: String,
    /// Outcome.
    pub status: PointStatus,
    /// The run, when measured.
    pub results: Option<RunResults>,
    /// This commit against its base (the previous commit that built; with
    /// `--all-parents` its first parent): the paired comparison the verdicts
    /// come from; none for the first commit and a commit that did not build.
    /// Data for readers of the JSON: the report draws [`History::trend`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<Pair>,
}

/// A commit's paired comparison with the previous commit that built, as the
/// report needs it: per case the ratio and whether the programs are the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Per case measured on both sides: REF (this commit) / BASE with its interval.
    pub cases: Vec<PairCase>,
    /// The suite geometric mean of the ratios, with its interval.
    pub geomean: Option<RatioEstimate>,
    /// The host that measured the pair: the `--host` target, or the
    /// measuring host's name (with shards, each pair's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_on: Option<String>,
}

/// One case of a [`Pair`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairCase {
    /// Case name.
    pub case: String,
    /// This commit / the previous one, with its interval.
    pub estimate: RatioEstimate,
    /// Whether both commits load the same program (`None`: not known).
    pub same_program: Option<bool>,
}

impl Pair {
    /// The pair of a comparison: its cases measured on both sides.
    pub fn of(c: &Comparison) -> Pair {
        let cases = c
            .cases
            .iter()
            .filter(|x| x.is_ok())
            .filter_map(|x| {
                Some(PairCase { case: x.name.clone(), estimate: x.estimate?, same_program: x.same_program })
            })
            .collect();
        Pair { cases, geomean: c.geomean, measured_on: None }
    }

    /// The pair, measured on `host`.
    pub fn on(mut self, host: &str) -> Pair {
        self.measured_on = Some(host.to_owned());
        self
    }
}

impl Point {
    /// Samples of `case` at this commit; empty when it was not measured ok.
    pub fn samples(&self, case: &str) -> Vec<f64> {
        self.results
            .as_ref()
            .and_then(|r| r.cases.iter().find(|c| c.name == case))
            .filter(|c| c.status == Status::Ok)
            .map(|c| c.samples.clone())
            .unwrap_or_default()
    }
}

/// A significant change along a history (part of [`CaseChange`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryChange {
    /// Index of the commit in the series.
    pub index: usize,
    /// The commit's estimate against the commit before it.
    pub estimate: RatioEstimate,
    /// Direction of the change ([`Change::NoChange`] never appears).
    pub change: Change,
}

/// A significant change of one case at one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseChange {
    /// Case name.
    pub case: String,
    /// Commit label.
    pub commit: String,
    /// Commit subject.
    pub subject: String,
    /// The change (index into `points`, estimate against the previous commit that built).
    /// The estimate's interval is at the history's `change_level`.
    pub change: HistoryChange,
    /// Two-sided p-value of the Wilcoxon signed-rank test on the pair's rounds.
    #[serde(default)]
    pub p_value: f64,
}

/// The suite-level change of one commit against the previous one measured:
/// the geometric mean of REF/BASE over the runtime cases of the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteChange {
    /// Index of the commit in `points`.
    pub index: usize,
    /// Commit label.
    pub commit: String,
    /// Commit subject.
    pub subject: String,
    /// The geometric mean with its interval, at the history's `suite_level`.
    pub estimate: RatioEstimate,
    /// Two-sided p-value (the bootstrap of the geometric mean, inverted).
    pub p_value: f64,
    /// The verdict: significant under the false discovery rate over the
    /// commits and at least the threshold, or [`Change::NoChange`].
    pub change: Change,
}

/// Schema identifier of [`History`] as written by `--json-output`.
pub const SCHEMA: &str = "bfperf.history.v2";

/// A whole history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Always [`SCHEMA`].
    #[serde(default)]
    pub schema: String,
    /// The repository.
    pub repo: String,
    /// Case names, in suite order.
    pub cases: Vec<String>,
    /// Commits, oldest first.
    pub points: Vec<Point>,
    /// Significant changes found: discoveries of the Benjamini–Hochberg
    /// procedure at `fdr` over every (case, commit) pair measured, at least
    /// `threshold_pct` large.
    pub changes: Vec<CaseChange>,
    /// Threshold used, in %.
    pub threshold_pct: f64,
    /// False discovery rate the change lists control (`--fdr`).
    #[serde(default)]
    pub fdr: f64,
    /// Hypotheses tested for `changes`: (case, commit) pairs with an estimate.
    #[serde(default)]
    pub tests: usize,
    /// Confidence level of the intervals in `changes` (false-coverage-rate
    /// adjusted: `1 - R·fdr/tests` for `R` discoveries).
    #[serde(default)]
    pub change_level: f64,
    /// The suite-level change of each measured commit but the first, oldest first.
    #[serde(default)]
    pub suite: Vec<SuiteChange>,
    /// Confidence level of the intervals in `suite` (adjusted as `change_level`, over the commits).
    #[serde(default)]
    pub suite_level: f64,
    /// The chained paired ratios per case and for the suite, for the plots.
    #[serde(default)]
    pub trend: trend::Trend,
}

impl History {
    /// How many commits changed the suite significantly: a range whose cases
    /// stay under the false discovery rate one by one can still move the suite.
    pub fn suite_changes(&self) -> usize {
        self.suite.iter().filter(|s| s.change != Change::NoChange).count()
    }

    /// When some commits cannot be measured because their trees predate
    /// bpfilter's daemon removal: one line saying where the range stops being
    /// measurable (its newest unsupported commit, and the first measurable
    /// one after it) and the first bpfilter commit bfperf supports.
    pub fn unsupported_note(&self) -> Option<String> {
        let unsupported = |p: &Point| matches!(p.status, PointStatus::UnsupportedTree { .. });
        let count = self.points.iter().filter(|p| unsupported(p)).count();
        let last = self.points.iter().rposition(unsupported)?;
        let next = self.points[last + 1..].iter().find(|p| matches!(p.status, PointStatus::Measured { .. }));
        let from = next.map_or_else(|| "nowhere in it".to_owned(), |p| format!("from {} on", p.label));
        Some(format!(
            "unsupported tree: {count} commit{} up to {} predate{} bpfilter's daemon removal and {} not measured; the range is measurable {from} (bfperf supports bpfilter from commit {} on)",
            if count == 1 { "" } else { "s" },
            self.points[last].label,
            if count == 1 { "s" } else { "" },
            if count == 1 { "is" } else { "are" },
            bench_harness::program::FIRST_SUPPORTED_COMMIT
        ))
    }

    /// Changes in one direction.
    pub fn changes_of(&self, kind: Change) -> impl Iterator<Item = &CaseChange> {
        self.changes.iter().filter(move |c| c.change.change == kind)
    }
}

/// The exit code a history warrants (doc/exit-codes.md): [`exit::BENCHMARK_ERROR`]
/// with `fail_on_error` when a commit failed to build or a case failed at a
/// measured commit (with `last_only`, the old `--fail-on-last-commit-failure`:
/// when the newest commit failed to build); else [`exit::SIGNIFICANT`] when
/// `fail_on` selects a change found; else [`exit::OK`].
pub fn exit_code(h: &History, fail_on: Option<FailOn>, fail_on_error: bool, last_only: bool) -> i32 {
    let build_failed = |p: &Point| matches!(p.status, PointStatus::BuildFailed { .. });
    let case_failed = |p: &Point| {
        p.results.as_ref().is_some_and(|r| r.cases.iter().any(|c| matches!(c.status, Status::Failed { .. })))
    };
    if (fail_on_error && h.points.iter().any(|p| build_failed(p) || case_failed(p)))
        || (last_only && h.points.last().is_some_and(build_failed))
    {
        return exit::BENCHMARK_ERROR;
    }
    let hit = match fail_on {
        None => false,
        Some(FailOn::Regression) => h.changes_of(Change::Slower).next().is_some(),
        Some(FailOn::Improvement) => h.changes_of(Change::Faster).next().is_some(),
        Some(FailOn::Any) => !h.changes.is_empty(),
    };
    if hit {
        exit::SIGNIFICANT
    } else {
        exit::OK
    }
}

/// How many points are [`PointStatus::Missing`]: measured by no shard merged.
pub fn missing(h: &History) -> usize {
    h.points.iter().filter(|p| matches!(p.status, PointStatus::Missing { .. })).count()
}

/// bench-history's measurement settings: 60 s per pair of consecutive commits
/// unless `--quick` or `--time-budget` say otherwise, and [`LEVEL`].
pub fn config(measure: &MeasureFlags) -> Result<CompareConfig> {
    let mut config = measure.config(CompareConfig { time_budget_s: 60.0, ..CompareConfig::default() }, None)?;
    config.level = LEVEL;
    // Every commit's medians are plotted, so every case is timed, identical
    // programs included.
    config.measure_identical = true;
    Ok(config)
}

/// Resolve the range into revisions, oldest first.
fn revisions(repo: &Repo, flags: &HistoryFlags) -> Result<Vec<Rev>> {
    let since_spec = flags.since.as_deref().context("--since is required")?;
    let since = repo.resolve(since_spec)?;
    let until = repo.resolve(&flags.until)?;
    let mut wip = matches!(until, Rev::Wip { .. });
    // The range is oldest first already (first-parent order). Commit times
    // are not a safe order: scripted commits and rebases give many commits the
    // same second, and clocks are skewed. So each extra commit goes before the
    // first commit of the range that descends from it, or after the last one
    // it descends from; only a commit related to none is placed by time.
    let git = repo.git();
    let mut oids = if flags.all_parents {
        all_parents(repo, since.oid(), until.oid())?
    } else {
        repo.range(since.oid(), until.oid())?
    };
    // A range of one commit, with nothing added, is measured against its first parent.
    if oids.len() == 1 && !wip && flags.include.is_empty() {
        let commit = git.find_commit(oids[0])?;
        let parent = commit.parent_id(0).map_err(|_| {
            anyhow::anyhow!(
                "the range {}..{} holds one commit, the root commit: it has no parent to be compared with",
                since_spec,
                flags.until
            )
        })?;
        oids.insert(0, parent);
    }
    let time = |o: git2::Oid| git.find_commit(o).map(|c| c.time().seconds()).unwrap_or(0);
    let descends = |a: git2::Oid, b: git2::Oid| git.graph_descendant_of(a, b).unwrap_or(false);
    for extra in &flags.include {
        let rev = repo.resolve(extra)?;
        if matches!(rev, Rev::Wip { .. }) {
            // The working tree: the last point, whatever the range.
            wip = true;
            continue;
        }
        let oid = rev.oid();
        if oids.contains(&oid) {
            continue;
        }
        let at = oids
            .iter()
            .position(|&o| descends(o, oid))
            .or_else(|| oids.iter().rposition(|&o| descends(oid, o)).map(|i| i + 1))
            .unwrap_or_else(|| oids.iter().rposition(|&o| time(o) <= time(oid)).map_or(0, |i| i + 1));
        oids.insert(at, oid);
    }
    let mut revs: Vec<Rev> = oids.into_iter().map(|oid| Rev::Commit { oid, spec: oid.to_string() }).collect();
    if wip {
        revs.push(Rev::Wip { head: repo.head()? });
    }
    anyhow::ensure!(
        revs.len() >= 2,
        "the range {}..{} holds one commit: a history needs two or more",
        since_spec,
        flags.until
    );
    Ok(revs)
}

/// Commits from `since` (included) to `until` (included) on every path:
/// merged branches too, parents before children. Errors when `since` is not
/// an ancestor of `until`.
fn all_parents(repo: &Repo, since: git2::Oid, until: git2::Oid) -> Result<Vec<git2::Oid>> {
    let git = repo.git();
    if since != until && !git.graph_descendant_of(until, since)? {
        anyhow::bail!(
            "--since {} is not an ancestor of --until {}: is the range reversed?",
            short(since),
            short(until)
        );
    }
    let mut walk = git.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    walk.push(until)?;
    walk.hide(since)?;
    let mut commits: Vec<git2::Oid> = vec![since];
    for oid in walk {
        let oid = oid?;
        // Commits of a merged branch that forked before `since` are not in
        // the range: only descendants of `since` are.
        if git.graph_descendant_of(oid, since)? {
            commits.push(oid);
        }
    }
    Ok(commits)
}

/// A commit with its built bfcli (or why it has none).
struct Built {
    rev: Rev,
    label: String,
    subject: String,
    bfcli: Result<PathBuf, String>,
    cached: bool,
    /// Why its bfcli cannot be driven, when it cannot.
    unsupported: Option<String>,
}

/// Build (or reuse the cached build of) one revision. Each commit has its own
/// build directory, kept: its bfcli stays usable after the worktree moves on.
/// The failure marker is local even for a remote host: the per-host cache
/// directory keeps one host's failures apart from another's.
fn build_commit(
    machine: &Machine,
    repo: &Repo,
    layout: &RepoCache,
    rev: &Rev,
    retry: bool,
) -> Result<(Result<PathBuf, String>, bool)> {
    let is_wip = matches!(rev, Rev::Wip { .. });
    // `wip` padded to a commit id's 40 characters (not hex: no commit's name): a
    // build path of another length moves a chain load by itself (crate::revisions::REF_SLOT).
    let dir =
        layout.builds.join("commits").join(if is_wip { format!("{:0<40}", "wip") } else { rev.oid().to_string() });
    let failed_marker = dir.join("bfperf-build-failed");
    if !is_wip && !retry {
        if let Ok(reason) = std::fs::read_to_string(&failed_marker) {
            return Ok((Err(reason), true));
        }
        if let Some(bfcli) = machine.built_bfcli(&dir)? {
            return Ok((Ok(bfcli), true));
        }
    }
    let _ = std::fs::remove_file(&failed_marker);
    let tree = {
        let _turn = GIT.lock().unwrap_or_else(|e| e.into_inner());
        repo.checkout(&layout.worktrees, "history", rev)?
    };
    match machine.build(&tree, &dir) {
        Ok(path) => Ok((Ok(path), false)),
        Err(e) => {
            bench_harness::interrupt::check()?;
            let reason = format!("{e:#}");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&failed_marker, &reason)?;
            Ok((Err(reason), false))
        }
    }
}

/// How one run of a history is split: the shard it measures, and a tag for
/// its progress lines when several hosts run at once.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Measure only this shard's pairs, and leave its record in the cache.
    pub shard: Option<shard::Shard>,
    /// Added to the progress lines (` on HOST`).
    pub tag: String,
}

/// Each point's planned base, the point its pair is planned against: with
/// `--all-parents` its first parent when that is a point of the range, else
/// the point before it; none for the first point. When the planned base does
/// not build, the pair is measured against the previous point that builds.
fn plan(repo: &Repo, revs: &[Rev], all_parents: bool) -> Vec<Option<usize>> {
    (0..revs.len())
        .map(|j| {
            if j == 0 {
                return None;
            }
            let parent = all_parents
                .then(|| repo.git().find_commit(revs[j].oid()).ok()?.parent_id(0).ok())
                .flatten()
                .filter(|_| !matches!(revs[j], Rev::Wip { .. }));
            let at = parent.and_then(|p| revs[..j].iter().position(|r| r.oid() == p));
            Some(at.unwrap_or(j - 1))
        })
        .collect()
}

/// Git operations on the user's repository (worktree slots) from several
/// hosts' threads at once take turns; builds and measurements do not.
static GIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Build one point (or take its cached build) and probe its bfcli.
fn build_point(
    flags: &HistoryFlags,
    session: &Session,
    repo: &Repo,
    layout: &RepoCache,
    retry_oid: Option<git2::Oid>,
    rev: Rev,
    bar: &indicatif::ProgressBar,
) -> Result<Built> {
    bench_harness::interrupt::check()?;
    let is_wip = matches!(rev, Rev::Wip { .. });
    let label = if is_wip { "wip".to_owned() } else { short(rev.oid()) };
    let subject = if is_wip { "uncommitted changes".to_owned() } else { repo.subject(rev.oid()) };
    bar.set_message(format!("{label} {}", crate::text::line(&subject)));
    let retry = match &flags.retry {
        Some(Retry::All) => true,
        Some(Retry::Failed) => true, // a cached success is reused below regardless
        Some(Retry::Commit(_)) => retry_oid == Some(rev.oid()),
        None => false,
    };
    // `--retry failed` rebuilds only what failed: a good cached build stays.
    let only_failed = matches!(flags.retry, Some(Retry::Failed));
    let (bfcli, cached) = if only_failed {
        match build_commit(&session.machine, repo, layout, &rev, false)? {
            (Err(_), true) => build_commit(&session.machine, repo, layout, &rev, true)?,
            other => other,
        }
    } else {
        build_commit(&session.machine, repo, layout, &rev, retry)?
    };
    if let Err(reason) = &bfcli {
        let first = reason.lines().next().unwrap_or_default();
        progress::note(bar, format!("{label} does not build, skipped: {}", crate::text::line(first)));
    }
    // Once per build: can its bfcli be driven at all?
    let unsupported = match &bfcli {
        Ok(path) => session.machine.probe(path)?,
        Err(_) => None,
    };
    let outcome = match (&bfcli, &unsupported) {
        (Err(_), _) => "does not build",
        (Ok(_), Some(_)) => "unsupported tree",
        (Ok(_), None) => "built",
    };
    progress::step(bar, format!("{label}: {outcome}{}", if cached { " (cached)" } else { "" }));
    Ok(Built { rev, label, subject, bfcli, cached, unsupported })
}

/// Run the history: every pair of the range.
pub fn run(flags: &HistoryFlags, session: &Session) -> Result<History> {
    run_with(flags, session, &Split::default())
}

/// Run the history as `split` says: every pair, or one shard's.
pub fn run_with(flags: &HistoryFlags, session: &Session, split: &Split) -> Result<History> {
    let config = config(&flags.measure)?;
    let sources = session::sources(&flags.tree)?;
    let repo = Repo::open(sources.root())?;
    let revs = revisions(&repo, flags)?;
    if split.shard.is_some() && revs.iter().any(|r| matches!(r, Rev::Wip { .. })) {
        anyhow::bail!(
            "--shard cannot measure wip: uncommitted changes are not cached, so no merge could find them (commit them first)"
        );
    }
    let all_cases = suite::suite();
    let selected: Vec<&Case> = select_cases(&all_cases, flags.cases.filter.as_deref())?;
    let layout = RepoCache::new(&session.cache, repo.root());
    let store = cache::ResultCache::new(&session.cache, repo.root(), &selected, &config);
    let retry_oid = match &flags.retry {
        Some(Retry::Commit(spec)) => Some(repo.resolve(spec)?.oid()),
        _ => None,
    };
    let measured_on = session.machine.host_name();
    let tag = &split.tag;
    let n = revs.len();
    let planned = plan(&repo, &revs, flags.all_parents);
    let oid = |i: usize| revs[i].oid().to_string();
    let owns = |j: usize| match (planned[j], &split.shard) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(b), Some(s)) => s.owns(&oid(b), &oid(j)),
    };
    let owned: Vec<usize> = (0..n).filter(|&j| owns(j)).collect();
    // The points to build: all of them, or the two of each pair this shard owns.
    let wanted: std::collections::BTreeSet<usize> = match split.shard {
        None => (0..n).collect(),
        Some(_) => owned.iter().flat_map(|&j| [planned[j].expect("owned pairs have a base"), j]).collect(),
    };
    if let Some(s) = &split.shard {
        let names: Vec<String> = owned
            .iter()
            .map(|&j| format!("{} → {}", short(revs[planned[j].unwrap()].oid()), short(revs[j].oid())))
            .collect();
        let list = if names.len() <= 8 { format!(": {}", names.join(", ")) } else { String::new() };
        progress::info(format!(
            "shard {s}{tag}: measures {} of the range's {} pairs{list}; skips {}, measured by the other shards",
            owned.len(),
            n - 1,
            n - 1 - owned.len()
        ));
    }

    // 1. Builds, oldest first.
    let bar = progress::bar(wanted.len() as u64, format!("building{tag}"));
    let mut built: Vec<Option<Built>> = (0..n).map(|_| None).collect();
    for &i in &wanted {
        built[i] = Some(build_point(flags, session, &repo, &layout, retry_oid, revs[i].clone(), &bar)?);
    }
    let is_good = |b: &Option<Built>| b.as_ref().is_some_and(|b| b.bfcli.is_ok() && b.unsupported.is_none());
    // A shard's pair whose planned base does not build is measured against the
    // previous point that builds, as an unsharded run measures it: build
    // backwards until one does.
    for &j in &owned {
        let base = planned[j].expect("owned pairs have a base");
        if !is_good(&built[j]) || is_good(&built[base]) {
            continue;
        }
        for k in (0..j).rev() {
            if built[k].is_none() {
                bar.inc_length(1);
                built[k] = Some(build_point(flags, session, &repo, &layout, retry_oid, revs[k].clone(), &bar)?);
            }
            if is_good(&built[k]) {
                break;
            }
        }
    }
    bar.finish_and_clear();

    // 2. Each owned point that built against its base.
    let mut history = History {
        schema: SCHEMA.into(),
        repo: repo.root().display().to_string(),
        cases: selected.iter().map(|c| c.name.clone()).collect(),
        points: vec![],
        changes: vec![],
        threshold_pct: config.threshold_pct,
        fdr: flags.fdr,
        tests: 0,
        change_level: 0.0,
        suite: vec![],
        suite_level: 0.0,
        trend: trend::Trend::default(),
    };
    if split.shard.is_none() && !built.iter().any(is_good) {
        if let Some(reason) = built.iter().flatten().find_map(|b| b.unsupported.as_ref()) {
            anyhow::bail!(
                "no commit of the range can be measured: {}",
                reason.split_once(": ").map_or(reason.as_str(), |(_, why)| why)
            );
        }
        anyhow::bail!("no commit of the range builds: nothing to measure");
    }
    let base_of = |j: usize| -> Option<usize> {
        let b = planned[j]?;
        if is_good(&built[b]) {
            Some(b)
        } else {
            (0..j).rev().find(|&k| is_good(&built[k]))
        }
    };
    let pairs: Vec<(usize, usize)> =
        owned.iter().filter(|&&j| is_good(&built[j])).filter_map(|&j| Some((base_of(j)?, j))).collect();
    let mut comparisons: Vec<Option<(Comparison, bool, String)>> = vec![None; n];
    let mut bases: Vec<Option<usize>> = vec![None; n];
    let bar = progress::bar(pairs.len() as u64, format!("measuring{tag}"));
    for &(i, j) in &pairs {
        bases[j] = Some(i);
        let (a, b) = (built[i].as_ref().expect("built"), built[j].as_ref().expect("built"));
        bar.set_message(format!("{} → {}", a.label, b.label));
        let is_wip = matches!(b.rev, Rev::Wip { .. });
        let force = matches!(flags.retry, Some(Retry::All))
            || retry_oid.is_some_and(|o| o == a.rev.oid() || o == b.rev.oid())
            || !a.cached
            || !b.cached;
        let key = (a.rev.oid().to_string(), b.rev.oid().to_string());
        let cached = if is_wip || force { None } else { store.load_entry(&key.0, &key.1, |w| progress::note(&bar, w)) };
        // `--retry failed` also measures again the pairs where a case failed to run.
        let failed_run = |c: &Comparison| {
            c.cases.iter().any(|x| {
                matches!(x.base_status, Status::Failed { .. }) || matches!(x.ref_status, Status::Failed { .. })
            })
        };
        let cached = cached.filter(|e| !(matches!(flags.retry, Some(Retry::Failed)) && failed_run(&e.comparison)));
        let comparison = match cached {
            Some(e) => {
                let host = e.host();
                (e.comparison, true, host)
            }
            None => {
                let side = |x: &Built| {
                    let bfcli = x.bfcli.clone().expect("only built commits are compared");
                    let source = SourceInfo {
                        bfcli: bfcli.display().to_string(),
                        commit: Some(x.rev.oid().to_string()),
                        dirty: is_wip && std::ptr::eq(x, b),
                    };
                    (bfcli, SideInfo { label: format!("{} {}", x.label, x.subject), source })
                };
                let c = session
                    .machine
                    .compare(side(a), side(b), &selected, config, |_| {})
                    .with_context(|| format!("comparing {} with {}", b.label, a.label))?;
                if !is_wip {
                    store.store_pair(&key.0, &key.1, &c, &measured_on)?;
                }
                (c, false, measured_on.clone())
            }
        };
        let from_cache = if comparison.1 { " (cached)" } else { "" };
        progress::step(&bar, format!("{} → {}: measured{from_cache}", a.label, b.label));
        comparisons[j] = Some(comparison);
    }
    bar.finish_and_clear();

    // 3. The shard's record, for --merge.
    if let Some(s) = &split.shard {
        let state = |b: &Built| match (&b.bfcli, &b.unsupported) {
            (Err(reason), _) => shard::BuildState::BuildFailed { reason: reason.clone() },
            (Ok(_), Some(reason)) => shard::BuildState::UnsupportedTree { reason: reason.clone() },
            (Ok(_), None) => shard::BuildState::Built,
        };
        let record = shard::ShardRecord {
            schema: shard::SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            suite: cache::suite_version(&selected),
            settings: config,
            cases: history.cases.clone(),
            shard: s.index,
            shards: s.count,
            host: measured_on.clone(),
            repo: history.repo.clone(),
            points: revs
                .iter()
                .enumerate()
                .map(|(i, r)| shard::RecordPoint {
                    commit: r.oid().to_string(),
                    label: short(r.oid()),
                    subject: built[i].as_ref().map_or_else(|| repo.subject(r.oid()), |b| b.subject.clone()),
                    planned_base: planned[i],
                    state: built[i].as_ref().map(state),
                })
                .collect(),
            pairs: pairs
                .iter()
                .map(|&(i, j)| shard::RecordPair { base: i, reference: j, entry: store.relative(&oid(i), &oid(j)) })
                .collect(),
        };
        let path = record.write(&session.cache)?;
        progress::info(format!("shard {s}{tag}: record {}", path.display()));
    }

    // 4. Points and changes. A shard's own report shows the other shards' points as missing.
    let mut statuses: Vec<PointStatus> = (0..n)
        .map(|idx| match &built[idx] {
            _ if split.shard.is_some() && idx > 0 && !owns(idx) => {
                let owner =
                    shard::owner(&oid(planned[idx].unwrap_or(0)), &oid(idx), split.shard.map_or(1, |s| s.count));
                PointStatus::Missing {
                    reason: format!("measured by shard {owner}/{}", split.shard.map_or(1, |s| s.count)),
                }
            }
            None => PointStatus::Missing { reason: "not built by this shard".into() },
            Some(b) => match (&b.bfcli, &b.unsupported) {
                (Err(reason), _) => PointStatus::BuildFailed { reason: reason.clone() },
                (Ok(_), Some(reason)) => PointStatus::UnsupportedTree { reason: reason.clone() },
                (Ok(_), None) => {
                    PointStatus::Measured { cached: comparisons[idx].as_ref().is_none_or(|c| c.1) && b.cached }
                }
            },
        })
        .collect();
    // A shard's first point is measured only as a base: missing unless one of its pairs used it.
    if split.shard.is_some() && matches!(statuses[0], PointStatus::Measured { .. }) && !bases.contains(&Some(0)) {
        statuses[0] = PointStatus::Missing { reason: "not a base of this shard's pairs".into() };
    }
    let ids = (0..n).map(|idx| match &built[idx] {
        Some(b) => (oid(idx), b.label.clone(), b.subject.clone()),
        None => (oid(idx), short(revs[idx].oid()), repo.subject(revs[idx].oid())),
    });
    let measured: Vec<Option<(&Comparison, &str)>> =
        comparisons.iter().map(|c| c.as_ref().map(|(c, _, host)| (c, host.as_str()))).collect();
    finish(&mut history, ids.zip(statuses).collect(), &measured, &bases);
    Ok(history)
}

/// The history of the shards whose caches are `dirs` (`--merge`), measuring
/// and building nothing: every pair is read from the cache of the shard that
/// owns it. A pair no directory holds is a [`PointStatus::Missing`] point.
/// Returns the history and the records merged.
pub fn merge(dirs: &[PathBuf], fdr: f64, warn: &dyn Fn(String)) -> Result<(History, Vec<shard::Found>)> {
    let mut found = vec![];
    for dir in dirs {
        found.extend(shard::read_records(dir, warn)?);
    }
    shard::check_compatible(&found)?;
    let first = &found[0].record;
    let count = first.shards;
    let n = first.points.len();
    let by_shard = |k: usize| found.iter().find(|f| f.record.shard == k);
    let mut history = History {
        schema: SCHEMA.into(),
        repo: first.repo.clone(),
        cases: first.cases.clone(),
        threshold_pct: first.settings.threshold_pct,
        fdr,
        ..Default::default()
    };
    let mut comparisons: Vec<Option<(Comparison, String)>> = vec![None; n];
    let mut bases: Vec<Option<usize>> = vec![None; n];
    let mut statuses = vec![];
    for (j, point) in first.points.iter().enumerate() {
        // Who knows this point's state: the owner of its pair; the first point, any shard that built it.
        let owner = point.planned_base.map(|b| shard::owner(&first.points[b].commit, &point.commit, count));
        let holder = match owner {
            Some(k) => by_shard(k),
            None => found.iter().find(|f| f.record.points[j].state.is_some()),
        };
        let status = match (holder, holder.and_then(|h| h.record.points[j].state.clone())) {
            (None, _) => PointStatus::Missing {
                reason: match owner {
                    Some(k) => format!("shard {k}/{count} is in none of the directories merged"),
                    None => "no shard built it".into(),
                },
            },
            (Some(h), None) => {
                PointStatus::Missing { reason: format!("shard {}/{count} did not build it", h.record.shard) }
            }
            (Some(_), Some(shard::BuildState::BuildFailed { reason })) => PointStatus::BuildFailed { reason },
            (Some(_), Some(shard::BuildState::UnsupportedTree { reason })) => PointStatus::UnsupportedTree { reason },
            (Some(h), Some(shard::BuildState::Built)) => match h.record.pairs.iter().find(|p| p.reference == j) {
                // Its first point that builds: measured as a base only.
                None => PointStatus::Measured { cached: true },
                Some(pair) => match shard::read_pair(h, pair) {
                    Ok(entry) => {
                        bases[j] = Some(pair.base);
                        let host = entry.host();
                        comparisons[j] = Some((entry.comparison, host));
                        PointStatus::Measured { cached: true }
                    }
                    Err(why) => {
                        warn(format!(
                            "warning: {} of shard {}/{count} in {}: {why}",
                            point.label,
                            h.record.shard,
                            h.dir.display()
                        ));
                        PointStatus::Missing { reason: format!("its cache entry in {} is unusable", h.dir.display()) }
                    }
                },
            },
        };
        statuses.push(status);
    }
    let ids = first.points.iter().map(|p| (p.commit.clone(), p.label.clone(), p.subject.clone()));
    let measured: Vec<Option<(&Comparison, &str)>> =
        comparisons.iter().map(|c| c.as_ref().map(|(c, host)| (c, host.as_str()))).collect();
    finish(&mut history, ids.zip(statuses).collect(), &measured, &bases);
    Ok((history, found))
}

/// Fill `history.points` from each point's (commit, label, subject) and
/// status, and the pairs measured (`measured[j]`: point `j` against
/// `bases[j]`, and the host that measured it); then its change lists. A point
/// measured only as BASE (the first that built) gets that side of its pair.
fn finish(
    history: &mut History,
    points: Vec<((String, String, String), PointStatus)>,
    measured: &[Option<(&Comparison, &str)>],
    bases: &[Option<usize>],
) {
    for (idx, ((commit, label, subject), status)) in points.into_iter().enumerate() {
        let results = match (&status, measured[idx]) {
            (PointStatus::Measured { .. }, Some((c, _))) => Some(side_results(c, false)),
            (PointStatus::Measured { .. }, None) => (0..measured.len())
                .find(|&j| bases[j] == Some(idx))
                .and_then(|j| measured[j])
                .map(|(c, _)| side_results(c, true)),
            _ => None,
        };
        let pair = measured[idx].map(|(c, host)| Pair::of(c).on(host));
        history.points.push(Point { commit, label, subject, status, results, pair });
    }
    let first_good = history.points.iter().position(|p| matches!(p.status, PointStatus::Measured { .. }));
    let pairs: Vec<Option<(usize, &Comparison)>> =
        measured.iter().zip(bases).map(|(m, b)| Some(((*b)?, (*m)?.0))).collect();
    discoveries(history, &pairs, first_good);
}

/// The change lists of a history whose `points` are set, from its pairs
/// (`pairs[i]`: point `i`'s base point and their comparison): the
/// Benjamini–Hochberg discoveries at `history.fdr` over every (case, pair)
/// with an estimate, and separately over the pairs' suite geometric means;
/// then the chained ratios. A discovery is listed when its point estimate is
/// also at least the threshold; its interval is recomputed from the rounds at
/// the false-coverage-adjusted level, which excludes 1 for every discovery
/// (the Wilcoxon interval is the inversion of the test).
pub fn discoveries(history: &mut History, pairs: &[Option<(usize, &Comparison)>], first: Option<usize>) {
    use bench_harness::engine::{classify, BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED};
    use bench_harness::results::Unit;
    use bench_harness::stats::fdr;
    use bench_harness::stats::paired;
    let q = history.fdr;
    // Per case: every (point, case) with an estimate.
    let tested: Vec<(usize, &CaseComparison)> = pairs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|(_, p)| (i, p)))
        .flat_map(|(i, p)| p.cases.iter().filter(|c| c.is_ok() && c.estimate.is_some()).map(move |c| (i, c)))
        .collect();
    let p_values: Vec<f64> = tested.iter().map(|(_, c)| fdr::signed_rank_p(&c.base_samples, &c.ref_samples)).collect();
    let found = fdr::benjamini_hochberg(&p_values, q);
    history.tests = tested.len();
    history.change_level = found.interval_level;
    history.changes.clear();
    for (((index, c), p), rejected) in tested.iter().zip(&p_values).zip(&found.rejected) {
        if !rejected {
            continue;
        }
        let estimate = paired::paired_ratio(&c.base_samples, &c.ref_samples, found.interval_level);
        let change = classify(&estimate, history.threshold_pct);
        if change == Change::NoChange {
            continue;
        }
        let point = &history.points[*index];
        history.changes.push(CaseChange {
            case: c.name.clone(),
            commit: point.label.clone(),
            subject: point.subject.clone(),
            change: HistoryChange { index: *index, estimate, change },
            p_value: *p,
        });
    }
    // The suite, one test per pair.
    type Rounds<'a> = Vec<(&'a [f64], &'a [f64])>;
    fn runtime(c: &Comparison) -> Rounds<'_> {
        c.cases
            .iter()
            .filter(|x| x.unit == Unit::NsPerPacket && x.is_ok() && x.estimate.is_some())
            .map(|x| (x.base_samples.as_slice(), x.ref_samples.as_slice()))
            .collect()
    }
    let suites: Vec<(usize, Rounds)> = pairs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|(_, p)| (i, runtime(p))))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let suite_p: Vec<f64> =
        suites.iter().map(|(_, r)| fdr::geometric_mean_p(r, BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED)).collect();
    let suite_found = fdr::benjamini_hochberg(&suite_p, q);
    history.suite_level = suite_found.interval_level;
    history.suite = suites
        .iter()
        .zip(&suite_p)
        .zip(&suite_found.rejected)
        .filter_map(|(((index, r), p), rejected)| {
            let estimate = paired::geometric_mean(r, suite_found.interval_level, BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED)?;
            let change = if *rejected { classify(&estimate, history.threshold_pct) } else { Change::NoChange };
            let point = &history.points[*index];
            Some(SuiteChange {
                index: *index,
                commit: point.label.clone(),
                subject: point.subject.clone(),
                estimate,
                p_value: *p,
                change,
            })
        })
        .collect();
    history.trend = trend::chain(&history.cases, pairs, first, LEVEL);
}

/// One side of a pair's comparison, as the run results of that commit.
fn side_results(c: &Comparison, base: bool) -> RunResults {
    let side = if base { &c.base } else { &c.reference };
    let suite = suite::suite();
    let case = |x: &CaseComparison| {
        let (status, samples, metrics) = if base {
            (x.base_status.clone(), x.base_samples.clone(), x.base_metrics)
        } else {
            (x.ref_status.clone(), x.ref_samples.clone(), x.ref_metrics)
        };
        CaseResult {
            name: x.name.clone(),
            label: x.name.clone(),
            hook: suite.iter().find(|s| s.name == x.name).map(|s| s.hook).unwrap_or(bench_harness::flavor::Hook::Xdp),
            flavor: x.flavor,
            packet: None,
            flags: x.flags,
            status,
            unit: x.unit,
            repeat: x.repeat,
            retval: None,
            summary: Summary::of(&samples),
            samples,
            metrics,
            floor_ns: None,
            load_ms: None,
            load_method: None,
        }
    };
    RunResults {
        schema: results::SCHEMA.into(),
        harness_version: HARNESS_VERSION.into(),
        started_at: c.started_at.clone(),
        wall_time_s: c.wall_time_s,
        host: c.host.clone(),
        source: side.source.clone(),
        sampling: bench_harness::runner::SamplingConfig {
            sample_ms: c.config.sample_ms,
            samples: samples_len(c),
            ..Default::default()
        },
        floors: vec![],
        cases: c.cases.iter().map(case).collect(),
    }
}

fn samples_len(c: &Comparison) -> usize {
    c.cases.iter().map(|x| x.base_samples.len()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pair of 12 rounds per case, REF = BASE × `factor` × a small uneven noise.
    fn pair(cases: &[&str], factor: f64) -> Comparison {
        use bench_harness::results::HostInfo;
        let case = |name: &str| {
            let base: Vec<f64> = (0..12).map(|i| 100.0 + (i as f64 * 1.7).sin()).collect();
            let reference: Vec<f64> =
                base.iter().enumerate().map(|(i, b)| b * factor * (1.0 + 0.002 * (i as f64 * 2.3).sin())).collect();
            CaseComparison {
                repeat: Some(1),
                estimate: Some(bench_harness::stats::paired::paired_ratio(&base, &reference, LEVEL)),
                base_samples: base,
                ref_samples: reference,
                same_program: Some(factor == 1.0),
                ..CaseComparison::new(name, bench_harness::flavor::Flavor::Xdp)
            }
        };
        let cases: Vec<CaseComparison> = cases.iter().map(|c| case(c)).collect();
        let rounds: Vec<(&[f64], &[f64])> =
            cases.iter().map(|c| (c.base_samples.as_slice(), c.ref_samples.as_slice())).collect();
        let config = CompareConfig { level: LEVEL, ..CompareConfig::default() };
        let geomean = bench_harness::engine::suite_geomean(&rounds, &config);
        Comparison {
            schema: bench_harness::engine::SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: String::new(),
            wall_time_s: 0.0,
            host: HostInfo::current(),
            base: SideInfo { label: "a".into(), source: Default::default() },
            reference: SideInfo { label: "b".into(), source: Default::default() },
            same_build: false,
            config,
            cases,
            geomean,
        }
    }

    #[test]
    fn discoveries_control_the_rate_over_cases_and_commits() {
        let names = ["a", "b", "c"];
        let point = |label: &str| Point {
            commit: label.repeat(40),
            label: label.into(),
            subject: format!("commit {label}"),
            status: PointStatus::Measured { cached: false },
            results: None,
            pair: None,
        };
        let mut h = History {
            cases: names.iter().map(|c| c.to_string()).collect(),
            points: vec![point("0"), point("1"), point("2")],
            threshold_pct: 1.0,
            fdr: 0.05,
            ..Default::default()
        };
        let (slower, same) = (pair(&names, 1.2), pair(&names, 1.0));
        discoveries(&mut h, &[None, Some((0, &slower)), Some((1, &same))], Some(0));
        assert_eq!(h.tests, 6);
        assert!((h.change_level - (1.0 - 3.0 * 0.05 / 6.0)).abs() < 1e-12, "{}", h.change_level);
        let found: Vec<(&str, usize)> = h.changes.iter().map(|c| (c.case.as_str(), c.change.index)).collect();
        assert_eq!(found, [("a", 1), ("b", 1), ("c", 1)]);
        for c in &h.changes {
            assert_eq!(c.change.change, Change::Slower);
            assert!((c.p_value - 2.0 / 4096.0).abs() < 1e-12, "12 rounds all slower: {}", c.p_value);
            assert_eq!(c.change.estimate.level, h.change_level);
            assert!(c.change.estimate.lo > 1.15, "{:?}", c.change.estimate);
        }
        let suite: Vec<(usize, Change)> = h.suite.iter().map(|s| (s.index, s.change)).collect();
        assert_eq!(suite, [(1, Change::Slower), (2, Change::NoChange)]);
        // The chains: up at 1, flat at 2 (identical programs).
        let s = &h.trend.suite;
        assert!(s[1].unwrap().ratio > 1.15 && !s[1].unwrap().identical);
        assert_eq!(s[2].unwrap().ratio, s[1].unwrap().ratio);
        assert!(s[2].unwrap().identical);
    }

    #[test]
    fn exit_code_follows_the_contract() {
        let h = crate::output::html::history::tests::synthetic(); // one slower change, one commit that did not build
        assert_eq!(exit_code(&h, None, false, false), exit::OK);
        assert_eq!(exit_code(&h, Some(FailOn::Regression), false, false), exit::SIGNIFICANT);
        assert_eq!(exit_code(&h, Some(FailOn::Any), false, false), exit::SIGNIFICANT);
        assert_eq!(exit_code(&h, Some(FailOn::Improvement), false, false), exit::OK);
        assert_eq!(exit_code(&h, Some(FailOn::Regression), true, false), exit::BENCHMARK_ERROR);
        // The build failure is not the newest commit.
        assert_eq!(exit_code(&h, None, false, true), exit::OK);
        let mut last_failed = h.clone();
        last_failed.points.swap(2, 3);
        assert_eq!(exit_code(&last_failed, None, false, true), exit::BENCHMARK_ERROR);
        // A case that failed at a measured commit is a benchmark error too.
        let mut case_failed = h.clone();
        case_failed.points.remove(2);
        for p in &mut case_failed.points {
            for c in &mut p.results.as_mut().unwrap().cases {
                c.status = Status::Ok;
            }
        }
        assert_eq!(exit_code(&case_failed, None, true, false), exit::OK);
        case_failed.points[1].results.as_mut().unwrap().cases[0].status =
            Status::Failed { reason: "wrong verdict".into() };
        assert_eq!(exit_code(&case_failed, None, true, false), exit::BENCHMARK_ERROR);
    }
}
