//! `cargo xtask bench-compare` end to end, against the minifilter test double
//! and the real kernel: verdicts on commits that really are slower or faster,
//! the A/A check, every exit-code flag, `wip`, worktrees, cache reuse, each
//! bad input (one `error: ` line, nothing left behind) and Ctrl-C.
//!
//! Every run is kept cheap: two prologue cases, 8–16 rounds, a 5 s budget.
//! Runs take the host-wide benchmark lock and wait for each other, so the
//! tests of this file effectively run one after the other.

use bfperf_tests::COMPARE_CHEAP as CHEAP;
use bfperf_tests::{git, mounts_of, snapshot};
use bfperf_tests::{require_bpf, show, FixtureRepo, Run};
use serde_json::Value;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Where `no change` is the expected verdict the threshold is raised to 10 %.
/// At the default 1 % a case has, by design, up to a 5 % chance of a false
/// verdict (that is what a 95 % interval means), and CI must not flake. 3 %
/// was not enough on this 2-core VM while other work ran on it: in 40
/// comparisons of identical programs (`X X` and a README-only commit, these
/// very settings) 8 intervals excluded zero and |Δ| reached 2.8 %, and a
/// full run of this file failed twice at 3 %. The real effects tested here
/// are +400 % and −80 %, far above 10 %; the exact metrics (instruction
/// counts, JITed bytes) are checked to be identical besides.
const NO_CHANGE: &[&str] = &["--threshold", "10"];

fn xtask_command(sources: &Path, args: &[&str], cache: &Path) -> Command {
    bfperf_tests::subcommand("bench-compare", sources, args, cache)
}

/// `xtask bench-compare ARGS --sources SOURCES --cache-dir CACHE`. Whatever
/// the outcome, the process must have left no bpffs mount behind.
fn compare(sources: &Path, args: &[&str], cache: &Path) -> Run {
    bfperf_tests::run_leaving_no_mount("bench-compare", sources, args, cache)
}

/// [`CHEAP`] followed by `extra`.
fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [CHEAP, extra].concat()
}

/// The failure's one `error: ` line (the first; a build failure's log tail follows it).
fn error_line(run: &Run) -> &str {
    assert_ne!(run.code, 0, "expected a failure:\n{}", show(run));
    run.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{}", show(run)))
}

/// The comparison JSON written by `--json-output`, schema checked.
fn read_json(path: &Path) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    assert_eq!(v["schema"], "bfperf.compare.v1");
    v
}

/// `(case, change)` of every case.
fn changes(v: &Value) -> Vec<(String, String)> {
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["change"].as_str().unwrap_or("none").to_owned()))
        .collect()
}

/// BASE and REF programs are the same: identical exact metrics in every
/// case, and the engine found their xlated code identical.
fn assert_same_programs(v: &Value) {
    for case in v["cases"].as_array().unwrap() {
        assert!(case["base_metrics"].is_object(), "{case}");
        assert_eq!(case["base_metrics"], case["ref_metrics"], "{}", case["name"]);
        assert_eq!(case["same_program"], true, "{}", case["name"]);
    }
}

fn assert_all(v: &Value, want: &str) {
    let got = changes(v);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(_, c)| c == want), "expected every case {want}: {got:?}");
}

/// The paths of `git worktree list`, canonical.
fn worktrees(repo: &Path) -> Vec<PathBuf> {
    git(repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(|p| Path::new(p).canonicalize().unwrap_or_else(|_| p.into()))
        .collect()
}

/// The worktrees of `repo` except `own` must be exactly two slots, both under `cache`.
fn assert_slots_only_under_cache(repo: &Path, own: &[&Path], cache: &Path) {
    let own: Vec<PathBuf> = own.iter().map(|p| p.canonicalize().unwrap()).collect();
    let cache = cache.canonicalize().unwrap();
    let all = worktrees(repo);
    let slots: Vec<&PathBuf> = all.iter().filter(|p| !own.contains(p)).collect();
    assert_eq!(slots.len(), 2, "one worktree per side: {all:?}");
    assert!(slots.iter().all(|p| p.starts_with(&cache)), "slots outside the cache {}: {all:?}", cache.display());
    let branches = git(repo, &["branch", "--list", "--all"]);
    assert!(!branches.contains("bfperf"), "a bfperf branch was left:\n{branches}");
}

/// How many times cmake was configured, over every build log of the cache.
fn cmake_runs(cache: &Path) -> usize {
    let mut logs = 0;
    let mut runs = 0;
    for repo in std::fs::read_dir(cache.join("builds")).unwrap() {
        for slot in std::fs::read_dir(repo.unwrap().path()).unwrap() {
            let log = slot.unwrap().path().join("bfperf-build.log");
            if let Ok(text) = std::fs::read_to_string(&log) {
                logs += 1;
                runs += text.lines().filter(|l| l.starts_with("$ cmake")).count();
            }
        }
    }
    assert_eq!(logs, 2, "one build log per slot under {}", cache.join("builds").display());
    runs
}

/// A fixture with the history the verdict tests need.
struct History {
    repo: FixtureRepo,
    /// The initial import: 16 padding instructions per prologue.
    plain: String,
    /// 300 padding instructions: really slower.
    slow: String,
    /// Back to 16: really faster than `slow`.
    fast: String,
    /// A README change only: the same programs as `fast`.
    docs: String,
}

fn history() -> History {
    let repo = FixtureRepo::new();
    let plain = repo.head();
    repo.set_padding(300);
    let slow = repo.commit("cgen: 300 redundant instructions per prologue");
    repo.set_padding(16);
    let fast = repo.commit("cgen: back to 16 redundant instructions");
    let readme = std::fs::read_to_string(repo.path().join("README.md")).unwrap_or_default();
    repo.write("README.md", &format!("{readme}\nA line of documentation.\n"));
    let docs = repo.commit("docs: one more line");
    History { repo, plain, slow, fast, docs }
}

#[test]
fn verdicts_and_exit_codes_follow_real_changes() {
    require_bpf!();
    let History { repo, plain, slow, fast, docs } = history();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());
    let json = out.path().join("cmp.json");
    let md = out.path().join("pr-comment.md");

    // Real work added to every program: slower, the interval excludes zero.
    let (j, m) = (json.to_str().unwrap(), md.to_str().unwrap());
    let run =
        compare(src, &with(&[&plain, &slow, "--fail-on", "regression", "--json-output", j, "--markdown", m]), cache);
    assert_eq!(run.code, 2, "--fail-on regression on a slower commit:\n{}", show(&run));
    let v = read_json(&json);
    assert_all(&v, "slower");
    for case in v["cases"].as_array().unwrap() {
        assert!(case["estimate"]["lo"].as_f64().unwrap() > 1.0, "interval excludes 1: {}", case["estimate"]);
        assert!(case["ref_metrics"]["xlated_insns"].as_u64() > case["base_metrics"]["xlated_insns"].as_u64());
        assert_eq!(case["same_program"], false, "{}", case["name"]);
    }
    assert_eq!(v["base"]["source"]["commit"], plain.as_str());
    assert_eq!(v["reference"]["source"]["commit"], slow.as_str());
    assert_eq!(v["same_build"], false);
    assert!(run.stdout.contains("slower"), "{}", show(&run));
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("| case |") && markdown.contains("|---|"), "a table:\n{markdown}");
    for case in ["xdp__prologue", "tc__prologue"] {
        assert!(markdown.contains(&format!("`{case}`")), "{case} missing:\n{markdown}");
    }
    assert!(markdown.contains("slower"), "{markdown}");

    // The same comparison again: both slots are reused, cmake is not run again.
    let configured = cmake_runs(cache);
    assert_eq!(configured, 2, "first run configures each slot once");
    let run = compare(src, &with(&[&plain, &slow, "--fail-on", "improvement"]), cache);
    assert_eq!(run.code, 0, "--fail-on improvement on a slower commit:\n{}", show(&run));
    assert_eq!(cmake_runs(cache), configured, "cmake ran again on an identical comparison");

    // The reverse change: faster.
    let run = compare(src, &with(&[&slow, &fast, "--fail-on", "improvement", "--json-output", j]), cache);
    assert_eq!(run.code, 2, "--fail-on improvement on a faster commit:\n{}", show(&run));
    let v = read_json(&json);
    assert_all(&v, "faster");
    for case in v["cases"].as_array().unwrap() {
        assert!(case["estimate"]["hi"].as_f64().unwrap() < 1.0, "interval excludes 1: {}", case["estimate"]);
    }
    let run = compare(src, &with(&[&slow, &fast, "--fail-on", "regression"]), cache);
    assert_eq!(run.code, 0, "--fail-on regression on a faster commit:\n{}", show(&run));
    let run = compare(src, &with(&[&slow, &fast, "--fail-on", "any"]), cache);
    assert_eq!(run.code, 2, "--fail-on any on a faster commit:\n{}", show(&run));

    // An unrelated commit: the same programs, not timed, and --fail-on any does not trigger.
    let args = [&untimed()[..], &[&fast, &docs, "--fail-on", "any", "--json-output", j]].concat();
    let run = compare(src, &args, cache);
    assert_eq!(run.code, 0, "--fail-on any on an unrelated commit:\n{}", show(&run));
    let v = read_json(&json);
    assert_all(&v, "none");
    assert_same_programs(&v);
    assert!(run.stdout.contains("same program"), "{}", show(&run));

    // Slots live under the cache only; no branch is left in the user's repository.
    assert_eq!(repo.status(), "", "the user's tree is untouched");
    assert_slots_only_under_cache(src, &[src], cache);
}

/// [`CHEAP`] without `--measure-identical`: identical programs are not timed.
fn untimed() -> Vec<&'static str> {
    CHEAP.iter().copied().filter(|a| *a != "--measure-identical").collect()
}

/// Identical programs are "same program" and get no round by default; with
/// `--measure-identical` they are timed (and judged `no change`).
#[test]
fn identical_programs_are_not_timed_unless_asked() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("same.json");
    let csv = out.path().join("same.csv");
    let args = [
        &untimed()[..],
        &["HEAD", "HEAD", "--fail-on", "any", "--json-output", json.to_str().unwrap(), "--csv", csv.to_str().unwrap()],
    ]
    .concat();
    let run = compare(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    for case in v["cases"].as_array().unwrap() {
        assert_eq!(case["same_program"], true, "{case}");
        assert_eq!(case["change"], Value::Null, "untimed: no verdict {case}");
        assert_eq!(case["base_samples"].as_array().unwrap().len(), 0, "zero rounds: {case}");
        assert_eq!(case["estimate"], Value::Null, "{case}");
    }
    assert_eq!(v["geomean"]["ratio"], 1.0, "identical cases count as exactly 1: {}", v["geomean"]);
    assert!(run.stdout.matches("same program").count() >= 2, "{}", show(&run));
    assert!(run.stdout.contains("0 slower, 0 faster, 0 no change, 2 same program"), "{}", show(&run));
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",same_program,")).count(), 2, "{csv}");

    // Asked to: timed, with a resolution stated on each no-change.
    let args = [CHEAP, NO_CHANGE, &["HEAD", "HEAD", "--json-output", json.to_str().unwrap()]].concat();
    let run = compare(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    assert_eq!(v["config"]["measure_identical"], true);
    for case in v["cases"].as_array().unwrap() {
        assert!(case["base_samples"].as_array().unwrap().len() >= 8, "timed: {case}");
        // Timed, but the same program: whatever the timing says, the row says so.
        assert_eq!(case["same_program"], true, "{case}");
        let resolution = case["resolution_pct"].as_f64().expect("a no change states its resolution");
        let (lo, hi) = (case["estimate"]["lo"].as_f64().unwrap(), case["estimate"]["hi"].as_f64().unwrap());
        assert!((resolution - (1.0 - lo).max(hi - 1.0) * 100.0).abs() < 1e-9, "{case}");
    }
    assert!(run.stdout.contains("same program"), "{}", show(&run));
}

#[test]
fn same_revision_on_both_sides_is_an_a_a_run() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("aa.json");
    // The same commit, spelled two ways.
    let args =
        [CHEAP, NO_CHANGE, &["HEAD", "main", "--fail-on", "any", "--json-output", json.to_str().unwrap()]].concat();
    let run = compare(repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stderr.contains("A/A run"), "stderr says it is an A/A run:\n{}", show(&run));
    let v = read_json(&json);
    assert_eq!(v["same_build"], true);
    assert_all(&v, "no_change");
    assert_same_programs(&v);
    // One build only.
    let slots = std::fs::read_dir(cache.path().join("worktrees")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read_dir(slots).unwrap().count(), 1, "A/A builds one slot");
}

#[test]
fn fail_on_benchmark_error_exits_3_on_an_unsupported_case() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("cmp.json");
    // minifilter rejects `log`: single_rule__ip4_saddr_l is unsupported on both sides.
    let args = [
        "HEAD",
        "HEAD",
        "--filter",
        "xdp__prologue,single_rule__ip4_saddr_l",
        "--min-rounds",
        "8",
        "--max-rounds",
        "16",
        "--time-budget",
        "5",
        "--json-output",
        json.to_str().unwrap(),
    ];
    let run = compare(repo.path(), &args, cache.path());
    assert!(run.stderr.contains("A/A run"), "{}", show(&run));
    assert_eq!(run.code, 0, "without the flag an unsupported case is reported, not fatal:\n{}", show(&run));
    assert!(run.stdout.contains("unsupported"), "{}", show(&run));
    let v = read_json(&json);
    let case = v["cases"].as_array().unwrap().iter().find(|c| c["name"] == "single_rule__ip4_saddr_l").unwrap();
    assert_eq!(case["base_status"]["state"], "unsupported");
    assert_eq!(case["ref_status"]["state"], "unsupported");

    let run = compare(repo.path(), &[&args[..], &["--fail-on-benchmark-error"]].concat(), cache.path());
    assert_eq!(run.code, 3, "{}", show(&run));
}

#[test]
fn wip_measures_uncommitted_changes_without_touching_the_tree() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    repo.write("notes.txt", "an untracked file\n");
    let status = repo.status();
    assert!(status.contains("knobs.h") && status.contains("notes.txt"), "{status}");
    let files = snapshot(repo.path());
    let head = repo.head();

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("wip.json");
    let args = [CHEAP, &["HEAD", "wip", "--fail-on", "regression", "--json-output", json.to_str().unwrap()]].concat();
    let run = compare(repo.path(), &args, cache.path());
    assert_eq!(run.code, 2, "{}", show(&run));
    let v = read_json(&json);
    assert_all(&v, "slower");
    assert_eq!(v["reference"]["source"]["dirty"], true);
    assert_eq!(v["reference"]["source"]["commit"], head.as_str());
    assert!(v["reference"]["label"].as_str().unwrap().starts_with("wip"), "{}", v["reference"]);

    assert_eq!(repo.status(), status, "git status unchanged");
    assert_eq!(repo.head(), head);
    let after = snapshot(repo.path());
    assert_eq!(after.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>(), "no file added or removed");
    assert!(after == files, "a file of the user's tree changed");
}

#[test]
fn a_linked_worktree_works_as_sources() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    let slow = repo.commit("cgen: 300 redundant instructions per prologue");
    let elsewhere = tempfile::tempdir().unwrap();
    let linked = elsewhere.path().join("linked");
    git(repo.path(), &["worktree", "add", "-q", "-b", "feature", linked.to_str().unwrap()]);

    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("cmp.json");
    let args = [CHEAP, &["HEAD~1", "HEAD", "--json-output", json.to_str().unwrap()]].concat();
    let run = compare(&linked, &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v = read_json(&json);
    assert_all(&v, "slower");
    assert_eq!(v["reference"]["source"]["commit"], slow.as_str());

    assert_slots_only_under_cache(repo.path(), &[repo.path(), &linked], cache.path());
    assert_eq!(git(&linked, &["status", "--porcelain", "--ignored"]), "", "the linked tree is untouched");
}

#[test]
fn an_unknown_ref_is_one_clear_error() {
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let run = compare(repo.path(), &["HEAD", "no-such-ref"], cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("unknown ref \"no-such-ref\""), "{}", show(&run));
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{}", show(&run));
}

#[test]
fn sources_that_are_not_a_git_repository_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("CMakeLists.txt"), "").unwrap();
    std::fs::create_dir_all(plain.path().join("src/bfcli")).unwrap();
    let run = compare(plain.path(), &["HEAD~1", "HEAD"], cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(error_line(&run).contains("is not a git repository"), "{}", show(&run));
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{}", show(&run));
}

#[test]
fn a_build_failure_names_the_log_and_leaves_no_slot_behind() {
    let repo = FixtureRepo::new();
    repo.write("src/libbpfilter/cgen/prologue.c", "this is not C;\n");
    repo.commit("cgen: break the build");
    let cache = tempfile::tempdir().unwrap();
    // compare() also checks that no bpffs mount of the failed run remains.
    let run = compare(repo.path(), &[CHEAP, &["HEAD~1", "HEAD"]].concat(), cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    let line = error_line(&run);
    assert!(line.contains("cannot build") && line.contains("make bfcli failed"), "{line}");
    let log = line.split("full log: ").nth(1).and_then(|r| r.split(')').next()).unwrap_or_else(|| panic!("{line}"));
    assert!(std::fs::read_to_string(log).unwrap().contains("prologue.c"), "the log {log} names the broken file");
    assert!(run.stderr.contains("prologue.c"), "the tail names the broken file:\n{}", show(&run));

    // BASE built and keeps its slot; REF's slot is gone, worktree and git metadata.
    let slots: Vec<PathBuf> =
        worktrees(repo.path()).into_iter().filter(|p| p != &repo.path().canonicalize().unwrap()).collect();
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert!(slots[0].ends_with("base"), "{slots:?}");
    let git_dir = repo.path().join(".git/worktrees");
    let names: Vec<String> = std::fs::read_dir(&git_dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(
        !names.iter().any(|n| n.contains(xtask::revisions::REF_SLOT)),
        "REF's worktree metadata remains: {names:?}"
    );
    let ref_dirs: Vec<PathBuf> = std::fs::read_dir(cache.path().join("worktrees"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join(xtask::revisions::REF_SLOT))
        .filter(|p| p.exists())
        .collect();
    assert!(ref_dirs.is_empty(), "REF's half-built worktree remains: {ref_dirs:?}");
    assert!(!git(repo.path(), &["branch", "--list"]).contains("bfperf"));
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
fn ctrl_c_while_measuring_exits_130_and_unmounts() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    repo.commit("cgen: 300 redundant instructions per prologue");
    let cache = tempfile::tempdir().unwrap();
    // 2000 rounds of ~2 × 10 ms: about 40 s of measuring, far more than the 3 s we wait.
    let args = ["HEAD~1", "HEAD", "--filter", "xdp__prologue", "--min-rounds", "2000", "--time-budget", "60"];
    let mut child = Reap(xtask_command(repo.path(), &args, cache.path()).spawn().expect("xtask runs"));
    let pid = child.0.id();
    let output = |child: &mut Reap| {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        child.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        format!("stdout:\n{stdout}\nstderr:\n{stderr}")
    };

    // First it waits for the host lock, as long as other benchmarks hold it
    // (the lock file then names their pid); once it holds the lock it builds
    // both sides, and its bpffs mounts appear when measuring starts.
    let lock = xtask::lock::default_path(cache.path());
    let holder = format!("pid {pid} ");
    let still_running = |child: &mut Reap, what: &str| {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("xtask ended before {what} ({status}):\n{}", output(child));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let deadline = Instant::now() + Duration::from_secs(1800);
    while !std::fs::read_to_string(&lock).unwrap_or_default().starts_with(&holder) {
        still_running(&mut child, "taking the host lock");
        assert!(Instant::now() < deadline, "xtask waited 30 min for the host lock {}", lock.display());
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    while mounts_of(pid).is_empty() {
        still_running(&mut child, "measuring");
        assert!(Instant::now() < deadline, "xtask did not start measuring within 4 min of taking the lock");
    }
    let mounts = mounts_of(pid);
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.0.try_wait().unwrap().is_none(), "still measuring when interrupted");

    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        // A hang guard, not a speed check: the 2000 rounds alone would take longer.
        assert!(sent.elapsed() < Duration::from_secs(600), "hang guard: xtask still running 10 min after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = output(&mut child);
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("error: ")), "{text}");
    assert_eq!(mounts_of(pid), Vec::<PathBuf>::new(), "bpffs left mounted after Ctrl-C");
    for m in mounts {
        assert!(!m.exists(), "mount directory {} left behind", m.display());
    }
}

/// Rounds measured per case: the length of its paired sample lists.
fn rounds(v: &Value) -> Vec<usize> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = c["base_samples"].as_array().unwrap().len();
            assert_eq!(c["ref_samples"].as_array().unwrap().len(), n, "paired samples: {c}");
            n
        })
        .collect()
}

/// `--target-ci` ends a case's rounds once its interval is that narrow: a target every interval
/// meets at once stops at `--min-rounds`, one no interval meets (nor its other stopping rules,
/// at a threshold of 0) runs to `--max-rounds`. Rounds
/// are counted in the JSON (a count, not a time). The same runs use `--cpu-pin 0 --no-preempt`:
/// the fixture's record shows they reach the measuring thread only.
#[test]
fn target_ci_decides_when_the_rounds_stop() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("c.json");
    let j = json.to_str().unwrap();
    let record = cache.path().join("sched.txt");
    // The same programs, timed on request.
    let base = ["HEAD", "main", "--filter", "xdp__prologue,tc__prologue", "--measure-identical"];
    // 8: the fewest rounds with an interval at the per-look level of 4 looks (8, 12, 18, 20).
    let bounds = ["--min-rounds", "8", "--max-rounds", "20", "--time-budget", "300", "--json-output", j];
    let isolation = ["--cpu-pin", "0", "--no-preempt"];
    let run_with = |target: &str, threshold: &str| {
        let args = [&base[..], &bounds, &isolation, &["--target-ci", target, "--threshold", threshold]].concat();
        let mut cmd = xtask_command(repo.path(), &args, cache.path());
        cmd.env("MINIFILTER_RECORD_SCHED", &record);
        let run = bfperf_tests::finish_leaving_no_mount(cmd.spawn().unwrap());
        assert_eq!(run.code, 0, "--target-ci {target}:\n{}", show(&run));
        let v = read_json(&json);
        assert_eq!(v["config"]["target_ci_pct"].as_f64(), Some(target.parse().unwrap()), "{}", v["config"]);
        (run, rounds(&v), v)
    };
    // An interval 1000 points wide is met after the first rounds: every case stops at the minimum.
    let (run, wide, _) = run_with("1000", "1");
    assert_eq!(wide, [8, 8], "{}", show(&run));
    assert!(run.stderr.contains("host: while measuring: pinned to CPU 0"), "{}", run.stderr);
    assert!(run.stderr.contains("host: while measuring: SCHED_FIFO priority 1"), "{}", run.stderr);
    bfperf_tests::assert_measuring_thread_isolated(&record, true);
    // An interval of a thousandth of a point is never met, and at a threshold of 0 no interval
    // lies inside ±threshold: a case runs to the maximum unless its interval excludes 1 at some
    // look (an A/A case may, at most 5 % of the time), and then it stopped by that rule.
    let (run, narrow, v) = run_with("0.001", "0");
    for (n, case) in narrow.iter().zip(v["cases"].as_array().unwrap()) {
        let (lo, hi) = (case["estimate"]["lo"].as_f64().unwrap(), case["estimate"]["hi"].as_f64().unwrap());
        assert!(*n == 20 || lo > 1.0 || hi < 1.0, "stopped at {n} undecided: {case}\n{}", show(&run));
    }
}
