//! The exit-code contract (doc/exit-codes.md) on the command line itself:
//! a usage error is 1 (clap's own 2 would read as "significant change" to CI
//! and to the pre-push hook), `--help` and `--version` are 0, and the old
//! bench-history flag spellings still parse.

use bfperf_tests::{show, workspace_root, xtask};

const COMMANDS: &[&str] =
    &["bench", "bench-compare", "bench-history", "bench-selfcheck", "optimize", "doctor", "install-hook", "demo"];

#[test]
fn usage_errors_exit_1_with_clap_message_on_every_command() {
    let cache = tempfile::tempdir().unwrap();
    for cmd in COMMANDS {
        let run = xtask(&[cmd, "--no-such-flag"], cache.path());
        assert_eq!(run.code, 1, "{cmd} --no-such-flag:\n{}", show(&run));
        assert!(run.stderr.contains("unexpected argument '--no-such-flag'"), "{cmd}:\n{}", show(&run));
        assert!(run.stderr.contains("Usage:"), "{cmd}:\n{}", show(&run));
    }
    // A flag without its value, a missing positional, an unknown subcommand, no subcommand.
    for args in [
        &["bench-history", "--since"][..],
        &["bench-compare", "HEAD"],
        &["bench-compare", "HEAD", "HEAD", "--fail-on", "slower"],
        &["no-such-command"],
        &[],
    ] {
        let run = xtask(args, cache.path());
        assert_eq!(run.code, 1, "{args:?}:\n{}", show(&run));
        assert!(run.stderr.contains("error:") || run.stdout.contains("Usage:"), "{args:?}:\n{}", show(&run));
    }
}

#[test]
fn help_and_version_exit_0_and_point_to_the_contract() {
    let cache = tempfile::tempdir().unwrap();
    for cmd in COMMANDS {
        let run = xtask(&[cmd, "--help"], cache.path());
        assert_eq!(run.code, 0, "{cmd} --help:\n{}", show(&run));
        assert!(run.stdout.contains("doc/exit-codes.md"), "{cmd} --help:\n{}", show(&run));
        let run = xtask(&[cmd, "--version"], cache.path());
        assert_eq!(run.code, 0, "{cmd} --version:\n{}", show(&run));
    }
    let run = xtask(&["--help"], cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stdout.contains("130 interrupted"), "{}", show(&run));
    assert!(workspace_root().join("doc/exit-codes.md").is_file());
}

#[test]
fn compare_and_history_share_flag_names_and_history_keeps_its_old_ones() {
    let cache = tempfile::tempdir().unwrap();
    for cmd in ["bench-compare", "bench-history"] {
        let run = xtask(&[cmd, "--help"], cache.path());
        for flag in ["--fail-on <WHAT>", "--fail-on-benchmark-error"] {
            assert!(run.stdout.contains(flag), "{cmd} --help lacks {flag}:\n{}", show(&run));
        }
        for value in ["- regression:", "- improvement:", "- any:"] {
            assert!(run.stdout.contains(value), "{cmd}:\n{}", show(&run));
        }
        assert!(!run.stdout.contains("worse"), "the old values are hidden:\n{}", show(&run));
    }
    let help = xtask(&["bench-history", "--help"], cache.path()).stdout;
    for old in ["--fail-on-significant-change", "--fail-on-any-commit-failure", "--fail-on-last-commit-failure"] {
        assert!(!help.contains(old), "{old} is a hidden alias:\n{help}");
    }
    // The old spellings parse: the run then stops for a reason that is not a usage error.
    let no_sources = cache.path().join("no-such-checkout");
    let run = xtask(
        &[
            "bench-history",
            "--since",
            "HEAD~1",
            "--sources",
            no_sources.to_str().unwrap(),
            "--fail-on-significant-change",
            "worse",
            "--fail-on-any-commit-failure",
            "--fail-on-last-commit-failure",
        ],
        cache.path(),
    );
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(!run.stderr.contains("Usage:"), "the old flags are accepted:\n{}", show(&run));
    assert!(run.stderr.contains("no-such-checkout"), "{}", show(&run));
}

#[test]
fn bench_harness_usage_errors_exit_1() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "bench-harness", "--bin", "bench-harness"])
        .current_dir(workspace_root())
        .status()
        .unwrap();
    assert!(status.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug/bench-harness");
    let out = std::process::Command::new(&bin).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument"));
    let out = std::process::Command::new(&bin).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}
