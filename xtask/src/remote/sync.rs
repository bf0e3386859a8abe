//! What goes over the wire: a source tree as a gzipped tar (what git would
//! track: ignored files such as local build directories and `.git` stay
//! home), and the harness binary gzipped.
//!
//! Files keep their modification times, so `make` on the host rebuilds
//! only what changed since the last upload.

use anyhow::{Context as _, Result};
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::Path;

/// Stream `file`, gzipped, into `out`.
pub fn send_gzipped(file: &Path, out: &mut dyn Write) -> Result<()> {
    let mut gz = GzEncoder::new(out, Compression::fast());
    let mut f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    std::io::copy(&mut f, &mut gz)?;
    gz.finish()?.flush()?;
    Ok(())
}

/// The files of the tree at `root` that go to the host, relative to it.
pub fn tree_files(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = vec![];
    let walk = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
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
    files.sort();
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
}
