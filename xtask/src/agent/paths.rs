//! Confining a path the model asked for to the worktree.
//!
//! Rules: relative paths only, no `..` component, nothing under `.git`; the deepest part of the
//! path that exists is canonicalised (so symlinks are followed) and must stay inside the root. The
//! part that does not exist yet is appended as is: it cannot contain a symlink, since it does not
//! exist. A dangling symlink on the way is refused (it could later point anywhere).

use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// A checked path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Absolute path: canonical up to the deepest existing ancestor, then the rest as requested.
    pub abs: PathBuf,
    /// `abs` relative to the root (empty for the root itself).
    pub rel: PathBuf,
    /// The path as requested, joined to the root, symlinks not followed (to inspect the final
    /// component itself).
    pub literal: PathBuf,
}

/// Resolve `requested` under `root`, which must be canonical. The error says why it was refused.
pub(crate) fn resolve(root: &Path, requested: &str) -> Result<Resolved, String> {
    let requested_path = Path::new(if requested.is_empty() { "." } else { requested });
    if requested.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    if requested_path.is_absolute() {
        return Err("absolute paths are not allowed: give a path relative to the worktree root".into());
    }
    let mut parts: Vec<&OsStr> = Vec::new();
    for component in requested_path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' is not allowed in paths: give a path inside the worktree".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed: give a path relative to the worktree root".into())
            }
        }
    }
    if parts.iter().any(|p| *p == ".git") {
        return Err("the .git directory is off limits".into());
    }
    let literal: PathBuf = parts.iter().fold(root.to_path_buf(), |p, part| p.join(part));

    // The deepest ancestor that exists in any form (a dangling symlink counts as existing).
    let mut existing = parts.len();
    while existing > 0 {
        let candidate: PathBuf = parts[..existing].iter().fold(root.to_path_buf(), |p, part| p.join(part));
        if fs::symlink_metadata(&candidate).is_ok() {
            break;
        }
        existing -= 1;
    }
    let ancestor: PathBuf = parts[..existing].iter().fold(root.to_path_buf(), |p, part| p.join(part));
    let canonical = fs::canonicalize(&ancestor).map_err(|e| {
        let shown = ancestor.strip_prefix(root).unwrap_or(&ancestor).display().to_string();
        format!("{shown} cannot be resolved ({e}): it is probably a dangling symlink")
    })?;
    if !canonical.starts_with(root) {
        return Err("the path resolves outside the worktree (through a symlink)".into());
    }
    let abs = parts[existing..].iter().fold(canonical, |p, part| p.join(part));
    let rel = abs.strip_prefix(root).expect("checked above").to_path_buf();
    if rel.components().any(|c| c.as_os_str() == ".git") {
        return Err("the path leads into the .git directory, which is off limits".into());
    }
    Ok(Resolved { abs, rel, literal })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("src/cgen")).unwrap();
        fs::write(root.join("src/cgen/prog.c"), "int x;\n").unwrap();
        (dir, root)
    }

    #[test]
    fn inside_paths_resolve() {
        let (_d, root) = tree();
        let r = resolve(&root, "src/./cgen/prog.c").unwrap();
        assert_eq!(r.abs, root.join("src/cgen/prog.c"));
        assert_eq!(r.rel, Path::new("src/cgen/prog.c"));
        let r = resolve(&root, "src/cgen/new/dir/file.c").unwrap();
        assert_eq!(r.rel, Path::new("src/cgen/new/dir/file.c"));
        assert_eq!(resolve(&root, "").unwrap().rel, Path::new(""));
        assert_eq!(resolve(&root, ".").unwrap().abs, root);
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, root) = tree();
        for bad in ["../x", "/etc/passwd", "a/../../x", "src/../src/cgen/prog.c", ".git/config", "src/.git"] {
            assert!(resolve(&root, bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn symlinks_out_are_refused() {
        let (_d, root) = tree();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        symlink(outside.path().join("secret"), root.join("link_file")).unwrap();
        symlink(outside.path(), root.join("link_dir")).unwrap();
        symlink("/nonexistent/bfperf", root.join("dangling")).unwrap();
        symlink(root.join("src"), root.join("link_in")).unwrap();
        assert!(resolve(&root, "link_file").unwrap_err().contains("outside"));
        assert!(resolve(&root, "link_dir/secret").unwrap_err().contains("outside"));
        assert!(resolve(&root, "link_dir/new_file").unwrap_err().contains("outside"));
        assert!(resolve(&root, "dangling").unwrap_err().contains("dangling"));
        assert!(resolve(&root, "dangling/x").unwrap_err().contains("dangling"));
        assert_eq!(resolve(&root, "link_in/cgen/prog.c").unwrap().rel, Path::new("src/cgen/prog.c"));
    }
}
