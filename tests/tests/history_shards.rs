//! `bench-history --shard I/N` and `--merge DIR…` end to end, against the
//! minifilter test double and the real kernel: two shards with their own
//! cache directories measure every pair exactly once between them, a pair
//! stays with its shard when the range grows, the merge finds the one commit
//! that changed the programs and reads (never measures) a second time, a
//! missing shard's pairs are reported missing, mixed versions and planted
//! files are refused, and bad `--shard` values are one `error:` line.
//! Repeated `--host` (two real sshds) runs both shards and merges them.

use bfperf_tests::sshd::{SshdOptions, TestSshd};
use bfperf_tests::{require_bpf, show, FixtureRepo, Run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Two cases, `--quick`, a short budget, and the 10 % threshold under which
/// only the padded commit (above +100 %) can be a change (see history.rs).
const CHEAP: &[&str] =
    &["--filter", "xdp__prologue,tc__prologue", "--quick", "--time-budget", "5", "--threshold", "10"];

fn history(sources: &Path, args: &[&str], cache: &Path) -> Run {
    bfperf_tests::run_leaving_no_mount("bench-history", sources, args, cache)
}

/// `bench-history ARGS --cache-dir CACHE` without sources: a merge needs none.
fn merge(args: &[&str], cache: &Path) -> Run {
    let mut all = vec!["bench-history"];
    all.extend_from_slice(args);
    bfperf_tests::xtask(&all, cache)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON")
}

/// The failure's one `error: ` line (exit 1).
fn error_line(run: &Run) -> String {
    assert_eq!(run.code, 1, "{}", show(run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", show(run));
    errors[0].to_owned()
}

/// The shard record `I of N` in `cache`.
fn record(cache: &Path, shard: &str) -> Value {
    read_json(&cache.join("history-shards").join(format!("{}.json", shard.replace('/', "of"))))
}

/// `(base, reference)` commit ids of the pairs a record says it measured.
fn pairs_of(record: &Value) -> BTreeSet<(String, String)> {
    let commit = |i: &Value| record["points"][i.as_u64().unwrap() as usize]["commit"].as_str().unwrap().to_owned();
    record["pairs"].as_array().unwrap().iter().map(|p| (commit(&p["base"]), commit(&p["reference"]))).collect()
}

/// `(case, commit label, change)` of every significant change.
fn changes(v: &Value) -> Vec<(String, String, String)> {
    let s = |x: &Value| x.as_str().unwrap().to_owned();
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(&c["case"]), s(&c["commit"]), s(&c["change"]["change"])))
        .collect()
}

/// Every file under `dir` with its modification time and length.
fn files(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime, u64)> {
    let mut out = vec![];
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let meta = e.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), meta.modified().unwrap(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// The fixture: c0, two docs-only commits, the padded prologue (c3), a docs-only commit.
fn five_commits() -> (FixtureRepo, Vec<String>) {
    let repo = FixtureRepo::new();
    let mut commits = vec![repo.head()];
    repo.write("README.md", "How to build.\n");
    commits.push(repo.commit("docs: how to build"));
    repo.write("README.md", "How to build.\nHow to test.\n");
    commits.push(repo.commit("docs: how to test"));
    repo.set_padding(300);
    commits.push(repo.commit("cgen: 300 redundant instructions per prologue"));
    repo.write("README.md", "How to build.\nHow to test.\nThe end.\n");
    commits.push(repo.commit("docs: the end"));
    (repo, commits)
}

#[test]
fn two_shards_measure_every_pair_once_and_the_merge_finds_the_change() {
    require_bpf!();
    let (repo, c) = five_commits();
    let (one, two, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let range = ["--since", c[0].as_str(), "--until", "HEAD"];
    let shard = |s: &str, cache: &Path| history(repo.path(), &[CHEAP, &range, &["--shard", s]].concat(), cache);

    // Each shard measures its own pairs and says which, in one line.
    let first = shard("1/2", one.path());
    assert_eq!(first.code, 0, "{}", show(&first));
    let second = shard("2/2", two.path());
    assert_eq!(second.code, 0, "{}", show(&second));
    let (r1, r2) = (record(one.path(), "1/2"), record(two.path(), "2/2"));
    let (p1, p2) = (pairs_of(&r1), pairs_of(&r2));
    let all: BTreeSet<(String, String)> = c.windows(2).map(|w| (w[0].clone(), w[1].clone())).collect();
    assert!(p1.is_disjoint(&p2), "a pair measured by both shards: {p1:?} {p2:?}");
    assert_eq!(p1.union(&p2).cloned().collect::<BTreeSet<_>>(), all, "every pair measured once");
    for (run, pairs, s) in [(&first, &p1, "1/2"), (&second, &p2, "2/2")] {
        let line = format!("shard {s}: measures {} of the range's 4 pairs", pairs.len());
        let said: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with(&line)).collect();
        assert_eq!(said.len(), 1, "{line}:\n{}", show(run));
        assert!(
            said[0].ends_with(&format!("; skips {}, measured by the other shards", 4 - pairs.len())),
            "{}",
            said[0]
        );
        // The owner is a hash of the two commits, not a position in the range.
        for (base, reference) in pairs {
            assert_eq!(xtask::history::shard::owner(base, reference, 2), s[..1].parse::<usize>().unwrap());
        }
        let measured = run.stderr.lines().filter(|l| l.contains(": measured")).count();
        assert_eq!(measured, pairs.len(), "one line per measured pair:\n{}", show(run));
    }
    // A shard's own results stay in its cache, like any run's.
    for (cache, r) in [(one.path(), &r1), (two.path(), &r2)] {
        for p in r["pairs"].as_array().unwrap() {
            assert!(cache.join(p["entry"].as_str().unwrap()).is_file(), "{p}");
        }
    }

    // The merge: every pair read from its shard, the padded commit found, nothing else.
    let json = out.path().join("merged.json");
    let md = out.path().join("merged.md");
    let args = |json: &Path| -> Vec<String> {
        ["--merge", one.path().to_str().unwrap(), two.path().to_str().unwrap(), "--fail-on", "regression"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--json-output".into(), json.display().to_string(), "--markdown".into(), md.display().to_string()])
            .chain(["--html".into(), json.with_extension("html").display().to_string()])
            .collect()
    };
    let before = (files(one.path()), files(two.path()));
    let report_cache = tempfile::tempdir().unwrap();
    let a = args(&json);
    let merged = merge(&a.iter().map(String::as_str).collect::<Vec<_>>(), report_cache.path());
    assert_eq!(merged.code, 2, "--fail-on regression with the padded commit:\n{}", show(&merged));
    assert!(merged.stderr.contains("nothing measured, nothing built"), "{}", show(&merged));
    assert!(!merged.stderr.contains("measuring"), "{}", show(&merged));
    let v = read_json(&json);
    let label = &c[3][..12];
    let want: Vec<(String, String, String)> = ["xdp__prologue", "tc__prologue"]
        .iter()
        .map(|case| (case.to_string(), label.to_owned(), "slower".to_owned()))
        .collect();
    assert_eq!(changes(&v), want, "{v:#}");
    let suite: Vec<&str> = v["suite"].as_array().unwrap().iter().map(|s| s["change"].as_str().unwrap()).collect();
    assert_eq!(suite, ["no_change", "no_change", "slower", "no_change"], "{v:#}");
    let host = String::from_utf8(std::process::Command::new("hostname").output().unwrap().stdout).unwrap();
    for (i, p) in v["points"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["commit"], c[i].as_str());
        assert_eq!(p["status"]["state"], "measured", "point {i}: {p}");
        if i > 0 {
            assert_eq!(p["pair"]["measured_on"], host.trim(), "which host measured the pair: {p}");
        }
    }
    assert!(std::fs::read_to_string(&md).unwrap().contains("**slower**"));
    let page = std::fs::read_to_string(json.with_extension("html")).unwrap();
    let badge = format!("title=\"measured on this host\">{}</span>", host.trim());
    assert_eq!(page.matches(&badge).count(), 4, "the report names the host of each pair");
    assert_eq!((files(one.path()), files(two.path())), before, "the merge wrote into a shard's cache");
    assert!(!report_cache.path().join("builds").exists() && !report_cache.path().join("results").exists());

    // A second merge is served from the same caches: the same history, byte for byte, still
    // without sources (it could not build or measure anything: it has no tree).
    let json2 = out.path().join("again.json");
    let a = args(&json2);
    let again = merge(&a.iter().map(String::as_str).collect::<Vec<_>>(), report_cache.path());
    assert_eq!(again.code, 2, "{}", show(&again));
    assert_eq!(std::fs::read(&json).unwrap(), std::fs::read(&json2).unwrap());

    // One shard only: the other's points are missing, not failures; exit 3 only when asked.
    let half = merge(&["--merge", one.path().to_str().unwrap()], report_cache.path());
    assert_eq!(half.code, 0, "{}", show(&half));
    let missing = half.stdout.lines().filter(|l| l.split_whitespace().nth(1) == Some("missing")).count();
    // Shard 2's points, and the first commit when shard 2 owns its only pair.
    let first_pair = (c[0].clone(), c[1].clone());
    assert_eq!(missing, p2.len() + usize::from(p2.contains(&first_pair)), "shard 2's points:\n{}", show(&half));
    let half = merge(&["--merge", one.path().to_str().unwrap(), "--fail-on-benchmark-error"], report_cache.path());
    assert_eq!(half.code, 3, "{}", show(&half));

    // The range grows by one commit: every old pair stays with its shard and comes from its cache.
    repo.write("README.md", "More.\n");
    let c5 = repo.commit("docs: more");
    let grown = [shard("1/2", one.path()), shard("2/2", two.path())];
    for (run, cache, s, old) in [(&grown[0], one.path(), "1/2", &p1), (&grown[1], two.path(), "2/2", &p2)] {
        assert_eq!(run.code, 0, "{}", show(run));
        let now = pairs_of(&record(cache, s));
        assert_eq!(now.intersection(&all).cloned().collect::<BTreeSet<_>>(), *old, "shard {s} kept its pairs");
        let cached = run.stderr.lines().filter(|l| l.ends_with(": measured (cached)")).count();
        assert_eq!(cached, old.len(), "shard {s}'s old pairs come from its cache:\n{}", show(run));
    }
    let new_pair = format!("{} → {}: measured", &c[4][..12], &c5[..12]);
    let owners = grown.iter().filter(|r| r.stderr.lines().any(|l| l.ends_with(&new_pair))).count();
    assert_eq!(owners, 1, "the new pair is measured by one shard");
}

#[test]
fn merge_refuses_mixed_versions_and_planted_files() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let c0 = repo.head();
    repo.write("README.md", "docs\n");
    repo.commit("docs");
    let caches: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (k, cache) in caches.iter().enumerate() {
        let s = format!("{}/2", k + 1);
        let run = history(repo.path(), &[CHEAP, &["--since", &c0, "--shard", &s]].concat(), cache.path());
        assert_eq!(run.code, 0, "{}", show(&run));
    }
    let (one, two) = (caches[0].path(), caches[1].path());
    let out = tempfile::tempdir().unwrap();
    let ok = merge(&["--merge", one.to_str().unwrap(), two.to_str().unwrap()], out.path());
    assert_eq!(ok.code, 0, "{}", show(&ok));

    // Another harness or suite version in one directory: one error naming both and the directory.
    let path = two.join("history-shards/2of2.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut r: Value = serde_json::from_str(&original).unwrap();
    let ours = r["harness_version"].as_str().unwrap().to_owned();
    r["harness_version"] = "0.0.0-other".into();
    std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
    let line = error_line(&merge(&["--merge", one.to_str().unwrap(), two.to_str().unwrap()], out.path()));
    for needle in ["0.0.0-other", ours.as_str(), two.to_str().unwrap(), "harness"] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    let mut r: Value = serde_json::from_str(&original).unwrap();
    r["suite"] = "0123456789abcdef".into();
    std::fs::write(&path, serde_json::to_vec(&r).unwrap()).unwrap();
    let line = error_line(&merge(&["--merge", one.to_str().unwrap(), two.to_str().unwrap()], out.path()));
    for needle in ["suite 0123456789abcdef", two.to_str().unwrap()] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    std::fs::write(&path, &original).unwrap();

    // A directory that is not a shard's cache.
    let empty = tempfile::tempdir().unwrap();
    let line = error_line(&merge(&["--merge", empty.path().to_str().unwrap()], out.path()));
    assert!(line.contains("holds no shard record") && line.contains("--shard"), "{line}");

    // Planted files: an entry swapped for a link to another file, a record pointing outside
    // its directory. Neither is read; the pair is reported missing with a warning.
    let secret = out.path().join("secret.json");
    std::fs::write(&secret, "{}").unwrap();
    let owner_cache = [one, two].into_iter().find(|d| !pairs_of(&record_any(d)).is_empty()).unwrap();
    let rec = record_any(owner_cache);
    let entry = owner_cache.join(rec["pairs"][0]["entry"].as_str().unwrap());
    let saved = std::fs::read(&entry).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&secret, &entry).unwrap();
    let run = merge(&["--merge", one.to_str().unwrap(), two.to_str().unwrap()], out.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stderr.contains("symbolic link"), "{}", show(&run));
    assert!(run.stdout.lines().any(|l| l.split_whitespace().nth(1) == Some("missing")), "{}", show(&run));
    std::fs::remove_file(&entry).unwrap();
    std::fs::write(&entry, saved).unwrap();
    let rec_path = std::fs::read_dir(owner_cache.join("history-shards")).unwrap().next().unwrap().unwrap().path();
    let mut planted = rec.clone();
    planted["pairs"][0]["entry"] = "results/../../../etc/passwd".into();
    std::fs::write(&rec_path, serde_json::to_vec(&planted).unwrap()).unwrap();
    let run = merge(&["--merge", one.to_str().unwrap(), two.to_str().unwrap()], out.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stderr.contains("is not a path under results/"), "{}", show(&run));
}

/// The one record in a shard's cache.
fn record_any(cache: &Path) -> Value {
    let entry = std::fs::read_dir(cache.join("history-shards")).unwrap().next().unwrap().unwrap();
    read_json(&entry.path())
}

#[test]
fn bad_shard_values_are_one_error_line() {
    let cache = tempfile::tempdir().unwrap();
    for bad in ["0/2", "3/2", "1/0", "2", "x/y"] {
        let run = bfperf_tests::xtask(&["bench-history", "--since", "HEAD", "--shard", bad], cache.path());
        let line = error_line(&run);
        assert!(line.contains(bad) && line.contains("1 ≤ I ≤ N"), "{line}");
    }
    // --shard and --merge exclude each other; --merge needs no range.
    let run = bfperf_tests::xtask(&["bench-history", "--merge", "/nonexistent", "--shard", "1/2"], cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
}

#[test]
fn repeated_host_spreads_the_shards_over_the_hosts_and_merges_them() {
    require_bpf!();
    let Some(a) = TestSshd::start(SshdOptions::default()) else { return };
    let Some(b) = TestSshd::start(SshdOptions::default()) else { return };
    // One key and one known_hosts file for both hosts, as a user's ~/.ssh would have.
    let keys = a.key().parent().unwrap().join("id_ok.pub");
    let authorized = b.key().parent().unwrap().join("authorized_keys");
    let mut both = std::fs::read_to_string(&authorized).unwrap();
    both.push_str(&std::fs::read_to_string(keys).unwrap());
    std::fs::write(&authorized, both).unwrap();
    let known = tempfile::NamedTempFile::new().unwrap();
    let hosts = [a.known_hosts(), b.known_hosts()].map(|p| std::fs::read_to_string(p).unwrap()).concat();
    std::fs::write(known.path(), hosts).unwrap();
    let remote = tempfile::tempdir().unwrap();

    let repo = FixtureRepo::new();
    let c0 = repo.head();
    repo.set_padding(300);
    let c1 = repo.commit("cgen: 300 redundant instructions per prologue");
    repo.write("README.md", "docs\n");
    let c2 = repo.commit("docs");
    let cache = tempfile::tempdir().unwrap();
    let json = cache.path().join("merged.json");
    let known_opt = format!("UserKnownHostsFile={}", known.path().display());
    let hosts = [a.host(), b.host()];
    let key = a.key();
    let args = [
        CHEAP,
        &["--since", &c0, "--host", &hosts[0], "--host", &hosts[1], "--ssh-key", key.to_str().unwrap()],
        &["--ssh-option", &known_opt, "--remote-dir", remote.path().to_str().unwrap()],
        &["--json-output", json.to_str().unwrap()],
    ]
    .concat();
    let run = history(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    // Host k measured shard k/2, into its own cache; the merge says which host measured which pair.
    let v = read_json(&json);
    for (i, pair) in [(&c0, &c1), (&c1, &c2)].into_iter().enumerate() {
        let k = xtask::history::shard::owner(pair.0, pair.1, 2);
        assert_eq!(v["points"][i + 1]["pair"]["measured_on"], hosts[k - 1].as_str(), "{v:#}");
        let host_cache = cache.path().join("hosts").join(hosts[k - 1].replace(':', "_"));
        assert!(pairs_of(&record(&host_cache, &format!("{k}/2"))).contains(&(pair.0.clone(), pair.1.clone())));
    }
    assert_eq!(changes(&v).iter().filter(|c| c.1 == c1[..12]).count(), 2, "{v:#}");
    assert!(changes(&v).iter().all(|c| c.1 == c1[..12] && c.2 == "slower"), "{v:#}");
    for h in &hosts {
        assert!(run.stderr.contains(&format!("measured on {h}")), "{}", show(&run));
    }
}
