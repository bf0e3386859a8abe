//! The output flags every result-producing command shares: `--json-output`
//! and `--markdown` to `-` (stdout), `$GITHUB_STEP_SUMMARY`, `--csv`. Against
//! the minifilter test double and the real kernel; every run is a cheap A/A.

use bfperf_tests::COMPARE_CHEAP as CHEAP;
use bfperf_tests::{require_bpf, run_leaving_no_mount, show, FixtureRepo, Run};
use std::path::Path;

#[test]
fn json_output_dash_makes_stdout_pure_json_and_the_table_goes_to_stderr() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let md = out.path().join("comment.md");
    let args = [CHEAP, &["HEAD", "HEAD", "--json-output", "-", "--markdown", md.to_str().unwrap()]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&run)));
    assert_eq!(v["schema"], "bfperf.compare.v1");
    assert_eq!(v["cases"].as_array().unwrap().len(), 2);
    assert!(run.stderr.contains("xdp__prologue") && run.stderr.contains("verdict"), "the table:\n{}", show(&run));
    assert!(run.stderr.contains(&format!("Markdown: {}", md.display())), "{}", show(&run));
    assert!(std::fs::read_to_string(&md).unwrap().contains("xdp__prologue"));

    // Two outputs cannot share stdout: one error, before anything runs.
    let both = [CHEAP, &["HEAD", "HEAD", "--json-output", "-", "--markdown", "-"]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &both, cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&run));
    assert!(errors[0].contains("--json-output and --markdown all ask for stdout"), "{}", show(&run));
    assert!(run.stdout.is_empty(), "{}", show(&run));
}

/// `bench-compare ARGS` with `$GITHUB_STEP_SUMMARY` set to `summary`.
fn compare_with_summary(repo: &FixtureRepo, args: &[&str], cache: &Path, summary: &Path) -> Run {
    let mut cmd = bfperf_tests::subcommand("bench-compare", repo.path(), args, cache);
    cmd.env("GITHUB_STEP_SUMMARY", summary);
    let out = cmd.output().expect("xtask runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_markdown_is_appended_to_github_step_summary_and_a_planted_link_is_refused() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary");
    std::fs::write(&summary, "# an earlier step\n").unwrap();
    let args = [CHEAP, &["HEAD", "HEAD"]].concat();
    let run = compare_with_summary(&repo, &args, cache.path(), &summary);
    assert_eq!(run.code, 0, "{}", show(&run));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# an earlier step\n"), "appended, not truncated:\n{text}");
    assert!(text.contains("xdp__prologue") && text.contains("tc__prologue"), "{text}");
    assert!(run.stdout.contains("Markdown appended to $GITHUB_STEP_SUMMARY"), "{}", show(&run));
    // A second step appends again.
    let first = text.len();
    let run = compare_with_summary(&repo, &args, cache.path(), &summary);
    assert_eq!(run.code, 0, "{}", show(&run));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.len() > first && text[first..].contains("xdp__prologue"), "{text}");

    // A symbolic link planted at the path is not followed: one error, the target untouched.
    let target = dir.path().join("target");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = compare_with_summary(&repo, &args, cache.path(), &link);
    assert_eq!(run.code, 1, "{}", show(&run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&run));
    assert!(errors[0].contains("is a symbolic link"), "{}", show(&run));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}
