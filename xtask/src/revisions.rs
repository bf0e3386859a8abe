//! Revisions of a bpfilter repository as the commands measure them: which
//! cases run, where a repository's worktrees and builds live in the cache, and
//! checking a revision out and building it. Shared by bench-compare,
//! bench-history, optimize and bench-selfcheck.

use crate::machine::Machine;
use crate::progress;
use crate::worktree::{Repo, Rev};
use anyhow::Result;
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

/// The slot BASE of a comparison is built in.
pub const BASE_SLOT: &str = "base";

/// The slot REF is built in: a name as long as [`BASE_SLOT`]. The build's
/// paths are compiled into bpfilter (its BPF stubs' debug info, `__FILE__`),
/// and paths of different lengths shift libbpfilter's layout: two builds of
/// one source, in `base` and `ref`, timed `bf_chain_set` 4–6 % apart, and
/// the same at paths of equal length (doc/measurements.md §9).
pub const REF_SLOT: &str = "test";
const _: () = assert!(BASE_SLOT.len() == REF_SLOT.len(), "the two slots' paths must be as long as each other");

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
