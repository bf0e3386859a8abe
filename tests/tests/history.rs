//! `cargo xtask bench-history` end to end, against the minifilter test double
//! and the real kernel: the one commit that really changed performance is
//! found (and README commits are not), the JSON and HTML outputs, every exit
//! code flag, cache reuse (nothing built or measured twice), `--include`,
//! commits that do not build, `--retry failed`, `wip`, each bad input (one
//! `error: ` line), a corrupt cache entry and Ctrl-C.
//!
//! Every run is kept cheap: two prologue cases, `--quick`, a 5 s budget per
//! pair. Runs take the host-wide benchmark lock and wait for each other, so
//! the tests of this file effectively run one after the other.

use bfperf_tests::{git, mounts_of, snapshot};
use bfperf_tests::{require_bpf, show, FixtureRepo, Run};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

/// Two cases, short rounds, a short budget: about a second of measuring per pair.
const CHEAP: &[&str] = &["--filter", "xdp__prologue,tc__prologue", "--quick", "--time-budget", "5"];

/// Where a test asserts "exactly one change" the threshold is raised to 10 %.
/// A history is one test per commit and case: at the default 1 % a README-only
/// commit (the same programs) is flagged whenever the noise of one `--quick`
/// pair happens to exceed 1 % with a tight interval, and CI must not flake.
/// The real change tested here (300 instead of 16 padding instructions per
/// prologue) is above +100 %, ten times this threshold.
const ONE_CHANGE: &[&str] = &["--threshold", "10"];

/// The selected cases, in suite order.
const CASES: [&str; 2] = ["xdp__prologue", "tc__prologue"];

/// Schema of a cached pair comparison under `<cache>/results/`.
const PAIR_SCHEMA: &str = "bfperf.history-pair.v1";

fn xtask_command(sources: &Path, args: &[&str], cache: &Path) -> Command {
    bfperf_tests::subcommand("bench-history", sources, args, cache)
}

/// `xtask bench-history ARGS --sources SOURCES --cache-dir CACHE`. Whatever
/// the outcome, the process must have left no bpffs mount behind.
fn history(sources: &Path, args: &[&str], cache: &Path) -> Run {
    bfperf_tests::run_leaving_no_mount("bench-history", sources, args, cache)
}

/// The failure's one `error: ` line; there must be exactly one.
fn error_line(run: &Run) -> &str {
    assert_ne!(run.code, 0, "expected a failure:\n{}", show(run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", show(run));
    errors[0]
}

/// The history JSON written by `--json-output`.
fn read_json(path: &Path) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    assert_eq!(v["cases"], serde_json::json!(CASES), "the selected cases, in suite order");
    v
}

/// The first 12 hex digits of a commit id: the label of its point.
fn short(sha: &str) -> &str {
    &sha[..12]
}

/// What the summary on stdout says of the point labelled `label`:
/// `cached`, `measured` or `BUILD FAILED`.
fn state_of<'a>(run: &'a Run, label: &str) -> &'a str {
    let line = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no line for {label}:\n{}", show(run)));
    let rest = line[label.len()..].trim_start();
    ["cached", "measured", "BUILD FAILED", "unsupported tree"]
        .into_iter()
        .find(|s| rest.starts_with(s))
        .unwrap_or_else(|| panic!("no state in {line:?}"))
}

/// `(case, commit label, change)` of every significant change in the JSON.
fn changes(v: &Value) -> Vec<(String, String, String)> {
    v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let s = |x: &Value| x.as_str().unwrap().to_owned();
            (s(&c["case"]), s(&c["commit"]), s(&c["change"]["change"]))
        })
        .collect()
}

/// Exactly one change per selected case, each at `label` and `slower`, with
/// an interval above 1 and the point index `index`.
fn assert_only_slower_at(v: &Value, label: &str, index: u64) {
    let got = changes(v);
    let want: Vec<(String, String, String)> =
        CASES.iter().map(|c| (c.to_string(), label.to_owned(), "slower".to_owned())).collect();
    assert_eq!(got, want, "one slower change per case, at {label}");
    for c in v["changes"].as_array().unwrap() {
        assert_eq!(c["change"]["index"], index, "{c}");
        assert!(c["change"]["estimate"]["lo"].as_f64().unwrap() > 1.0, "interval above 1: {c}");
    }
}

/// The rate and the intervals' level are stated; the suite's change of each
/// commit is listed, significant at `changed` only; the chained ratios are
/// flat (byte-identical programs) everywhere but at `changed`, where they rise.
fn assert_rate_suite_and_trend(v: &Value, changed: usize) {
    let points = v["points"].as_array().unwrap().len();
    let tests = (points - 1) * CASES.len();
    assert_eq!(v["fdr"], 0.05, "{v:#}");
    assert_eq!(v["tests"], tests, "{v:#}");
    // `1 - R q / m` for R discoveries (the changed cases at least).
    let r = (1.0 - v["change_level"].as_f64().unwrap()) * tests as f64 / 0.05;
    assert!((r - r.round()).abs() < 1e-9 && r.round() >= CASES.len() as f64, "change_level: {v:#}");
    let suite = v["suite"].as_array().unwrap();
    assert_eq!(suite.len(), points - 1, "one suite change per pair: {v:#}");
    for (i, s) in suite.iter().enumerate() {
        assert_eq!(s["index"], i + 1);
        let want = if i + 1 == changed { "slower" } else { "no_change" };
        assert_eq!(s["change"], want, "suite at point {}: {s}", i + 1);
        let e = &s["estimate"];
        assert!(e["lo"].as_f64().unwrap() <= e["ratio"].as_f64().unwrap(), "{s}");
        assert!(e["ratio"].as_f64().unwrap() <= e["hi"].as_f64().unwrap(), "{s}");
    }
    let trend = &v["trend"];
    assert_eq!(trend["level"], 0.99);
    let chains =
        std::iter::once(&trend["suite"]).chain(trend["cases"].as_array().unwrap().iter().map(|c| &c["points"]));
    for chain in chains {
        let chain = chain.as_array().unwrap();
        assert_eq!(chain.len(), points, "{chain:?}");
        let ratio = |i: usize| chain[i]["ratio"].as_f64().unwrap();
        assert_eq!(ratio(0), 1.0);
        for i in 1..points {
            if i == changed {
                assert_eq!(chain[i]["identical"], false, "{chain:?}");
                assert!(ratio(i) > 1.5 * ratio(i - 1), "the padded commit rises: {chain:?}");
                assert!(chain[i]["lo"].as_f64().unwrap() > 1.0, "{chain:?}");
            } else {
                assert_eq!(chain[i]["identical"], true, "same programs as the commit before: {chain:?}");
                assert_eq!(ratio(i), ratio(i - 1), "flat: {chain:?}");
            }
        }
    }
}

/// Commit a README change; returns the new HEAD.
fn readme_commit(repo: &FixtureRepo, line: &str, message: &str) -> String {
    let readme = std::fs::read_to_string(repo.path().join("README.md")).unwrap_or_default();
    repo.write("README.md", &format!("{readme}\n{line}\n"));
    repo.commit(message)
}

/// The fixture with two documentation-only commits on top: its three commits, oldest first.
fn three_docs_commits() -> (FixtureRepo, [String; 3]) {
    let repo = FixtureRepo::new();
    let c0 = repo.head();
    let c1 = readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    let c2 = readme_commit(&repo, "How to run its tests.", "docs: how to test");
    (repo, [c0, c1, c2])
}

/// Size and mtime of every per-commit build log,
/// `<cache>/builds/*/commits/<sha>/bfperf-build.log`, by commit.
fn build_logs(cache: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut logs = BTreeMap::new();
    for repo in std::fs::read_dir(cache.join("builds")).unwrap() {
        let Ok(commits) = std::fs::read_dir(repo.unwrap().path().join("commits")) else { continue };
        for commit in commits {
            let commit = commit.unwrap();
            if let Ok(meta) = std::fs::metadata(commit.path().join("bfperf-build.log")) {
                let name = commit.file_name().to_string_lossy().into_owned();
                logs.insert(name, (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    logs
}

/// Every file under `<cache>/results/`.
fn result_files(cache: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path());
            }
        }
    }
    let mut out = vec![];
    walk(&cache.join("results"), &mut out);
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every file under `<cache>/results/` is a complete cached pair (no
/// half-written JSON, no leftover temporary file).
fn assert_results_parse(cache: &Path) -> Vec<PathBuf> {
    let files = result_files(cache);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", f.display()));
        assert_eq!(v["schema"], PAIR_SCHEMA, "{}", f.display());
    }
    files
}

#[test]
fn the_one_slower_commit_is_found_and_a_second_run_reuses_everything() {
    require_bpf!();
    let (repo, [c0, c1, c2]) = three_docs_commits();
    repo.set_padding(300);
    let c3_subject = "cgen: 300 redundant instructions per prologue";
    let c3 = repo.commit(c3_subject);
    let c4 = readme_commit(&repo, "A last line.", "docs: a last line");
    let commits = [&c0, &c1, &c2, &c3, &c4];
    let subjects =
        ["initial import of minifilter", "docs: how to build", "docs: how to test", c3_subject, "docs: a last line"];

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    let json = out.path().join("history.json");
    let j = json.to_str().unwrap();
    let html = out.path().join("history.html");
    // `fail_on`: the flag and its value (the old `--fail-on-significant-change` spelling still works).
    let args = |fail_on: [&'static str; 2]| -> Vec<String> {
        [CHEAP, ONE_CHANGE, &["--since", &c0, "--until", "HEAD"], &fail_on[..]]
            .concat()
            .into_iter()
            .map(str::to_owned)
            .chain(["--json-output".into(), json.display().to_string(), "--html".into(), html.display().to_string()])
            .collect()
    };
    let run_with = |fail_on: [&'static str; 2]| {
        let a = args(fail_on);
        history(src, &a.iter().map(String::as_str).collect::<Vec<_>>(), cache)
    };

    // First run: everything built and measured; the padding commit is slower.
    let run = run_with(["--fail-on", "regression"]);
    assert_eq!(run.code, 2, "--fail-on regression with a slower commit:\n{}", show(&run));
    let v = read_json(&json);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 5, "{v:#}");
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p["commit"], commits[i].as_str(), "oldest first: point {i}");
        assert_eq!(p["label"], short(commits[i]));
        assert_eq!(p["subject"], subjects[i]);
        assert_eq!(p["status"], serde_json::json!({"state": "measured", "cached": false}), "point {i}");
        assert_eq!(p["results"]["source"]["commit"], commits[i].as_str());
        for case in p["results"]["cases"].as_array().unwrap() {
            assert_eq!(case["status"]["state"], "ok", "point {i}: {}", case["name"]);
            assert!(!case["samples"].as_array().unwrap().is_empty(), "point {i}: {}", case["name"]);
        }
        assert_eq!(state_of(&run, short(commits[i])), "measured");
    }
    assert_only_slower_at(&v, short(&c3), 3);
    let slower: Vec<&str> = run.stdout.lines().filter(|l| l.trim_start().starts_with("slower")).collect();
    assert_eq!(slower.len(), 3, "two cases and the suite:\n{}", show(&run));
    assert!(slower.iter().all(|l| l.contains(short(&c3))), "{}", show(&run));
    assert!(slower.iter().any(|l| l.contains("suite")), "{}", show(&run));
    assert!(
        run.stdout.contains("changes: false discovery rate 5 % (Benjamini–Hochberg over 8 case × commit tests"),
        "{}",
        show(&run)
    );
    assert_rate_suite_and_trend(&v, 3);

    // The report: one file, nothing fetched from the network, names the commit.
    let page = std::fs::read_to_string(&html).unwrap();
    for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!page.contains(remote), "the report loads {remote}…: not self-contained");
    }
    assert!(page.contains(c3_subject), "the report names the slower commit");
    // The plots chain the paired ratios; the docs-only commits load the same programs as their
    // parents and are drawn flat ("same programs"), the padding commit is not.
    assert!(page.contains("suite Δ % (chained)"), "the overall plot chains the pairs");
    let row = |commit: &str| {
        let at = page.find(&format!("<code title=\"{commit}\">")).unwrap_or_else(|| panic!("no row for {commit}"));
        &page[at..at + page[at..].find("</tr>").unwrap()]
    };
    for c in [&c1, &c2, &c4] {
        assert!(row(c).contains("same programs"), "{c} is docs-only: {}", row(c));
    }
    assert!(!row(&c3).contains("same programs"), "{}", row(&c3));
    for (i, p) in points.iter().enumerate().skip(1) {
        let same = p["pair"]["cases"].as_array().unwrap().iter().all(|c| c["same_program"] == true);
        assert_eq!(same, commits[i] != &c3, "point {i}: {}", p["pair"]);
    }
    assert!(run.stdout.contains(&format!("report: {}", html.display())), "{}", show(&run));

    // Second, identical run: every build and every pair comes from the cache.
    let logs = build_logs(cache);
    let want: Vec<&str> = {
        let mut w: Vec<&str> = commits.iter().map(|c| c.as_str()).collect();
        w.sort();
        w
    };
    assert_eq!(logs.keys().map(String::as_str).collect::<Vec<_>>(), want, "one build directory per commit");
    let run = run_with(["--fail-on-significant-change", "better"]);
    assert_eq!(run.code, 0, "--fail-on-significant-change better with only a slower commit:\n{}", show(&run));
    for c in commits {
        assert_eq!(state_of(&run, short(c)), "cached", "{}", show(&run));
    }
    assert_eq!(build_logs(cache), logs, "cmake or make ran again on an identical history");
    let v = read_json(&json);
    assert_only_slower_at(&v, short(&c3), 3);
    assert!(v["points"].as_array().unwrap().iter().all(|p| p["status"]["cached"] == true), "{v:#}");

    let run = run_with(["--fail-on", "any"]);
    assert_eq!(run.code, 2, "--fail-on any with a slower commit:\n{}", show(&run));

    // --markdown: the changes with their commits and intervals, on stdout with
    // `-`, and appended to $GITHUB_STEP_SUMMARY (after what an earlier step wrote).
    let summary = out.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let mut cmd = xtask_command(src, &[CHEAP, ONE_CHANGE, &["--since", &c0, "--markdown", "-"]].concat(), cache);
    cmd.env("GITHUB_STEP_SUMMARY", &summary);
    let run = bfperf_tests::finish_leaving_no_mount(cmd.spawn().unwrap());
    assert_eq!(run.code, 0, "{}", show(&run));
    let md = &run.stdout;
    assert!(md.starts_with("### 🔴 bfperf history: "), "stdout is the Markdown alone:\n{}", show(&run));
    let rows: Vec<&str> = md.lines().filter(|l| l.contains("**slower**")).collect();
    assert_eq!(rows.len(), 3, "two cases and the suite:\n{md}");
    for row in &rows {
        assert!(row.starts_with(&format!("| `{}` | cgen\\: 300 redundant", short(&c3))), "{row}");
        assert!(row.contains(" % [+"), "with its interval: {row}");
    }
    assert!(md.contains("false discovery rate 5 %"), "{md}");
    assert!(run.stderr.contains("Markdown appended to $GITHUB_STEP_SUMMARY"), "{}", show(&run));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), format!("earlier step\n{md}"));
    let run = run_with(["--fail-on-significant-change", "worse"]);
    assert_eq!(run.code, 2, "the old --fail-on-significant-change worse with a slower commit:\n{}", show(&run));
    assert_eq!(build_logs(cache), logs);

    // --include puts an older commit first, whatever the commit times (these
    // were all made within a second or two): only the new pair, c0 → c2, is measured.
    let args = [CHEAP, ONE_CHANGE, &["--since", &c2, "--until", &c4, "--include", &c0], &["--json-output", j]].concat();
    let run = history(src, &args, cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    let labels: Vec<&str> = v["points"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels, [&c0, &c2, &c3, &c4].map(|c| short(c)), "oldest first");
    assert_eq!(state_of(&run, short(&c2)), "measured", "{}", show(&run));
    for c in [&c0, &c3, &c4] {
        assert_eq!(state_of(&run, short(c)), "cached", "{}", show(&run));
    }
    assert_only_slower_at(&v, short(&c3), 2);
    assert_rate_suite_and_trend(&v, 2);
    assert_eq!(build_logs(cache), logs);

    // The user's tree and branches are untouched.
    assert_eq!(repo.status(), "", "the user's tree is untouched");
    assert_eq!(repo.head(), c4);
    assert!(!git(src, &["branch", "--list"]).contains("bfperf"), "a bfperf branch was left");
}

#[test]
fn a_commit_that_does_not_build_is_skipped_and_retried_on_request() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let c0 = repo.head();
    let c1 = readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    let prologue = "src/libbpfilter/cgen/prologue.c";
    let good = std::fs::read_to_string(repo.path().join(prologue)).unwrap();
    repo.write(prologue, "this is not C;\n");
    let c2 = repo.commit("cgen: break the build");
    repo.write(prologue, &good);
    let c3 = repo.commit("cgen: fix the build");

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    let json = out.path().join("history.json");
    let j = json.to_str().unwrap();
    let upto = |until: &str, extra: &[&str]| -> Run {
        let args = [CHEAP, ONE_CHANGE, &["--since", &c0, "--until", until], extra].concat();
        history(src, &args, cache)
    };

    let run = upto(&c3, &["--fail-on-benchmark-error", "--json-output", j]);
    assert_eq!(run.code, 3, "--fail-on-benchmark-error with a broken commit:\n{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "BUILD FAILED", "{}", show(&run));
    for c in [&c0, &c1, &c3] {
        assert_eq!(state_of(&run, short(c)), "measured", "{}", show(&run));
    }
    assert!(
        run.stderr.lines().any(|l| l.contains(short(&c2)) && l.contains("does not build, skipped")),
        "{}",
        show(&run)
    );
    assert!(!run.stderr.lines().any(|l| l.starts_with("error")), "a broken commit is not an error:\n{}", show(&run));
    let v = read_json(&json);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(points[2]["status"]["state"], "build_failed");
    assert!(points[2]["status"]["reason"].as_str().unwrap().contains("prologue.c"), "{}", points[2]);
    assert!(points[2]["results"].is_null());
    assert!(!points[3]["results"].is_null());
    // c3 has the same programs as c1, against which it is compared: no change.
    assert_eq!(changes(&v), vec![], "{v:#}");
    // The pairs measured: c0 → c1 and c1 → c3 (c2 skipped).
    let pairs: Vec<String> = result_files(cache).iter().map(|p| file_name(p)).collect();
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    assert!(pairs.iter().any(|n| n.starts_with(&format!("{}-{c1}-", short(&c0)))), "c1 vs c0: {pairs:?}");
    assert!(pairs.iter().any(|n| n.starts_with(&format!("{}-{c3}-", short(&c1)))), "c3 vs c1: {pairs:?}");
    assert!(!pairs.iter().any(|n| n.contains(short(&c2))), "c2 is in no pair: {pairs:?}");

    // Again, failing only on the last commit: it built, exit 0; the cached
    // failure is reported without building c2 again.
    let logs = build_logs(cache);
    assert_eq!(logs.len(), 4, "{logs:?}");
    let run = upto(&c3, &["--fail-on-last-commit-failure"]);
    assert_eq!(run.code, 0, "the last commit built:\n{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "BUILD FAILED", "{}", show(&run));
    for c in [&c0, &c1, &c3] {
        assert_eq!(state_of(&run, short(c)), "cached", "{}", show(&run));
    }
    assert_eq!(build_logs(cache), logs, "nothing rebuilt without --retry");
    // The old spelling of --fail-on-benchmark-error still works.
    let run = upto(&c3, &["--fail-on-any-commit-failure"]);
    assert_eq!(run.code, 3, "--fail-on-any-commit-failure with a broken commit:\n{}", show(&run));

    // The broken commit last: the flag triggers.
    let run = upto(&c2, &["--fail-on-last-commit-failure"]);
    assert_eq!(run.code, 3, "--fail-on-last-commit-failure with a broken last commit:\n{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "BUILD FAILED", "{}", show(&run));

    // --retry failed builds c2 again (its log grows), and nothing else.
    let run = upto(&c3, &["--retry", "failed"]);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "BUILD FAILED", "still broken:\n{}", show(&run));
    for c in [&c0, &c1, &c3] {
        assert_eq!(state_of(&run, short(c)), "cached", "{}", show(&run));
    }
    let after = build_logs(cache);
    for (commit, before) in &logs {
        if commit == &c2 {
            assert!(after[commit].0 > before.0, "c2 was built again: its log grew");
        } else {
            assert_eq!(&after[commit], before, "{commit} was rebuilt by --retry failed");
        }
    }
    assert_eq!(repo.status(), "", "the user's tree is untouched");
}

#[test]
fn wip_is_the_last_point_and_the_tree_is_untouched() {
    require_bpf!();
    let repo = FixtureRepo::new();
    readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    repo.set_padding(300);
    repo.write("notes.txt", "an untracked file\n");
    let status = repo.status();
    assert!(status.contains("knobs.h") && status.contains("notes.txt"), "{status}");
    let files = snapshot(repo.path());
    let head = repo.head();

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("history.json");
    let args = [
        CHEAP,
        ONE_CHANGE,
        &["--since", "HEAD~1", "--until", "wip", "--fail-on", "regression"],
        &["--json-output", json.to_str().unwrap()],
    ]
    .concat();
    let run = history(repo.path(), &args, cache.path());
    assert_eq!(run.code, 2, "{}", show(&run));
    assert_eq!(state_of(&run, "wip"), "measured", "{}", show(&run));
    let v = read_json(&json);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "{v:#}");
    let last = &points[2];
    assert_eq!(last["label"], "wip");
    assert_eq!(last["commit"], head.as_str(), "a wip point carries HEAD's id");
    assert_eq!(last["results"]["source"]["dirty"], true);
    assert_only_slower_at(&v, "wip", 2);
    assert_rate_suite_and_trend(&v, 2);

    // `--include wip` is the working tree too, not HEAD again.
    let args =
        [CHEAP, ONE_CHANGE, &["--since", "HEAD~1", "--include", "wip"], &["--json-output", json.to_str().unwrap()]]
            .concat();
    let run = history(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    let labels: Vec<&str> = v["points"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels, [short(&git(repo.path(), &["rev-parse", "HEAD~1"])), short(&head), "wip"]);
    assert_only_slower_at(&v, "wip", 2);

    // A range of one commit: that commit against its parent (both cached).
    let args = [CHEAP, ONE_CHANGE, &["--since", "HEAD", "--until", "HEAD"], &["--json-output", json.to_str().unwrap()]]
        .concat();
    let run = history(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    let labels: Vec<&str> = v["points"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 2, "{v:#}");
    assert_eq!(labels[1], short(&head));
    assert_eq!(state_of(&run, short(&head)), "cached", "{}", show(&run));
    assert_eq!(changes(&v), vec![], "a README commit: {v:#}");

    assert_eq!(repo.status(), status, "git status unchanged");
    assert_eq!(repo.head(), head);
    let after = snapshot(repo.path());
    assert_eq!(after.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>(), "no file added or removed");
    assert!(after == files, "a file of the user's tree changed");
}

#[test]
fn all_parents_walks_a_merged_branch_and_pairs_each_commit_with_its_parent() {
    require_bpf!();
    // c0 ─ m1 (docs) ─────── merge
    //   └─ b1 (padding 300) ─┘
    let repo = FixtureRepo::new();
    let src = repo.path();
    let c0 = repo.head();
    git(src, &["checkout", "-q", "-b", "topic"]);
    repo.set_padding(300);
    let b1 = repo.commit("cgen: 300 redundant instructions per prologue");
    git(src, &["checkout", "-q", "-"]);
    let m1 = readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    git(src, &["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"]);
    let merge = repo.head();

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("history.json");
    let j = json.to_str().unwrap();
    let labels = |v: &Value| -> Vec<String> {
        v["points"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap().to_owned()).collect()
    };

    // First parents only: the merge brings the change.
    let run = history(src, &[CHEAP, ONE_CHANGE, &["--since", &c0, "--json-output", j]].concat(), cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    assert_eq!(labels(&v), [short(&c0), short(&m1), short(&merge)]);
    assert_only_slower_at(&v, short(&merge), 2);

    // Every parent: b1 is measured against c0 (its parent), m1 against c0
    // too (not against b1, the point before it), the merge against m1.
    let run = history(
        src,
        &[CHEAP, ONE_CHANGE, &["--since", &c0, "--all-parents", "--json-output", j]].concat(),
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    let got = labels(&v);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!((got[0].as_str(), got[3].as_str()), (short(&c0), short(&merge)), "{got:?}");
    let (b1_at, _) = got.iter().enumerate().find(|(_, l)| l.as_str() == short(&b1)).expect("b1 is walked");
    assert!(got.contains(&short(&m1).to_owned()), "{got:?}");
    let mut want: Vec<(String, String, String)> = vec![];
    for label in [short(&b1), short(&merge)] {
        for case in CASES {
            want.push((case.to_owned(), label.to_owned(), "slower".to_owned()));
        }
    }
    let mut found = changes(&v);
    found.sort_by_key(|c| (got.iter().position(|l| *l == c.1), CASES.iter().position(|x| *x == c.0)));
    assert_eq!(found, want, "slower at b1 and at the merge only: {v:#}");
    // The chain of the merge is its base's (m1: flat) times its own ratio, not b1's.
    let suite = v["trend"]["suite"].as_array().unwrap();
    let m1_at = 3 - b1_at; // b1 and m1 are points 1 and 2, in some order
    assert_eq!(suite[m1_at]["identical"], true, "{suite:?}");
    assert_eq!(suite[m1_at]["ratio"], 1.0, "m1 against c0, not against b1: {suite:?}");
    assert!(suite[b1_at]["ratio"].as_f64().unwrap() > 1.5, "{suite:?}");
    assert!(suite[3]["ratio"].as_f64().unwrap() > 1.5, "{suite:?}");
}

/// Make the fixture's bfcli answer as a bfcli from before bpfilter's daemon
/// removal does to `-b`: argp's usage error, exit 64.
fn daemon_era_bfcli(repo: &FixtureRepo) -> String {
    let main = "src/bfcli/main.c";
    let text = std::fs::read_to_string(repo.path().join(main)).unwrap();
    let old = text
        .replace("\"-b\", \"--bpffs-path\"", "\"-S\", \"--socket-path\"")
        .replace(
            "return mf_err(EINVAL, \"unknown option '%s'\", a);",
            "fprintf(stderr, \"bfcli: invalid option -- '%s'\\nTry `bfcli --help' or `bfcli --usage' for more information.\\n\", a);\n            exit(64);",
        );
    assert_ne!(old, text, "the fixture's option parsing changed: update this test");
    repo.write(main, &old);
    text
}

#[test]
fn trees_before_the_daemon_removal_are_one_line_not_failures() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let src = repo.path();
    let good = daemon_era_bfcli(&repo);
    let old1 = repo.commit("daemon era: bfcli talks to the daemon");
    let old2 = readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    repo.write("src/bfcli/main.c", &good);
    let new1 = repo.commit("bfcli: drop the daemon, add --bpffs-path");
    let new2 = readme_commit(&repo, "How to run its tests.", "docs: how to test");

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("history.json");
    let args =
        [CHEAP, ONE_CHANGE, &["--since", &old1, "--fail-on-benchmark-error", "--json-output", json.to_str().unwrap()]]
            .concat();
    let run = history(src, &args, cache.path());
    assert_eq!(run.code, 0, "unsupported trees are not failures:\n{}", show(&run));
    for c in [&old1, &old2] {
        assert_eq!(state_of(&run, short(c)), "unsupported tree", "{}", show(&run));
    }
    for c in [&new1, &new2] {
        assert_eq!(state_of(&run, short(c)), "measured", "{}", show(&run));
    }
    let notes: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("unsupported tree:")).collect();
    assert_eq!(notes.len(), 1, "one line:\n{}", show(&run));
    let note = notes[0];
    for part in [
        format!("2 commits up to {} predate bpfilter's daemon removal", short(&old2)),
        format!("the range is measurable from {} on", short(&new1)),
        "f1d9e985".to_owned(),
    ] {
        assert!(note.contains(&part), "{part:?} in {note}");
    }
    assert!(!run.stdout.contains("Try `bfcli"), "bfcli's usage error is not pasted anywhere:\n{}", show(&run));
    let v = read_json(&json);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points[0]["status"]["state"], "unsupported_tree", "{v:#}");
    assert!(points[0]["status"]["reason"].as_str().unwrap().contains("f1d9e985"));
    assert!(points[0]["results"].is_null() && points[1]["results"].is_null());
    assert_eq!(points[3]["status"]["state"], "measured");
    assert_eq!(v["suite"].as_array().unwrap().len(), 1, "one pair: new1 → new2: {v:#}");

    // Only old trees: one error line.
    let run = history(src, &["--since", &old1, "--until", &old2], cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    let line = error_line(&run);
    assert!(line.contains("no commit of the range can be measured") && line.contains("f1d9e985"), "{line}");

    // `bench` on such a bfcli: one error line, not one per case.
    git(src, &["checkout", "-q", &old2]);
    let bfcli = repo.build_bfcli();
    git(src, &["checkout", "-q", "-"]);
    let bench = ["bench", "--filter", "prologue", "--bfcli", bfcli.to_str().unwrap()];
    let run = bfperf_tests::xtask(&bench, cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    let line = error_line(&run);
    assert!(line.contains("predates bpfilter's daemon removal") && line.contains("f1d9e985"), "{line}");
}

#[test]
fn bad_ranges_are_one_clear_error() {
    let repo = FixtureRepo::new();
    readme_commit(&repo, "How to build the fixture.", "docs: how to build");
    let cache = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());

    let run = history(src, &["--since", "no-such-ref", "--until", "HEAD"], cache);
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("unknown ref \"no-such-ref\""), "{}", show(&run));

    let run = history(src, &["--since", "HEAD~1", "--until", "HEAD~1"], cache);
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("the root commit: it has no parent"), "{}", show(&run));

    let run = history(src, &["--since", "HEAD", "--fdr", "2"], cache);
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("not a rate between 0 and 1"), "{}", show(&run));

    let run = history(src, &["--since", "HEAD", "--until", "HEAD~1"], cache);
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("is not an ancestor"), "{}", show(&run));

    // Nothing was built for a range that was refused.
    assert!(!cache.join("builds").exists(), "a refused range built something");
    assert_eq!(repo.status(), "");
}

#[test]
fn a_corrupt_cache_entry_is_measured_again_with_a_warning_and_retry_failed_reruns_failed_runs() {
    require_bpf!();
    let (repo, [c0, c1, c2]) = three_docs_commits();
    let cache = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    let args = [CHEAP, ONE_CHANGE, &["--since", &c0, "--until", &c2]].concat();

    let run = history(src, &args, cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    let entries = assert_results_parse(cache);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let corrupt = entries
        .iter()
        .find(|p| file_name(p).starts_with(&format!("{}-{c2}-", short(&c1))))
        .unwrap_or_else(|| panic!("no entry for c2 vs c1: {entries:?}"))
        .clone();
    std::fs::write(&corrupt, "{\"schema\": \"bfperf.history-pa").unwrap();

    let run = history(src, &args, cache);
    assert_eq!(run.code, 0, "a corrupt entry is not fatal:\n{}", show(&run));
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains("ignoring cache entry"))
        .unwrap_or_else(|| panic!("no warning:\n{}", show(&run)));
    assert!(warning.contains(&corrupt.display().to_string()), "the warning names the file: {warning}");
    assert!(!run.stderr.lines().any(|l| l.starts_with("error")), "{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "measured", "the pair is measured again:\n{}", show(&run));
    assert_eq!(state_of(&run, short(&c1)), "cached", "the other pair is not:\n{}", show(&run));
    // Rewritten, whole.
    let entries = assert_results_parse(cache);
    assert_eq!(entries.len(), 2);

    // A pair where a case failed to run is reported from the cache as it is,
    // and measured again by --retry failed.
    let first = entries.iter().find(|p| file_name(p).starts_with(&format!("{}-{c1}-", short(&c0)))).unwrap();
    let mut entry: Value = serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
    entry["comparison"]["cases"][0]["ref_status"] = serde_json::json!({"state": "failed", "reason": "injected"});
    std::fs::write(first, serde_json::to_vec(&entry).unwrap()).unwrap();
    let run = history(src, &args, cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(state_of(&run, short(&c1)), "cached", "{}", show(&run));
    let run = history(src, &[&args[..], &["--retry", "failed"]].concat(), cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(state_of(&run, short(&c1)), "measured", "the failed run is measured again:\n{}", show(&run));
    assert_eq!(state_of(&run, short(&c2)), "cached", "{}", show(&run));
    let entry: Value = serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
    assert_eq!(entry["comparison"]["cases"][0]["ref_status"]["state"], "ok", "{entry:#}");
}

/// Kills the child (SIGKILL, by its pid) if the test fails before it exits.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn ctrl_c_while_measuring_exits_130_unmounts_and_keeps_finished_pairs() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    require_bpf!();
    let repo = FixtureRepo::new();
    let c0 = repo.head();
    let c1 = readme_commit(&repo, "one", "docs: one");
    for line in ["two", "three", "four"] {
        readme_commit(&repo, line, &format!("docs: {line}"));
    }
    let cache = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    // Not --quick and a 60 s budget: each of the four pairs takes seconds
    // (up to 80 rounds of 10 ms samples), so a pair is still running when
    // the signal arrives after the first one was stored.
    let filter = ["--filter", "xdp__prologue,tc__prologue", "--time-budget", "60"];
    let args = [&filter[..], &["--since", &c0, "--until", "HEAD"]].concat();
    let mut child = Reap(xtask_command(src, &args, cache).spawn().expect("xtask runs"));
    let pid = child.0.id();
    let output = |child: &mut Reap| {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        child.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        format!("stdout:\n{stdout}\nstderr:\n{stderr}")
    };

    // Wait until the first pair is stored and the next one is being measured
    // (after the host lock, which other tests may hold for a while, and the builds).
    let deadline = Instant::now() + Duration::from_secs(480);
    while result_files(cache).is_empty() || mounts_of(pid).is_empty() {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("xtask ended before it was interrupted ({status}):\n{}", output(&mut child));
        }
        assert!(Instant::now() < deadline, "xtask never got to its second pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mounts = mounts_of(pid);
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        // A hang guard, not a speed check.
        assert!(sent.elapsed() < Duration::from_secs(600), "hang guard: xtask still running 10 min after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = output(&mut child);
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{text}");
    assert_eq!(mounts_of(pid), Vec::<PathBuf>::new(), "bpffs left mounted after Ctrl-C");
    for m in mounts {
        assert!(!m.exists(), "mount directory {} left behind", m.display());
    }

    // No half-written entry; the pairs finished before the signal are kept
    // (at most three of four: the run was interrupted)...
    let kept = assert_results_parse(cache);
    assert!((1..4).contains(&kept.len()), "{kept:?}");
    assert!(kept.iter().any(|p| file_name(p).starts_with(&format!("{}-{c1}-", short(&c0)))), "{kept:?}");
    // ...and reused: the first pair again is all cache, no build, no measuring.
    let logs = build_logs(cache);
    let run = history(src, &[&filter[..], &["--since", &c0, "--until", &c1]].concat(), cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(state_of(&run, short(&c1)), "cached", "{}", show(&run));
    assert_eq!(build_logs(cache), logs);
    assert_eq!(repo.status(), "");
}

/// `--retry all` measures every cached pair again, `--retry REF` only the pairs REF is in;
/// the other pairs come from the cache, as the printed states say. The first run also uses
/// `--cpu-pin 0 --no-preempt`: the fixture's record shows they reach the measuring thread only.
#[test]
fn retry_all_and_retry_ref_measure_again_exactly_what_they_name() {
    require_bpf!();
    let (repo, [c0, c1, c2]) = three_docs_commits();
    let cache = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    let args = [CHEAP, ONE_CHANGE, &["--since", &c0, "--until", &c2]].concat();
    let states = |run: &Run| (state_of(run, short(&c1)).to_owned(), state_of(run, short(&c2)).to_owned());
    let pair = |s1: &str, s2: &str| (s1.to_owned(), s2.to_owned());

    let record = cache.join("sched.txt");
    let isolated = [&args[..], &["--cpu-pin", "0", "--no-preempt"]].concat();
    let mut cmd = xtask_command(src, &isolated, cache);
    cmd.env("MINIFILTER_RECORD_SCHED", &record);
    let run = bfperf_tests::finish_leaving_no_mount(cmd.spawn().unwrap());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(states(&run), pair("measured", "measured"), "{}", show(&run));
    assert!(run.stderr.contains("host: while measuring: SCHED_FIFO priority 1"), "{}", run.stderr);
    bfperf_tests::assert_measuring_thread_isolated(&record, true);

    let entries = |cache: &Path| {
        assert_results_parse(cache)
            .iter()
            .map(|p| (file_name(p), std::fs::read(p).unwrap()))
            .collect::<BTreeMap<String, Vec<u8>>>()
    };
    let first = entries(cache);
    assert_eq!(first.len(), 2, "{:?}", first.keys());
    let run = history(src, &args, cache);
    assert_eq!(states(&run), pair("cached", "cached"), "{}", show(&run));

    let run = history(src, &[&args[..], &["--retry", "all"]].concat(), cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(states(&run), pair("measured", "measured"), "{}", show(&run));
    let all = entries(cache);
    assert_eq!(all.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>(), "the same pairs");
    for (name, bytes) in &all {
        assert_ne!(bytes, &first[name], "{name} was not measured again by --retry all");
    }

    // `--retry REF` rebuilds REF and measures again the pairs REF is in: for the newest commit,
    // c1 → c2 only (the pair ending at c1 and the other builds come from the cache).
    let logs = build_logs(cache);
    let run = history(src, &[&args[..], &["--retry", "HEAD"]].concat(), cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(states(&run), pair("cached", "measured"), "{}", show(&run));
    let newest = entries(cache);
    let c1_c2 = format!("{}-{c2}-", short(&c1));
    for (name, bytes) in &newest {
        assert_eq!(bytes == &all[name], !name.starts_with(&c1_c2), "{name}: measured again iff it is c1 → c2");
    }
    let after = build_logs(cache);
    for (commit, before) in &logs {
        assert_eq!(after[commit].0 > before.0, commit == &c2, "{commit}: rebuilt iff it is the retried commit");
    }
    // For the oldest, c0 → c1 only, named by its id.
    let run = history(src, &[&args[..], &["--retry", &c0]].concat(), cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(states(&run), pair("measured", "cached"), "{}", show(&run));
    let c0_c1 = format!("{}-{c1}-", short(&c0));
    for (name, bytes) in &entries(cache) {
        assert_eq!(bytes == &newest[name], !name.starts_with(&c0_c1), "{name}: measured again iff it is c0 → c1");
    }
    assert_eq!(repo.status(), "", "the user's tree is untouched");
}
