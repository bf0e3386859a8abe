//! `cargo xtask bench-compare BASE REF`: build both revisions in their own
//! worktrees and compare them with the paired, interleaved engine.

use crate::exit::{self, FailOn};
use crate::flags::CompareFlags;
use crate::progress;
use crate::revisions::{build_rev, select_cases, RepoCache, BASE_SLOT, REF_SLOT};
use crate::session::{self, Session};
use crate::worktree::{Repo, Rev};
use anyhow::{Context as _, Result};
use bench_harness::engine::{CompareConfig, Comparison, Progress, SideInfo};
use bench_harness::results::SourceInfo;
use bench_harness::suite;
use std::path::Path;

/// bench-compare's measurement settings: the engine's defaults (or `--quick`'s)
/// with the flags given.
pub fn config(flags: &CompareFlags) -> Result<CompareConfig> {
    flags.measure.config(CompareConfig::default(), Some(&flags.rounds))
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
pub fn run(flags: &CompareFlags, session: &Session) -> Result<Comparison> {
    let config = config(flags)?;
    let sources = session::sources(&flags.tree)?;
    let repo = Repo::open(sources.root())?;
    let base = repo.resolve(&flags.base)?;
    let reference = repo.resolve(&flags.reference)?;
    let cases = suite::suite();
    crate::adhoc::check_machine(&flags.adhoc, &session.machine)?;
    let adhoc = crate::adhoc::case(&flags.adhoc);
    let filter = flags.cases.filter.as_deref();
    let selected = crate::adhoc::with_suite(&cases, adhoc.as_ref(), filter, || select_cases(&cases, filter))?;
    let layout = RepoCache::new(&session.cache, repo.root());

    // The same commit however it was spelled (`HEAD main` too); `wip` only with itself.
    let same = base.oid() == reference.oid() && matches!(base, Rev::Wip { .. }) == matches!(reference, Rev::Wip { .. });
    if same {
        progress::info("BASE and REF are the same revision: this is an A/A run, measuring the noise (every verdict should be `no change`)");
    }
    let machine = &session.machine;
    let base_bfcli = build_rev(machine, &repo, &layout, BASE_SLOT, &base, None)?;
    let ref_bfcli =
        if same { base_bfcli.clone() } else { build_rev(machine, &repo, &layout, REF_SLOT, &reference, None)? };
    let sides = (
        (base_bfcli.clone(), side_info(&repo, &base, &base_bfcli)),
        (ref_bfcli.clone(), side_info(&repo, &reference, &ref_bfcli)),
    );

    let bar = progress::bar(selected.len() as u64, "loading");
    let mut measuring = false;
    let comparison = machine.compare(sides.0, sides.1, &selected, config, |p| match p {
        Progress::Loading(name) => {
            bar.set_message(name.to_owned());
            progress::step(&bar, name);
        }
        Progress::Round { case, done, at_most } => {
            // The total is the schedule's bound, which shrinks as cases are
            // decided; the time budget may end the run before it.
            if !measuring {
                measuring = true;
                if progress::mode() == progress::Mode::Plain {
                    eprintln!(
                        "measuring: at most {at_most} rounds within {:.0} s; a case stops once its verdict is decided",
                        config.time_budget_s
                    );
                }
                bar.set_prefix("measuring");
            }
            // Plain mode: a line per as many rounds as there are cases, not one per round.
            if progress::mode() == progress::Mode::Plain && done % selected.len() == 0 {
                eprintln!("measuring: {done} rounds done, at most {at_most} (last: {case})");
            }
            bar.set_length(at_most.max(done) as u64);
            bar.set_position(done as u64);
            bar.set_message(case.to_owned());
        }
    });
    bar.finish_and_clear();
    let mut comparison = comparison.context("comparison aborted")?;
    if let Some(names) = &flags.show_diff {
        match machine {
            crate::machine::Machine::Local(_) => {
                let spin = progress::spinner("loading listings for --show-diff");
                let added = crate::show::add_listing_diffs(&mut comparison, &base_bfcli, &ref_bfcli, names);
                spin.finish_and_clear();
                added?;
            }
            crate::machine::Machine::Remote(_) => {
                progress::info("--show-diff: listings are not fetched from --host yet; no diffs shown")
            }
        }
    }
    let rejected = comparison.cases.iter().find_map(|c| {
        crate::adhoc::rejected(&c.name, &c.ref_status).or_else(|| crate::adhoc::rejected(&c.name, &c.base_status))
    });
    if let Some(why) = rejected {
        anyhow::bail!(why);
    }
    Ok(comparison)
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
