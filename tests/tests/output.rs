//! The output flags every result-producing command shares: `--json-output`
//! and `--markdown` to `-` (stdout), `$GITHUB_STEP_SUMMARY`, `--csv`. Against
//! the minifilter test double and the real kernel; every run is a cheap A/A.

use bfperf_tests::COMPARE_CHEAP as CHEAP;
use bfperf_tests::{require_bpf, run_leaving_no_mount, show, FixtureRepo};

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
