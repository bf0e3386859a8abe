//! Where bfperf keeps its state: builds, worktrees, cached results, runs.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "BFPERF_CACHE";

/// The cache directory: `--cache-dir`, else `$BFPERF_CACHE`, else
/// `$XDG_CACHE_HOME/bfperf`, else `~/.cache/bfperf`.
pub fn cache_dir(arg: Option<&Path>) -> Result<PathBuf> {
    let dir = if let Some(p) = arg {
        p.to_owned()
    } else if let Some(p) = std::env::var_os(CACHE_ENV).filter(|p| !p.is_empty()) {
        PathBuf::from(p)
    } else if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        PathBuf::from(p).join("bfperf")
    } else {
        let home = std::env::var_os("HOME").context("HOME is not set: pass --cache-dir")?;
        PathBuf::from(home).join(".cache/bfperf")
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    Ok(dir)
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
