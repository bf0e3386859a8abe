//! A bpfilter source tree given by the user (`--sources` / `BPFILTER_SOURCES`).

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming the default bpfilter checkout.
pub const SOURCES_ENV: &str = "BPFILTER_SOURCES";

/// A directory that looks like a bpfilter checkout: a top-level
/// `CMakeLists.txt` and the bfcli sources in `src/bfcli`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    root: PathBuf,
}

impl Sources {
    /// Validate `path` as a bpfilter source tree.
    pub fn open(path: &Path) -> Result<Self> {
        let root = path.canonicalize().with_context(|| {
            format!("bpfilter sources {} do not exist: pass --sources PATH or set {SOURCES_ENV}", path.display())
        })?;
        if !root.join("CMakeLists.txt").is_file() || !root.join("src/bfcli").is_dir() {
            bail!(
                "{} is not a bpfilter source tree (no CMakeLists.txt and src/bfcli/): pass --sources PATH or set {SOURCES_ENV}",
                root.display()
            );
        }
        Ok(Sources { root })
    }

    /// `--sources` if given, else `$BPFILTER_SOURCES`, else an error saying how to give one.
    pub fn from_arg_or_env(arg: Option<&Path>) -> Result<Self> {
        match arg {
            Some(p) => Self::open(p),
            None => match std::env::var_os(SOURCES_ENV) {
                Some(p) if !p.is_empty() => Self::open(Path::new(&p)),
                _ => bail!(
                    "no bpfilter sources given: pass --sources PATH or set {SOURCES_ENV} (or try `cargo xtask demo`)"
                ),
            },
        }
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// HEAD commit and whether the tree has uncommitted changes, when it is a git repository.
    pub fn git_state(&self) -> Option<(String, bool)> {
        let repo = git2::Repository::open(&self.root).ok()?;
        let head = repo.head().ok()?.peel_to_commit().ok()?.id().to_string();
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        let dirty = repo.statuses(Some(&mut opts)).map(|s| !s.is_empty()).unwrap_or(false);
        Some((head, dirty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_not_a_bpfilter_tree() {
        let dir = tempfile::tempdir().unwrap();
        let err = Sources::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a bpfilter source tree"), "{err}");
        assert!(err.contains("--sources"), "{err}");
        let err = Sources::open(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("do not exist"), "{err}");
    }

    #[test]
    fn a_tree_with_cmake_and_bfcli_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("CMakeLists.txt"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("src/bfcli")).unwrap();
        let s = Sources::open(dir.path()).unwrap();
        assert_eq!(s.root(), dir.path().canonicalize().unwrap());
        assert!(s.git_state().is_none(), "not a git repository");
    }
}
