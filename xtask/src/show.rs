//! `cargo xtask show`: the programs one revision of bpfilter generates, as
//! listings ([`bench_harness::listing`]); and the listing diffs
//! `bench-compare --show-diff` adds to a comparison.

use crate::flags::ShowFlags;
use crate::revisions::{build_rev, RepoCache};
use crate::session::{self, Session};
use crate::worktree::Repo;
use anyhow::{Context as _, Result};
use bench_harness::engine::Comparison;
use bench_harness::listing::{self, Listing};
use bench_harness::program::Bfcli;
use bench_harness::suite::{self, Case};
use bench_harness::suite_run::Side;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The schema name of `show --json-output`.
pub const SCHEMA: &str = "bfperf.show.v1";

/// What `show --json-output` writes.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The revision shown (`wip`, a ref), or the `--bfcli` path.
    pub source: String,
    /// The bfcli that generated the programs.
    pub bfcli: String,
    /// One entry per case, in the order asked.
    pub cases: Vec<ShownCase>,
}

/// One case's program.
#[derive(Debug, Serialize)]
pub struct ShownCase {
    /// The case's name.
    pub name: String,
    /// Its listing.
    pub listing: Listing,
}

/// The suite's cases named `names`, in that order; an unknown name is an error
/// that says where the names are.
pub fn cases_named<'a>(cases: &'a [Case], names: &[String]) -> Result<Vec<&'a Case>> {
    let unknown: Vec<&str> =
        names.iter().filter(|n| !cases.iter().any(|c| &c.name == *n)).map(String::as_str).collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "no case named {}: see the names with `cargo xtask bench --list`",
        unknown.iter().map(|n| format!("`{}`", crate::text::line(n))).collect::<Vec<_>>().join(", ")
    );
    Ok(names.iter().map(|n| cases.iter().find(|c| &c.name == n).expect("checked")).collect())
}

/// The bfcli to show with (`--bfcli`, else `--rev` of `--sources` built in
/// the cache's `show` slot) and a label saying what it is.
pub fn bfcli(flags: &ShowFlags, session: &Session) -> Result<(Bfcli, String)> {
    if let Some(path) = &flags.bfcli.bfcli {
        return Ok((Bfcli::new(path)?, path.display().to_string()));
    }
    let sources = session::sources(&flags.tree)?;
    let repo = Repo::open(sources.root())?;
    let rev = repo.resolve(&flags.rev)?;
    let layout = RepoCache::new(&session.cache, repo.root());
    let path = build_rev(&session.machine, &repo, &layout, "show", &rev, None)?;
    Ok((Bfcli::new(&path)?, rev.label()))
}

/// The header of a case's listing: its name and counts, then its maps.
pub fn header(name: &str, listing: &Listing) -> String {
    let c = listing.counts;
    let mut out = format!(
        "{name}: xlated {} insns, jited {} bytes, verified {} insns\n",
        c.xlated_insns, c.jited_bytes, c.verified_insns
    );
    for map in &listing.maps {
        let m = &map.info;
        let _ = writeln!(
            out,
            "  map[{}]: {} (type {}, key {} B, value {} B, {} entries)",
            map.name,
            crate::text::line(&m.name),
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries
        );
    }
    out
}

/// Load `names` (or, when empty, every case whose programs differ) with both
/// sides' bfcli and put the diff of their normalised listings in the
/// comparison. A case that does not load on a side gets no diff.
pub fn add_listing_diffs(comparison: &mut Comparison, base: &Path, reference: &Path, names: &[String]) -> Result<()> {
    let cases = suite::suite();
    let wanted: Vec<String> = if names.is_empty() {
        comparison.cases.iter().filter(|c| c.same_program == Some(false)).map(|c| c.name.clone()).collect()
    } else {
        cases_named(&cases, names)?.into_iter().map(|c| c.name.clone()).collect()
    };
    let base = Side::new(Bfcli::new(base)?)?;
    let reference = Side::new(Bfcli::new(reference)?)?;
    for name in wanted {
        let case = cases.iter().find(|c| c.name == name).expect("a suite case");
        let Some(result) = comparison.cases.iter_mut().find(|c| c.name == name) else {
            crate::progress::info(format!("--show-diff {name}: not in this comparison (see --filter)"));
            continue;
        };
        let pair = listing::load_listing(&base, case, false)
            .and_then(|b| listing::load_listing(&reference, case, false).map(|r| (b, r)));
        match pair {
            Ok((b, r)) => result.listing_diff = Some(listing::diff(&b, &r)),
            Err(e) if matches!(e, bench_harness::HarnessError::Interrupted) => {
                return Err(e).context("interrupted while loading listings")
            }
            Err(e) => crate::progress::info(format!("{name}: no listing diff: {}", crate::text::line(&e.to_string()))),
        }
    }
    Ok(())
}
