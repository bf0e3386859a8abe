//! Where bfperf keeps its state: builds, worktrees, cached results, runs.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "BFPERF_CACHE";

/// The cache directory: `--cache-dir`, else `$BFPERF_CACHE`, else
/// `$XDG_CACHE_HOME/bfperf`, else `~/.cache/bfperf`; always absolute (git
/// records worktrees by absolute path: a relative cache would never match them).
pub fn cache_dir(arg: Option<&Path>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory: pass an absolute --cache-dir")?;
    let env = |name| std::env::var_os(name).map(PathBuf::from);
    let dir = choose_cache_dir(arg, env(CACHE_ENV), env("XDG_CACHE_HOME"), env("HOME"), &cwd)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    Ok(dir)
}

/// [`cache_dir`]'s choice from its inputs. A relative `--cache-dir` or
/// `$BFPERF_CACHE` is taken relative to `cwd`; a relative `$XDG_CACHE_HOME` is
/// invalid (XDG Base Directory spec) and ignored, like an empty one.
fn choose_cache_dir(
    arg: Option<&Path>,
    bfperf_cache: Option<PathBuf>,
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
    cwd: &Path,
) -> Result<PathBuf> {
    let non_empty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    let dir = if let Some(p) = arg {
        p.to_owned()
    } else if let Some(p) = non_empty(bfperf_cache) {
        p
    } else if let Some(p) = non_empty(xdg_cache_home).filter(|p| p.is_absolute()) {
        p.join("bfperf")
    } else {
        let home = non_empty(home).context("HOME is not set: pass --cache-dir")?;
        anyhow::ensure!(home.is_absolute(), "HOME ({}) is not an absolute path: pass --cache-dir", home.display());
        home.join(".cache/bfperf")
    };
    Ok(lexically_normal(&cwd.join(dir)))
}

/// `path` without `.` and `..` components, resolved lexically as the shell's
/// `cd` does (the directory may not exist yet).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The bfperf workspace root (where `cargo xtask` runs), via cargo metadata.
pub fn root() -> Result<PathBuf> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .no_deps()
        .exec()
        .context("cannot locate the bfperf workspace (cargo metadata failed)")?;
    Ok(meta.workspace_root.into_std_path_buf())
}

/// 16 hex digits of the SHA-256 of `parts`, each preceded by its length
/// (64-bit little-endian, so `["ab", "c"]` and `["a", "bc"]` differ): a key
/// that, unlike std's `DefaultHasher`, is the same for every Rust release
/// and platform, so caches keyed by it survive a toolchain upgrade.
pub fn stable_key<P: AsRef<[u8]>>(parts: impl IntoIterator<Item = P>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A stable, filesystem-safe key for a path (build directories per source
/// tree): its last component and [`stable_key`] of the path as components
/// (`/a/b/` and `/a/./b` are `/a/b`).
pub fn path_key(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let canonical: PathBuf = path.components().collect();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("root");
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{name}-{}", stable_key([canonical.as_os_str().as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_cache_dir_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let want = dir.path().join("a/b");
        assert_eq!(cache_dir(Some(&want)).unwrap(), want);
        assert!(want.is_dir());
    }

    #[test]
    fn relative_cache_dirs_become_absolute() {
        let cwd = Path::new("/work/here");
        let home = || Some(PathBuf::from("/home/u"));
        let pick = |arg: Option<&str>, bfperf: Option<&str>, xdg: Option<&str>| {
            choose_cache_dir(arg.map(Path::new), bfperf.map(PathBuf::from), xdg.map(PathBuf::from), home(), cwd)
                .unwrap()
        };
        assert_eq!(pick(Some("cache"), None, None), Path::new("/work/here/cache"));
        assert_eq!(pick(Some("./a/../cache/"), None, None), Path::new("/work/here/cache"));
        assert_eq!(pick(Some("/abs"), Some("/env"), None), Path::new("/abs"));
        assert_eq!(pick(None, Some("rel"), Some("/xdg")), Path::new("/work/here/rel"));
        assert_eq!(pick(None, Some(""), Some("/xdg")), Path::new("/xdg/bfperf"));
        // A relative XDG_CACHE_HOME is invalid: ignored, as an empty one is.
        assert_eq!(pick(None, None, Some("rel-xdg")), Path::new("/home/u/.cache/bfperf"));
        assert_eq!(pick(None, None, Some("")), Path::new("/home/u/.cache/bfperf"));
        let err = choose_cache_dir(None, None, None, Some("home".into()), cwd).unwrap_err().to_string();
        assert!(err.contains("not an absolute path") && err.contains("--cache-dir"), "{err}");
        let err = choose_cache_dir(None, None, None, None, cwd).unwrap_err().to_string();
        assert!(err.contains("HOME is not set"), "{err}");
    }

    #[test]
    fn a_relative_cache_dir_is_returned_absolute() {
        // A relative path from the test's directory to a fresh temporary one.
        let tmp = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        let up = cwd.components().count() - 1;
        let rel: PathBuf = std::iter::repeat_n(Path::new(".."), up)
            .collect::<PathBuf>()
            .join(tmp.path().strip_prefix("/").unwrap())
            .join("c");
        assert!(rel.is_relative());
        let dir = cache_dir(Some(&rel)).unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        assert_eq!(dir.canonicalize().unwrap(), tmp.path().canonicalize().unwrap().join("c"));
    }

    #[test]
    fn path_keys_are_stable_and_distinct() {
        let a = path_key(Path::new("/src/bpfilter"));
        assert_eq!(a, path_key(Path::new("/src/bpfilter")));
        assert_ne!(a, path_key(Path::new("/other/bpfilter")));
        assert!(a.starts_with("bpfilter-"));
        assert_eq!(path_key(Path::new("/src/bpfilter/")), a);
        assert_eq!(path_key(Path::new("/src/./bpfilter")), a);
    }

    #[test]
    fn keys_are_fixed_across_toolchains() {
        // SHA-256 of the length-prefixed parts (checked with Python's hashlib), first 8 bytes.
        assert_eq!(stable_key(["a", "bc"]), "9a8acca1b6c6c0be");
        assert_ne!(stable_key(["ab", "c"]), stable_key(["a", "bc"]));
        assert_eq!(path_key(Path::new("/src/bpfilter")), "bpfilter-7fd0e3d2d8646956");
        assert_eq!(path_key(Path::new("/")), "root-52849b4b58a8286b");
    }
}
