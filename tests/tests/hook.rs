//! The pre-push hook for real: a push of a slower commit is blocked, a push
//! of a harmless one goes through, and `--no-verify` bypasses it; hostile
//! paths are quoted, and each exit code of bench-compare gets its own message.

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

/// A stub for `cargo xtask`: records its arguments (NUL-separated) and its
/// working directory, then exits with `$STUB_EXIT`.
fn stub(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("xtask-stub");
    std::fs::write(
        &path,
        "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$STUB_ARGV\"\npwd -P > \"$STUB_CWD\"\nexit \"$STUB_EXIT\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Files named `pwned*` anywhere under `root`.
fn pwned(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![];
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            if e.file_name().to_string_lossy().starts_with("pwned") {
                found.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    found
}

#[test]
fn the_hook_quotes_hostile_paths_and_maps_each_exit_code() {
    let base = tempfile::tempdir().unwrap();
    // Both paths the hook deals with hold quotes and command substitutions.
    let top = base.path().join("it's $(touch pwned) `touch pwned2` \"q\"");
    let sources = top.join("bpfilter 'x'; touch pwned3; '");
    let bfperf = top.join("bf'perf $(touch pwned4)");
    let bare = base.path().join("remote.git");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::create_dir_all(&bfperf).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .current_dir(&sources)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    git(&["commit", "-q", "--allow-empty", "-m", "first"]);
    git(&["push", "-q", "-u", "origin", "main"]);
    xtask::hook::install(&sources, &bfperf).unwrap();

    let work = tempfile::tempdir().unwrap();
    let stub = stub(work.path());
    let argv_file = work.path().join("argv");
    let cwd_file = work.path().join("cwd");
    let remote_head = || {
        let out =
            Command::new("git").args(["--git-dir", bare.to_str().unwrap(), "rev-parse", "main"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let local_head = || {
        let out = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&sources).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let push = |exit: i32| {
        git(&["commit", "-q", "--allow-empty", "-m", &format!("change exiting {exit}")]);
        let _ = std::fs::remove_file(&argv_file);
        let out = Command::new("git")
            .args(["push", "-q", "origin", "main"])
            .current_dir(&sources)
            .env("BFPERF_XTASK", &stub)
            .env("STUB_ARGV", &argv_file)
            .env("STUB_CWD", &cwd_file)
            .env("STUB_EXIT", exit.to_string())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    // The stub exits 0: the push goes through, with the exact paths and no command run.
    let (ok, stderr) = push(0);
    assert!(ok, "{stderr}");
    assert_eq!(remote_head(), local_head());
    let argv = std::fs::read(&argv_file).unwrap();
    let argv: Vec<String> =
        argv.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8(a.to_vec()).unwrap()).collect();
    let want = ["bench-compare", "--quick", "origin/main", "HEAD", "--sources", sources.to_str().unwrap()];
    assert_eq!(argv, [&want[..], &["--fail-on", "regression"]].concat());
    let cwd = std::fs::read_to_string(&cwd_file).unwrap();
    assert_eq!(cwd.trim_end_matches('\n'), bfperf.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(pwned(base.path()), Vec::<std::path::PathBuf>::new(), "a path ran as a command");

    // 2: a significant regression blocks the push.
    let (ok, stderr) = push(2);
    assert!(!ok, "the push went through:\n{stderr}");
    assert!(stderr.contains("push blocked: a benchmark case is significantly slower"), "{stderr}");
    assert_ne!(remote_head(), local_head());

    // 1: bfperf could not run (a usage error, no BPF, ...): said so, push not blocked.
    let (ok, stderr) = push(1);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("could not run (exit 1"), "{stderr}");
    assert!(!stderr.contains("significantly slower"), "{stderr}");
    assert_eq!(remote_head(), local_head());

    // 130: interrupted, the push is aborted.
    let (ok, stderr) = push(130);
    assert!(!ok && stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("significantly slower"), "{stderr}");
    assert_eq!(pwned(base.path()), Vec::<std::path::PathBuf>::new());
}

#[test]
fn install_hook_takes_a_checkout_path_with_quotes() {
    let base = tempfile::tempdir().unwrap();
    let sources = base.path().join("it's $(touch pwned)");
    std::fs::create_dir_all(sources.join("src/bfcli")).unwrap(); // what a bpfilter tree looks like
    std::fs::write(sources.join("CMakeLists.txt"), "").unwrap();
    let out = Command::new("git").args(["init", "-q"]).current_dir(&sources).output().unwrap();
    assert!(out.status.success());
    let cache = tempfile::tempdir().unwrap();
    let run = bfperf_tests::xtask(&["install-hook", "--sources", sources.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", bfperf_tests::show(&run));
    let hook = std::fs::read(sources.join(".git/hooks/pre-push")).unwrap();
    // The hook names no checkout: it asks git when it runs.
    assert!(!String::from_utf8_lossy(&hook).contains("touch pwned"));
    assert_eq!(pwned(base.path()), Vec::<std::path::PathBuf>::new());
}
