//! What goes over the wire: a source tree as a gzipped tar (what git would
//! track: ignored files such as local build directories and `.git` stay
//! home), and the harness binary gzipped.
//!
//! Files keep their modification times, so `make` on the host rebuilds
//! only what changed since the last upload.

use anyhow::{Context as _, Result};
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Stream `file`, gzipped, into `out`.
pub fn send_gzipped(file: &Path, out: &mut dyn Write) -> Result<()> {
    let mut gz = GzEncoder::new(out, Compression::fast());
    let mut f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    std::io::copy(&mut f, &mut gz)?;
    gz.finish()?.flush()?;
    Ok(())
}

/// The files of the tree at `root` that go to the host, relative to it: in
/// a git work tree (a checkout, a linked worktree), what `git ls-files
/// --cached --others --exclude-standard` lists; elsewhere every file but
/// those its `.gitignore` files exclude.
pub fn tree_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = match git2::Repository::open(root) {
        Ok(repo) if repo.workdir().is_some() => git_files(&repo, root)?,
        _ => walked_files(root)?,
    };
    files.sort();
    files.dedup();
    Ok(files)
}

fn git_files(repo: &git2::Repository, root: &Path) -> Result<Vec<PathBuf>> {
    const GITLINK: u32 = 0o160000;
    let mut files = vec![];
    for entry in repo.index()?.iter() {
        let rel = PathBuf::from(String::from_utf8_lossy(&entry.path).into_owned());
        // Deleted in the work tree, or a submodule (its own repository): nothing to send.
        if entry.mode != GITLINK && root.join(&rel).symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            files.push(rel);
        }
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    for status in repo.statuses(Some(&mut opts))?.iter() {
        if status.status().contains(git2::Status::WT_NEW) {
            if let Some(path) = status.path() {
                files.push(PathBuf::from(path));
            }
        }
    }
    Ok(files)
}

fn walked_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    let walk = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
        if entry.depth() == 0 || entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        files.push(entry.path().strip_prefix(root).expect("under the root").to_owned());
    }
    Ok(files)
}

/// Stream the tree at `root` as a gzipped tar into `out`.
pub fn send_tree(root: &Path, out: &mut dyn Write) -> Result<()> {
    let gz = GzEncoder::new(out, Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    for rel in tree_files(root)? {
        tar.append_path_with_name(root.join(&rel), &rel)
            .with_context(|| format!("cannot archive {}", root.join(&rel).display()))?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_leave_git_and_ignored_files_home() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::create_dir_all(root.join("src/cgen")).unwrap();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
        std::fs::write(root.join(".clang-format"), "x").unwrap();
        std::fs::write(root.join("src/cgen/prog.c"), "int x;").unwrap();
        std::fs::write(root.join("build/big.o"), "obj").unwrap();
        let files: Vec<String> = tree_files(root).unwrap().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(files, [".clang-format", ".gitignore", "src/cgen/prog.c"]);

        let mut bytes = vec![];
        send_tree(root, &mut bytes).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut names: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mtime().unwrap())
            })
            .collect();
        names.sort();
        let mtime = std::fs::metadata(root.join("src/cgen/prog.c")).unwrap().modified().unwrap();
        let secs = mtime.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(names[2], ("src/cgen/prog.c".to_string(), secs), "mtimes travel for incremental builds");
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn git_trees_send_what_git_lists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = git2::Repository::init(root).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.o\n").unwrap();
        std::fs::write(root.join("src/a.c"), "a").unwrap();
        std::fs::write(root.join("src/forced.o"), "tracked though ignored").unwrap();
        std::fs::write(root.join("src/gone.c"), "deleted in the work tree").unwrap();
        let mut index = repo.index().unwrap();
        for p in [".gitignore", "src/a.c", "src/forced.o", "src/gone.c"] {
            index.add_path(Path::new(p)).unwrap();
        }
        index.write().unwrap();
        std::fs::remove_file(root.join("src/gone.c")).unwrap();
        std::fs::write(root.join("src/new.c"), "untracked").unwrap();
        std::fs::write(root.join("src/x.o"), "ignored").unwrap();
        std::fs::write(root.join("build/big"), "ignored").unwrap();
        let files: Vec<String> = tree_files(root).unwrap().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(files, [".gitignore", "src/a.c", "src/forced.o", "src/new.c"]);
    }
}
