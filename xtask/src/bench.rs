//! `cargo xtask bench`: build one tree and run the suite on it.

use crate::flags::{BenchFlags, BfcliFlags, TreeFlags};
use crate::machine::Machine;
use crate::progress;
use crate::session::{self, Session};
use anyhow::Result;
use bench_harness::results::{RunResults, SourceInfo};
use bench_harness::suite::{self, Case};
use std::path::{Path, PathBuf};

/// Build (unless a bfcli is given) and return the bfcli (a path on the
/// machine) and what it was built from. On a remote host, `--bfcli` names a
/// bfcli there.
pub fn prepare(tree: &TreeFlags, bfcli: &BfcliFlags, session: &Session) -> Result<(PathBuf, SourceInfo)> {
    if let Some(path) = &bfcli.bfcli {
        let path = match &session.machine {
            Machine::Local(_) => bench_harness::program::Bfcli::new(path)?.path().to_owned(),
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
    let sources = session::sources(tree)?;
    let dir = build_dir(&session.cache, sources.root());
    let spin =
        progress::spinner(format!("building bfcli of {} on {}", sources.root().display(), session.machine.name()));
    let built = session.machine.build(sources.root(), &dir);
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
pub fn run(flags: &BenchFlags, session: &Session) -> Result<RunResults> {
    let filter = flags.cases.filter.as_deref();
    let cases = suite::suite();
    crate::adhoc::check_machine(&flags.adhoc, &session.machine)?;
    let adhoc = crate::adhoc::case(&flags.adhoc);
    let selected: Vec<&Case> =
        crate::adhoc::with_suite(&cases, adhoc.as_ref(), filter, || Ok(suite::select(&cases, filter)))?;
    anyhow::ensure!(!selected.is_empty(), "no case matches --filter {:?}; see --list", filter.unwrap_or_default());
    let (bfcli, source) = prepare(&flags.tree, &flags.bfcli, session)?;
    let bar = progress::bar(selected.len() as u64, "bench");
    let results = session.machine.bench(
        &bfcli,
        &selected,
        flags.sampling.config(),
        source,
        |name| bar.set_message(name.to_owned()),
        |r| {
            use bench_harness::results::Status;
            if let Status::Failed { reason } = &r.status {
                progress::note(&bar, format!("{}: FAILED: {}", r.name, crate::text::line(reason)));
            }
            let outcome = match r.status {
                Status::Ok => "ok",
                Status::Failed { .. } => "failed",
                Status::Unsupported { .. } => "unsupported",
            };
            progress::step(&bar, format!("{}: {outcome}", r.name))
        },
    );
    bar.finish_and_clear();
    let results = results?;
    if let Some(why) = results.cases.iter().find_map(|c| crate::adhoc::rejected(&c.name, &c.status)) {
        anyhow::bail!(why);
    }
    Ok(results)
}
