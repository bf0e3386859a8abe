//! Checking out commits without touching the user's working tree: each side
//! of a comparison (a *slot*) is a git worktree under the cache, moved from
//! commit to commit, so rebuilds are incremental (make only sees the files
//! that changed). `wip` is HEAD plus the user's uncommitted changes, applied
//! in the slot, never built in place.

use anyhow::{bail, Context as _, Result};
use git2::{BranchType, Oid, Repository};
use std::path::{Path, PathBuf};

/// The ref name that stands for "uncommitted changes".
pub const WIP: &str = "wip";

/// A revision to build: a commit, or HEAD plus the uncommitted changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rev {
    /// A commit.
    Commit {
        /// Its id.
        oid: Oid,
        /// What the user typed (`HEAD~1`, a branch, a SHA).
        spec: String,
    },
    /// The working tree's uncommitted changes on top of `head`.
    Wip {
        /// HEAD when the run started.
        head: Oid,
    },
}

impl Rev {
    /// The commit this revision is (or is based on).
    pub fn oid(&self) -> Oid {
        match self {
            Rev::Commit { oid, .. } | Rev::Wip { head: oid } => *oid,
        }
    }

    /// Short label for tables: `a1b2c3d4e5f6 (HEAD~1)` or `wip (on a1b2c3d4e5f6)`.
    pub fn label(&self) -> String {
        match self {
            Rev::Commit { oid, spec } if spec.starts_with(&oid.to_string()[..spec.len().min(40)]) => short(*oid),
            Rev::Commit { oid, spec } => format!("{} ({spec})", short(*oid)),
            Rev::Wip { head } => format!("wip (on {})", short(*head)),
        }
    }
}

/// First 12 hex digits of a commit id.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_owned()
}

/// The user's bpfilter repository.
pub struct Repo {
    repo: Repository,
    root: PathBuf,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("root", &self.root).finish()
    }
}

impl Repo {
    /// Open the repository of a source tree (a linked worktree works too).
    pub fn open(path: &Path) -> Result<Self> {
        let repo = Repository::open(path).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a git repository: comparing commits needs the checkout's git history",
                path.display()
            )
        })?;
        let root = repo.workdir().context("bare repositories are not supported: pass a checkout")?.to_owned();
        Ok(Repo { repo, root })
    }

    /// The working tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The underlying git2 repository.
    pub fn git(&self) -> &Repository {
        &self.repo
    }

    /// Resolve a ref, SHA, branch, tag or `wip`.
    pub fn resolve(&self, spec: &str) -> Result<Rev> {
        if spec == WIP {
            return Ok(Rev::Wip { head: self.head()? });
        }
        let commit = self.repo.revparse_single(spec).and_then(|o| o.peel_to_commit()).map_err(|_| {
            anyhow::anyhow!("unknown ref {spec:?}: not a commit, branch or tag of {}", self.root.display())
        })?;
        Ok(Rev::Commit { oid: commit.id(), spec: spec.to_owned() })
    }

    /// HEAD's commit.
    pub fn head(&self) -> Result<Oid> {
        Ok(self.repo.head().and_then(|h| h.peel_to_commit()).context("the repository has no commit yet")?.id())
    }

    /// The subject line of a commit.
    pub fn subject(&self, oid: Oid) -> String {
        self.repo.find_commit(oid).ok().and_then(|c| c.summary().map(str::to_owned)).unwrap_or_default()
    }

    /// Commits from `since` (included) to `until` (included), oldest first,
    /// following first parents. Errors when `since` is not an ancestor of `until`.
    pub fn range(&self, since: Oid, until: Oid) -> Result<Vec<Oid>> {
        if since != until && !self.repo.graph_descendant_of(until, since)? {
            bail!("--since {} is not an ancestor of --until {}: is the range reversed?", short(since), short(until));
        }
        let mut walk = self.repo.revwalk()?;
        walk.push(until)?;
        walk.hide(since)?;
        walk.simplify_first_parent()?;
        let mut commits: Vec<Oid> = walk.collect::<Result<_, _>>()?;
        commits.push(since);
        commits.reverse();
        Ok(commits)
    }

    /// Paths with uncommitted changes (tracked or untracked, not ignored).
    pub fn dirty_files(&self) -> Result<Vec<String>> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        let statuses = self.repo.statuses(Some(&mut opts))?;
        Ok(statuses.iter().filter_map(|s| s.path().map(str::to_owned)).collect())
    }

    /// The git name of a slot's worktree. It carries a hash of the slots'
    /// directory: caches (this machine's, each `--host`'s, each optimize
    /// run's) have their own `base`, and must not prune each other's.
    fn worktree_name(dir: &Path, slot: &str) -> String {
        let key = crate::workspace::path_key(dir);
        let hash = key.rsplit('-').next().unwrap_or_default();
        format!("bfperf-{slot}-{}", &hash[..hash.len().min(8)])
    }

    /// Remove this repository's slots that an earlier bfperf made beside
    /// `dir` under another key scheme: keys were `DefaultHasher` hashes, whose
    /// value may change with any Rust release. A slot `<root>/<key>/<slot>`
    /// (`<root>`: `dir`'s parent) named `bfperf-<slot>-<hash>` whose hash is
    /// not that of `<root>/<key>` today is such a leftover (this repository's,
    /// since its metadata is in this repository): its worktree and metadata
    /// go, and, when `<root>` is a cache's `worktrees/`, that key's `builds/`
    /// and `results/` beside it (see revisions::RepoCache, history::cache),
    /// unreachable under the new key. Slots of the current scheme are never
    /// touched, whatever their key (the same repository reached by another
    /// path, another cache's).
    fn prune_orphaned_slots(&self, dir: &Path) -> Result<()> {
        let Some(root) = dir.parent() else { return Ok(()) };
        for name in self.repo.worktrees()?.iter().flatten() {
            let Some(hash) = name.strip_prefix("bfperf-").and_then(|n| n.rsplit_once('-')).map(|(_, h)| h) else {
                continue;
            };
            if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(wt) = self.repo.find_worktree(name) else { continue };
            let path = wt.path().to_owned();
            let (Some(key_dir), Some(slot)) = (path.parent(), path.file_name().and_then(|s| s.to_str())) else {
                continue;
            };
            if key_dir.parent() != Some(root) || key_dir == dir || Self::worktree_name(key_dir, slot) == name {
                continue;
            }
            wt.prune(Some(git2::WorktreePruneOptions::new().valid(true).working_tree(true).locked(true)))?;
            if path.exists() {
                std::fs::remove_dir_all(&path).with_context(|| format!("cannot remove stale {}", path.display()))?;
            }
            // The key's directory, once its last slot is gone, and what else was kept under that key.
            if std::fs::remove_dir(key_dir).is_ok() && root.file_name().is_some_and(|n| n == "worktrees") {
                let (cache, key) =
                    (root.parent().expect("worktrees has a parent"), key_dir.file_name().expect("named"));
                for kind in ["builds", "results"] {
                    let stale = cache.join(kind).join(key);
                    if stale.exists() {
                        std::fs::remove_dir_all(&stale)
                            .with_context(|| format!("cannot remove stale {}", stale.display()))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Check `rev` out in the slot's worktree under `dir` and return its path.
    /// The worktree is created on first use and reused afterwards.
    pub fn checkout(&self, dir: &Path, slot: &str, rev: &Rev) -> Result<PathBuf> {
        self.prune_orphaned_slots(dir)?;
        let name = Self::worktree_name(dir, slot);
        let path = dir.join(slot);
        let wt_repo = match self.repo.find_worktree(&name) {
            Ok(wt) if wt.validate().is_ok() && wt.path() == path => Repository::open_from_worktree(&wt)?,
            found => {
                if let Ok(stale) = found {
                    // Metadata of a worktree whose directory is gone or moved.
                    stale.prune(Some(git2::WorktreePruneOptions::new().valid(true).working_tree(true).locked(true)))?;
                }
                if path.exists() {
                    std::fs::remove_dir_all(&path)
                        .with_context(|| format!("cannot remove stale {}", path.display()))?;
                }
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                self.add_detached_worktree(&name, &path, rev.oid())?
            }
        };
        wt_repo.set_head_detached(rev.oid())?;
        let mut co = git2::build::CheckoutBuilder::new();
        co.force().remove_untracked(true);
        wt_repo
            .checkout_head(Some(&mut co))
            .with_context(|| format!("cannot check out {} in {}", rev.label(), path.display()))?;
        if let Rev::Wip { head } = rev {
            self.apply_uncommitted(&wt_repo, *head)?;
        }
        Ok(path)
    }

    /// libgit2 creates worktrees on a branch; make a throw-away one, detach, delete it.
    fn add_detached_worktree(&self, name: &str, path: &Path, oid: Oid) -> Result<Repository> {
        let commit = self.repo.find_commit(oid)?;
        let tmp_branch = format!("{name}-tmp");
        let branch = self.repo.branch(&tmp_branch, &commit, true)?;
        let mut opts = git2::WorktreeAddOptions::new();
        opts.reference(Some(branch.get()));
        let added = self.repo.worktree(name, path, Some(&opts));
        let result = added.and_then(|wt| {
            let wt_repo = Repository::open_from_worktree(&wt)?;
            wt_repo.set_head_detached(oid)?;
            Ok(wt_repo)
        });
        if let Ok(mut b) = self.repo.find_branch(&tmp_branch, BranchType::Local) {
            let _ = b.delete();
        }
        result.with_context(|| format!("cannot create the worktree {}", path.display()))
    }

    /// Apply the user's uncommitted changes (staged, unstaged, untracked) to `wt`.
    fn apply_uncommitted(&self, wt: &Repository, head: Oid) -> Result<()> {
        let tree = self.repo.find_commit(head)?.tree()?;
        let mut opts = git2::DiffOptions::new();
        opts.show_binary(true);
        let diff = self.repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))?;
        wt.apply(&diff, git2::ApplyLocation::WorkDir, None).context("cannot apply the uncommitted changes (wip)")?;
        // libgit2 cannot apply untracked files as additions: copy them.
        let wt_root = wt.workdir().context("worktree without a work directory")?;
        let mut status = git2::StatusOptions::new();
        status.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        for entry in self.repo.statuses(Some(&mut status))?.iter() {
            if !entry.status().contains(git2::Status::WT_NEW) {
                continue;
            }
            let Some(rel) = entry.path() else { continue };
            let to = wt_root.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(self.root.join(rel), &to).with_context(|| format!("cannot copy untracked {rel} (wip)"))?;
        }
        Ok(())
    }

    /// Remove a slot's worktree and its git metadata (after a failed build).
    pub fn remove_slot(&self, dir: &Path, slot: &str) -> Result<()> {
        if let Ok(wt) = self.repo.find_worktree(&Self::worktree_name(dir, slot)) {
            wt.prune(Some(git2::WorktreePruneOptions::new().valid(true).working_tree(true).locked(true)))?;
        }
        let path = dir.join(slot);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn repo_with_commits() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q", "-b", "main"]);
        git(p, &["config", "user.email", "t@t.invalid"]);
        git(p, &["config", "user.name", "t"]);
        let mut shas = vec![];
        for i in 0..3 {
            std::fs::write(p.join("file.txt"), format!("v{i}\n")).unwrap();
            git(p, &["add", "-A"]);
            git(p, &["commit", "-q", "-m", &format!("commit {i}")]);
            shas.push(git(p, &["rev-parse", "HEAD"]));
        }
        (dir, shas)
    }

    #[test]
    fn resolves_refs_and_refuses_unknown_ones() {
        let (dir, shas) = repo_with_commits();
        let repo = Repo::open(dir.path()).unwrap();
        assert_eq!(repo.resolve("HEAD~1").unwrap().oid().to_string(), shas[1]);
        assert_eq!(repo.resolve(&shas[0][..8]).unwrap().oid().to_string(), shas[0]);
        assert!(matches!(repo.resolve("wip").unwrap(), Rev::Wip { .. }));
        let err = repo.resolve("no-such-branch").unwrap_err().to_string();
        assert!(err.contains("unknown ref \"no-such-branch\""), "{err}");
        assert_eq!(repo.subject(repo.head().unwrap()), "commit 2");
        let err = Repo::open(tempfile::tempdir().unwrap().path()).unwrap_err().to_string();
        assert!(err.contains("is not a git repository"), "{err}");
    }

    #[test]
    fn ranges_are_oldest_first_and_checked() {
        let (dir, shas) = repo_with_commits();
        let repo = Repo::open(dir.path()).unwrap();
        let oid = |s: &str| Oid::from_str(s).unwrap();
        let range = repo.range(oid(&shas[0]), oid(&shas[2])).unwrap();
        assert_eq!(range.iter().map(|o| o.to_string()).collect::<Vec<_>>(), shas);
        assert_eq!(repo.range(oid(&shas[1]), oid(&shas[1])).unwrap().len(), 1);
        let err = repo.range(oid(&shas[2]), oid(&shas[0])).unwrap_err().to_string();
        assert!(err.contains("is not an ancestor"), "{err}");
    }

    #[test]
    fn slots_move_between_commits_and_carry_wip_without_touching_the_tree() {
        let (dir, shas) = repo_with_commits();
        // Uncommitted changes: a modified file and an untracked one.
        std::fs::write(dir.path().join("file.txt"), "wip\n").unwrap();
        std::fs::write(dir.path().join("new.txt"), "untracked\n").unwrap();
        let status_before = git(dir.path(), &["status", "--porcelain"]);
        let repo = Repo::open(dir.path()).unwrap();
        let cache = tempfile::tempdir().unwrap();

        let first = repo.resolve(&shas[0]).unwrap();
        let slot = repo.checkout(cache.path(), "base", &first).unwrap();
        assert_eq!(std::fs::read_to_string(slot.join("file.txt")).unwrap(), "v0\n");
        // Reused: same path, moved to another commit.
        let again = repo.checkout(cache.path(), "base", &repo.resolve("HEAD").unwrap()).unwrap();
        assert_eq!(again, slot);
        assert_eq!(std::fs::read_to_string(slot.join("file.txt")).unwrap(), "v2\n");

        let wip = repo.checkout(cache.path(), "ref", &repo.resolve(WIP).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(wip.join("file.txt")).unwrap(), "wip\n");
        assert_eq!(std::fs::read_to_string(wip.join("new.txt")).unwrap(), "untracked\n");
        // Back to a commit: the wip changes and untracked file are gone.
        repo.checkout(cache.path(), "ref", &first).unwrap();
        assert_eq!(std::fs::read_to_string(wip.join("file.txt")).unwrap(), "v0\n");
        assert!(!wip.join("new.txt").exists());

        assert_eq!(git(dir.path(), &["status", "--porcelain"]), status_before, "user's tree untouched");
        assert!(!git(dir.path(), &["branch", "--list"]).contains("bfperf"), "no branch left");
        repo.remove_slot(cache.path(), "base").unwrap();
        repo.remove_slot(cache.path(), "ref").unwrap();
        assert!(!git(dir.path(), &["worktree", "list"]).contains("bfperf"));
    }

    #[test]
    fn slots_an_earlier_key_scheme_named_are_removed_with_their_builds() {
        let (dir, shas) = repo_with_commits();
        let repo = Repo::open(dir.path()).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let c = cache.path();
        let rev = repo.resolve(&shas[0]).unwrap();
        // As bfperf left them when keys were DefaultHasher hashes: a slot, its build, its results.
        let old_key = "bpfilter-00c0ffee00c0ffee";
        let old_slot = c.join("worktrees").join(old_key).join("base");
        std::fs::create_dir_all(old_slot.parent().unwrap()).unwrap();
        repo.add_detached_worktree("bfperf-base-1234abcd", &old_slot, rev.oid()).unwrap();
        std::fs::create_dir_all(c.join("builds").join(old_key).join("base")).unwrap();
        std::fs::create_dir_all(c.join("results").join(old_key)).unwrap();
        // Another key of today's scheme (the repository by another path): kept.
        let other = c.join("worktrees").join("bpfilter-0000000000000001");
        let kept = repo.checkout(&other, "base", &rev).unwrap();

        let current = c.join("worktrees").join(crate::workspace::path_key(repo.root()));
        let slot = repo.checkout(&current, "base", &rev).unwrap();
        assert_eq!(std::fs::read_to_string(slot.join("file.txt")).unwrap(), "v0\n");
        let listed = git(dir.path(), &["worktree", "list", "--porcelain"]);
        assert!(!listed.contains(old_key) && !old_slot.exists(), "the old slot is gone: {listed}");
        assert!(!dir.path().join(".git/worktrees/bfperf-base-1234abcd").exists(), "its metadata is gone");
        for kind in ["worktrees", "builds", "results"] {
            assert!(!c.join(kind).join(old_key).exists(), "{kind}/{old_key} is gone");
        }
        assert!(kept.join("file.txt").exists() && listed.contains(kept.to_str().unwrap()), "{listed}");
    }

    #[test]
    fn a_source_tree_that_is_itself_a_worktree_works() {
        let (dir, shas) = repo_with_commits();
        let linked = tempfile::tempdir().unwrap();
        let linked_path = linked.path().join("wt");
        git(dir.path(), &["worktree", "add", "-q", "--detach", linked_path.to_str().unwrap(), &shas[1]]);
        let repo = Repo::open(&linked_path).unwrap();
        assert_eq!(repo.head().unwrap().to_string(), shas[1]);
        let cache = tempfile::tempdir().unwrap();
        let slot = repo.checkout(cache.path(), "base", &repo.resolve("HEAD~1").unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(slot.join("file.txt")).unwrap(), "v0\n");
    }
}
