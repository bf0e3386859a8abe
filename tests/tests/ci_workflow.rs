//! doc/ci/bfperf.yml is a real workflow: parse it, check its shape, and run
//! the exact `cargo xtask` commands of its steps against minifilter.

use bfperf_tests::{require_bpf, workspace_root, xtask_bin, FixtureRepo};
use serde_yaml::Value;
use std::process::Command;
use xshell::cmd;

fn workflow() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("doc/ci/bfperf.yml")).unwrap();
    serde_yaml::from_str(&text).expect("the workflow is valid YAML")
}

fn steps(w: &Value) -> Vec<Value> {
    w["jobs"]["perf"]["steps"].as_sequence().expect("jobs.perf.steps").clone()
}

/// The `cargo xtask` command lines of the workflow, in order.
fn xtask_commands(w: &Value) -> Vec<String> {
    steps(w).iter().filter_map(|s| s["run"].as_str()).filter(|r| r.contains("cargo xtask")).map(str::to_owned).collect()
}

/// The expression GitHub evaluates to "the pull request comes from this repository, not a fork".
const SAME_REPO: &str = "github.event.pull_request.head.repo.full_name == github.repository";

#[test]
fn fork_pull_requests_cannot_run_as_root_without_approval() {
    let w = workflow();
    assert_eq!(w["jobs"].as_mapping().unwrap().len(), 1, "one job, the guarded one");
    assert!(
        w["on"].get("pull_request_target").is_none(),
        "pull_request_target would hand forks secrets and a write token"
    );
    let job = &w["jobs"]["perf"];
    // Same-repository pull requests get `bfperf`; anything else the approval-gated `bfperf-fork`.
    let env =
        job["environment"].as_str().or_else(|| job["environment"]["name"].as_str()).expect("jobs.perf.environment");
    let expr = env.trim().strip_prefix("${{").and_then(|e| e.strip_suffix("}}")).expect("an expression").trim();
    assert_eq!(expr, format!("{SAME_REPO} && 'bfperf' || 'bfperf-fork'"), "{env}");
    // A fork's token cannot comment: the step is skipped for forks instead of failing.
    let comment =
        steps(&w).into_iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("gh pr comment"))).unwrap();
    assert!(comment["if"].as_str().is_some_and(|c| c.contains(SAME_REPO)), "{comment:?}");
    // The doc says it plainly and shows the safe set-up.
    let doc = std::fs::read_to_string(workspace_root().join("doc/ci.md")).unwrap();
    for needle in
        ["as root", "bfperf-fork", "required reviewers", "--ephemeral", "fresh VM per job", "pull_request_target"]
    {
        assert!(doc.contains(needle), "doc/ci.md does not mention {needle}");
    }
}

#[test]
fn the_workflow_has_the_shape_ci_needs() {
    let w = workflow();
    assert!(w["on"]["pull_request"].is_mapping(), "runs on pull requests");
    let job = &w["jobs"]["perf"];
    let labels: Vec<&str> = job["runs-on"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(labels.contains(&"self-hosted") && labels.contains(&"bpf"), "{labels:?}");
    assert_eq!(job["permissions"]["pull-requests"].as_str(), Some("write"));
    let commands = xtask_commands(&w);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[1].contains("bench-compare") && commands[1].contains("--fail-on regression"));
    assert!(commands[1].contains("--markdown perf.md"));
    // The comment step posts the Markdown the comparison wrote.
    assert!(steps(&w).iter().any(|s| s["run"].as_str().is_some_and(|r| r.contains("--body-file bfperf/perf.md"))));
    let checkout = &steps(&w)[0];
    assert_eq!(checkout["with"]["fetch-depth"].as_i64(), Some(0), "history is needed for the base commit");
}

/// Run one workflow command as the workflow would, in `bfperf_dir`.
fn run_step(
    command: &str,
    sources: &std::path::Path,
    base_ref: &str,
    cache: &std::path::Path,
    dir: &std::path::Path,
) -> i32 {
    let line = command
        .replace("${{ github.base_ref }}", base_ref)
        .replace("sudo -E ", "")
        .replace("cargo xtask", &xtask_bin().display().to_string());
    let out = Command::new("sh")
        .args(["-c", &format!("{line} --cache-dir {} --quick --filter xdp__prologue,tc__prologue", cache.display())])
        .current_dir(dir)
        .env("BPFILTER_SOURCES", sources)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    eprintln!("$ {line}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out.status.code().unwrap_or(-1)
}

#[test]
fn the_workflow_commands_fail_a_slower_pull_request_and_pass_a_harmless_one() {
    require_bpf!();
    let w = workflow();
    let commands = xtask_commands(&w);
    // The bpfilter checkout as actions/checkout leaves it: origin/<base> and the PR's HEAD.
    let repo = FixtureRepo::new();
    let remote = tempfile::tempdir().unwrap();
    let sh = repo.shell();
    let bare = remote.path();
    cmd!(sh, "git init -q --bare {bare}").run().unwrap();
    cmd!(sh, "git remote add origin {bare}").run().unwrap();
    cmd!(sh, "git push -q origin main").run().unwrap();
    cmd!(sh, "git fetch -q origin").run().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap(); // the job's bfperf/ working directory

    // `doctor` (the first command) passes on this machine.
    let doctor = commands[0].replace("sudo -E ", "").replace("cargo xtask", &xtask_bin().display().to_string());
    let out = Command::new("sh").args(["-c", &doctor]).env("BPFILTER_SOURCES", repo.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    repo.set_padding(400);
    repo.commit("cgen: a slower prologue");
    assert_eq!(
        run_step(&commands[1], repo.path(), "main", cache.path(), work.path()),
        2,
        "a regression fails the check"
    );
    let md = std::fs::read_to_string(work.path().join("perf.md")).expect("perf.md written");
    assert!(md.contains("xdp__prologue") && md.contains("slower"), "{md}");
    assert!(work.path().join("perf.json").exists());

    // A harmless pull request on top of the same base passes.
    cmd!(sh, "git reset -q --hard origin/main").run().unwrap();
    repo.write("README.md", "docs only\n");
    repo.commit("doc: reword");
    // A wide threshold: a docs-only change must not fail CI on noise in this test.
    let harmless = format!("{} --threshold 10", commands[1]);
    assert_eq!(run_step(&harmless, repo.path(), "main", cache.path(), work.path()), 0);
}

/// doc/ci/bfperf-history.yml: N shard jobs, then a merge job.
fn history_workflow() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("doc/ci/bfperf-history.yml")).unwrap();
    serde_yaml::from_str(&text).expect("the workflow is valid YAML")
}

/// The step of `job` whose `run:` holds `needle`.
fn step_running(w: &Value, job: &str, needle: &str) -> Value {
    let steps = w["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("jobs.{job}.steps"));
    steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains(needle))).cloned().expect(needle)
}

/// Replace the `${{ ... }}` expressions the history workflow uses by their values here.
fn expand(text: &str, shard: &str, temp: &std::path::Path, workspace: &std::path::Path) -> String {
    text.replace("${{ matrix.shard }}", shard)
        .replace("${{ runner.temp }}", &temp.display().to_string())
        .replace("${{ github.workspace }}", &workspace.display().to_string())
        .replace("sudo -E ", "")
        .replace("cargo xtask", &xtask_bin().display().to_string())
}

#[test]
fn the_history_workflow_shards_over_runners_and_merges_their_caches() {
    require_bpf!();
    let w = history_workflow();
    assert!(w["on"].get("pull_request").is_none() && w["on"].get("pull_request_target").is_none(), "main only");
    let shard_job = &w["jobs"]["shard"];
    let labels: Vec<&str> = shard_job["runs-on"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(labels.contains(&"self-hosted") && labels.contains(&"bpf"), "{labels:?}");
    let shards: Vec<String> = shard_job["strategy"]["matrix"]["shard"]
        .as_sequence()
        .expect("a matrix over the shards")
        .iter()
        .map(|s| s.as_i64().unwrap().to_string())
        .collect();
    let n = shards.len();
    assert_eq!(shards, (1..=n).map(|k| k.to_string()).collect::<Vec<_>>());
    let measure = step_running(&w, "shard", "bench-history");
    let command = measure["run"].as_str().unwrap();
    assert!(command.contains(&format!("--shard ${{{{ matrix.shard }}}}/{n}")), "{command}");
    assert!(!command.contains("inputs."), "the input goes through the environment: {command}");
    let upload = shard_job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact")))
        .expect("the shard uploads its cache")
        .clone();
    let merge_job = &w["jobs"]["merge"];
    assert_eq!(merge_job["needs"].as_str(), Some("shard"));
    let merge = step_running(&w, "merge", "--merge")["run"].as_str().unwrap().to_owned();
    let download = merge_job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/download-artifact")))
        .expect("the merge downloads the shards")
        .clone();
    let downloaded = download["with"]["path"].as_str().unwrap();

    // Run it: the bpfilter checkout (a padded prologue between two commits), one runner per
    // shard with its own temporary directory, artifacts as GitHub lays them out.
    let repo = FixtureRepo::new();
    let c0 = repo.head();
    repo.set_padding(300);
    let c1 = repo.commit("cgen: 300 redundant instructions per prologue");
    repo.write("README.md", "docs\n");
    repo.commit("docs");
    let workspace = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo.path(), workspace.path().join("bpfilter")).unwrap();
    std::fs::create_dir(workspace.path().join("bfperf")).unwrap();
    let artifacts = workspace.path().join(downloaded);
    let temps: Vec<tempfile::TempDir> = shards.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    for (shard, temp) in shards.iter().zip(&temps) {
        let line = expand(command, shard, temp.path(), workspace.path());
        let out = Command::new("sh")
            .args(["-c", &format!("{line} --quick --time-budget 5 --filter xdp__prologue,tc__prologue")])
            .current_dir(workspace.path().join("bfperf"))
            .env("BPFILTER_SOURCES", repo.path())
            .env("SINCE", &c0)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let log = format!("$ {line}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{log}");
        // upload-artifact keeps the paths relative to their longest common directory.
        let paths: Vec<std::path::PathBuf> = upload["with"]["path"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| expand(l.trim(), shard, temp.path(), workspace.path()).into())
            .collect();
        let root = temp.path().join("bfperf-cache");
        let name = upload["with"]["name"].as_str().unwrap().replace("${{ matrix.shard }}", shard);
        // The record always; results/ only when the shard owns a pair (3 shards, 2 pairs here).
        assert!(paths[0].is_file(), "{} was not written:\n{log}", paths[0].display());
        for p in paths.iter().filter(|p| p.exists()) {
            let to = artifacts.join(&name).join(p.strip_prefix(&root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            let status = Command::new("cp").arg("-a").arg(p).arg(&to).status().unwrap();
            assert!(status.success());
        }
    }
    let summary = workspace.path().join("summary.md");
    let line = expand(&merge, "", workspace.path(), workspace.path());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .args(["-c", &format!("{line} --cache-dir {}", cache.path().display())])
        .current_dir(workspace.path().join("bfperf"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("NO_COLOR", "1")
        .env_remove("BPFILTER_SOURCES")
        .output()
        .unwrap();
    let log = format!("$ {line}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "every pair merged, none missing:\n{log}");
    let report = workspace.path().join("report");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("history.json")).unwrap()).unwrap();
    let slower: Vec<&str> = v["changes"].as_array().unwrap().iter().map(|c| c["commit"].as_str().unwrap()).collect();
    assert!(!slower.is_empty() && slower.iter().all(|c| *c == &c1[..12]), "{log}\n{v:#}");
    assert!(report.join("history.html").is_file() && report.join("history.md").is_file());
    let md = std::fs::read_to_string(&summary).expect("the summary was appended");
    assert!(md.contains("**slower**"), "{md}");
}
