//! The pre-push hook for real: a push of a slower commit is blocked, a push
//! of a harmless one goes through, and `--no-verify` bypasses it.

use bfperf_tests::{require_bpf, xtask_bin, FixtureRepo};
use std::process::Command;
use xshell::cmd;

fn push(repo: &FixtureRepo, cache: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(["push", "-q"])
        .args(extra)
        .current_dir(repo.path())
        .env("BFPERF_XTASK", xtask_bin())
        .env("BFPERF_CACHE", cache)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_push_with_a_regression_is_blocked_and_no_verify_bypasses_it() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let remote = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sh = repo.shell();
    let bare = remote.path();
    cmd!(sh, "git init -q --bare {bare}").run().unwrap();
    cmd!(sh, "git remote add origin {bare}").run().unwrap();
    cmd!(sh, "git push -q -u origin main").run().unwrap();

    let run = bfperf_tests::xtask(&["install-hook", "--sources", repo.path().to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("pre-push"), "{}", run.stdout);

    // Much slower generated programs: blocked.
    repo.set_padding(400);
    repo.commit("cgen: pad the prologue");
    let (ok, stderr) = push(&repo, cache.path(), &["--", "origin", "main"]);
    assert!(!ok, "the push went through:\n{stderr}");
    assert!(stderr.contains("push blocked"), "{stderr}");
    let remote_head = cmd!(sh, "git --git-dir {bare} rev-parse main").read().unwrap();
    assert_ne!(remote_head, repo.head(), "the remote did not receive the slower commit");

    // Bypass.
    let (ok, stderr) = push(&repo, cache.path(), &["--no-verify", "origin", "main"]);
    assert!(ok, "{stderr}");
    assert_eq!(cmd!(sh, "git --git-dir {bare} rev-parse main").read().unwrap(), repo.head());

    let run =
        bfperf_tests::xtask(&["install-hook", "--uninstall", "--sources", repo.path().to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!repo.path().join(".git/hooks/pre-push").exists());
}
