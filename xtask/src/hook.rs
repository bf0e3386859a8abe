//! `cargo xtask install-hook`: a git pre-push hook in the bpfilter checkout
//! that runs `bench-compare --quick @{upstream} HEAD` and blocks the push on a
//! significant regression. Bypass: `git push --no-verify`.

use anyhow::{bail, Context as _, Result};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The line that marks a hook as ours: we never touch a hook without it.
pub const MARKER: &str = "# installed by bfperf (cargo xtask install-hook)";

/// The hooks directory of the repository at `sources` (honours core.hooksPath
/// and linked worktrees).
pub fn hooks_dir(sources: &Path) -> Result<PathBuf> {
    let repo =
        git2::Repository::open(sources).with_context(|| format!("{} is not a git repository", sources.display()))?;
    if let Ok(custom) = repo.config()?.get_path("core.hooksPath") {
        return Ok(if custom.is_absolute() { custom } else { sources.join(custom) });
    }
    // A linked worktree's git dir names the shared one in its `commondir` file.
    let git_dir = repo.path();
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.to_owned(),
    };
    Ok(common.join("hooks"))
}

/// `s` as one POSIX shell word: single quotes, each `'` written `'\''`.
/// Any byte but NUL is safe inside single quotes.
fn sh_quote(s: &OsStr) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &b in s.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The hook script; `bfperf` is this workspace. The checkout is not written
/// into the script: the hook asks git for it when it runs, so no path of the
/// user's is ever pasted into shell code (and a shared `core.hooksPath` works
/// for every repository using it).
pub fn script(bfperf: &Path) -> Vec<u8> {
    let head = format!(
        r#"#!/bin/sh
{MARKER}
# Runs a quick paired comparison of what is being pushed against its upstream
# and blocks the push when a benchmark case is significantly slower.
# Bypass once: git push --no-verify      Remove: cargo xtask install-hook --uninstall
upstream=$(git rev-parse --abbrev-ref --symbolic-full-name '@{{upstream}}' 2>/dev/null) || {{
    echo "bfperf: no upstream branch, not benchmarking this push" >&2
    exit 0
}}
sources=$(git rev-parse --show-toplevel) || {{
    echo "bfperf: not in a working tree, not benchmarking this push" >&2
    exit 0
}}
cd "#
    );
    let tail = r#" || {
    echo "bfperf: the bfperf workspace is gone (reinstall: cargo xtask install-hook), not benchmarking this push" >&2
    exit 0
}
# BFPERF_XTASK overrides the command (e.g. a prebuilt xtask binary).
${BFPERF_XTASK:-cargo xtask} bench-compare --quick "$upstream" HEAD --sources "$sources" --fail-on regression
code=$?
# The exit codes: doc/exit-codes.md in the bfperf workspace.
case $code in
    0) exit 0 ;;
    2) echo "bfperf: push blocked: a benchmark case is significantly slower (bypass: git push --no-verify)" >&2; exit 1 ;;
    130) echo "bfperf: benchmark interrupted, push aborted (bypass: git push --no-verify)" >&2; exit 1 ;;
    *) echo "bfperf: the benchmark could not run (exit $code, see the error above), not blocking the push" >&2; exit 0 ;;
esac
"#;
    [head.as_bytes(), &sh_quote(bfperf.as_os_str()), tail.as_bytes()].concat()
}

fn is_ours(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|t| t.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()))
}

/// Install (or refresh) the hook. Refuses to overwrite a hook it did not install.
pub fn install(sources: &Path, bfperf: &Path) -> Result<PathBuf> {
    let dir = hooks_dir(sources)?;
    let path = dir.join("pre-push");
    if path.exists() && !is_ours(&path) {
        bail!("{} exists and was not installed by bfperf: remove it or call `cargo xtask bench-compare --quick @{{upstream}} HEAD --fail-on regression` from it", path.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, script(bfperf)).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// Remove the hook if it is ours.
pub fn uninstall(sources: &Path) -> Result<PathBuf> {
    let path = hooks_dir(sources)?.join("pre-push");
    if !path.exists() {
        bail!("no pre-push hook at {}: nothing to remove", path.display());
    }
    if !is_ours(&path) {
        bail!("{} was not installed by bfperf: left alone", path.display());
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        dir
    }

    #[test]
    fn installs_refreshes_and_uninstalls_its_own_hook() {
        let r = repo();
        let path = install(r.path(), Path::new("/opt/bfperf")).unwrap();
        assert_eq!(path.canonicalize().unwrap(), r.path().join(".git/hooks/pre-push").canonicalize().unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(MARKER) && text.contains("--fail-on regression") && text.contains("--no-verify"));
        assert!(!text.contains(r.path().to_str().unwrap()), "the checkout is found at run time, not pasted in");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755);
        install(r.path(), Path::new("/opt/bfperf")).unwrap();
        uninstall(r.path()).unwrap();
        assert!(!path.exists());
        assert!(uninstall(r.path()).unwrap_err().to_string().contains("nothing to remove"));
    }

    #[test]
    fn never_touches_a_foreign_hook() {
        let r = repo();
        let path = r.path().join(".git/hooks/pre-push");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\necho mine\n").unwrap();
        let err = install(r.path(), Path::new("/opt/bfperf")).unwrap_err().to_string();
        assert!(err.contains("was not installed by bfperf"), "{err}");
        assert!(uninstall(r.path()).unwrap_err().to_string().contains("left alone"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "#!/bin/sh\necho mine\n");
    }

    #[test]
    fn quoting_survives_the_shell() {
        for word in ["plain", "it's", "'", "$(touch pwned)", "a b\tc\nd", "\\'\"`$x`", ""] {
            let quoted = sh_quote(OsStr::new(word));
            let script = [b"printf %s ".as_slice(), &quoted].concat();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(OsStr::from_bytes(&script))
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word, "{}", String::from_utf8_lossy(&quoted));
        }
    }

    #[test]
    fn honours_core_hooks_path() {
        let r = repo();
        git2::Repository::open(r.path()).unwrap().config().unwrap().set_str("core.hooksPath", "githooks").unwrap();
        assert_eq!(hooks_dir(r.path()).unwrap(), r.path().join("githooks"));
    }
}
