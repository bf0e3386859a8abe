//! The headline commands outside the benchmark loop, end to end: `demo` (the whole product on
//! the bundled minifilter), `bench-selfcheck` (a short run on a minifilter build) and `doctor`
//! (with `--sources`, passing and failing). Both measuring commands also run with `--cpu-pin 0
//! --no-preempt`, checked through the fixture's isolation record.

use bfperf_tests::{loaded_programs_named, mounts_of, require_bpf, show, xtask_command, FixtureRepo, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run to the end (a generous hang guard: `limit`), then check that the process left no bpffs
/// mount behind.
fn run(cmd: std::process::Command, limit: Duration) -> (Run, u32) {
    let mut cmd = cmd;
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("xtask runs");
    let pid = child.id();
    let guard = std::thread::spawn({
        let deadline = std::time::Instant::now() + limit;
        move || {
            while std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
            }
            // Past the hang guard: end it (by its pid) so the test fails instead of hanging.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    });
    let out = bfperf_tests::finish_leaving_no_mount(child);
    let _ = guard.join();
    (out, pid)
}

/// How many programs named like the fixture's (`bf_prog`) are loaded, counted while holding the
/// host lock: no other benchmark loads any meanwhile.
fn programs_while_no_benchmark_runs(cache: &Path) -> usize {
    let path = xtask::lock::default_path(cache);
    let _held =
        xtask::lock::RunLock::acquire(&path, xtask::lock::Wait::Yes, "the demo test, counting programs").unwrap();
    loaded_programs_named("bf_prog").len()
}

#[test]
fn demo_runs_the_whole_product_and_leaves_nothing_loaded() {
    require_bpf!();
    let cache = tempfile::tempdir().unwrap();
    let before = programs_while_no_benchmark_runs(cache.path());
    let record = cache.path().join("sched.txt");
    let mut cmd = xtask_command(&["demo", "--cpu-pin", "0", "--no-preempt"], cache.path());
    cmd.env("MINIFILTER_RECORD_SCHED", &record).env("ANTHROPIC_API_KEY", "sk-must-not-be-used");
    let (run, pid) = run(cmd, Duration::from_secs(900));
    assert_eq!(run.code, 0, "{}", show(&run));
    let out = &run.stdout;
    assert!(
        out.contains("── bench-compare HEAD~1 HEAD (minifilter: the second commit pads every prologue) ──"),
        "{out}"
    );
    // The padded commit is slower: the suite's geometric mean shows it.
    let geomean =
        out.lines().find(|l| l.starts_with("suite geometric mean REF/BASE:")).unwrap_or_else(|| panic!("{out}"));
    assert!(geomean.contains("(+"), "the padded commit is slower: {geomean}");
    assert!(out.contains("── optimize: 2 attempts against a local scripted model ──"), "{out}");
    let attempt = |n: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{n}. ")))
            .unwrap_or_else(|| panic!("{out}"))
            .to_owned()
    };
    let (first, second) = (attempt("1"), attempt("2"));
    assert!(first.contains("kept") && first.contains("drop the redundant prologue padding"), "{first}");
    assert!(second.contains("rejected") && second.contains("unroll the prologue checks"), "{second}");
    let field = |prefix: &str| {
        out.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}")).trim()
    };
    let branch = field("branch to merge:");
    let (branch, repo) = branch.split_once(" in ").unwrap();
    assert!(branch.starts_with("optimize/demo-"), "{branch}");
    let repo = PathBuf::from(repo);
    assert!(repo.starts_with(cache.path()), "the demo repository is in the cache: {}", repo.display());
    let tip = bfperf_tests::git(&repo, &["log", "-1", "--format=%s", branch]);
    assert_eq!(tip.trim(), "lib: cgen: drop the redundant prologue padding", "the kept attempt is on the branch");
    let report = PathBuf::from(field("optimize report:"));
    assert!(report.starts_with(cache.path()) && report.is_file(), "{}", report.display());
    assert!(std::fs::read_to_string(&report).unwrap().contains("drop the redundant prologue padding"));
    assert!(PathBuf::from(field("demo files:")).is_dir());

    // Nothing left behind: no mount (checked by `run`), no program of the fixture loaded.
    assert_eq!(mounts_of(pid), Vec::<PathBuf>::new());
    let after = programs_while_no_benchmark_runs(cache.path());
    assert!(after <= before, "programs left loaded: {before} before the demo, {after} after");
    bfperf_tests::assert_measuring_thread_isolated(&record, true);
}

#[test]
fn bench_selfcheck_writes_its_counts_as_json() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let cache = tempfile::tempdir().unwrap();
    let json = cache.path().join("out/selfcheck.json");
    let record = cache.path().join("sched.txt");
    let args = [
        "bench-selfcheck",
        "--bfcli",
        bfcli.to_str().unwrap(),
        "--aa-runs",
        "1",
        "--power-reps",
        "1",
        "--quick",
        "--filter",
        "prologue",
        "--json-output",
        json.to_str().unwrap(),
        "--cpu-pin",
        "0",
        "--no-preempt",
    ];
    let mut cmd = xtask_command(&args, cache.path());
    cmd.env("MINIFILTER_RECORD_SCHED", &record);
    let (run, _) = run(cmd, Duration::from_secs(900));
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stdout.contains("A/A false-verdict rate: "), "{}", show(&run));
    assert!(run.stdout.contains(&format!("JSON: {}", json.display())), "{}", show(&run));

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("JSON");
    let aa = &v["aa"];
    assert_eq!(aa["runs"], 1, "{v:#}");
    // One run over minifilter's four prologue cases (one per flavor): four verdicts.
    assert_eq!(aa["verdicts"], 4, "{v:#}");
    assert!(aa["false_verdicts"].as_u64().unwrap() <= 4, "{v:#}");
    assert!(aa["median_ci_width_pct"].as_f64().unwrap() > 0.0, "{v:#}");
    let power = v["power"].as_array().expect("power points");
    let extras: Vec<u64> = power.iter().map(|p| p["extra_insns"].as_u64().unwrap()).collect();
    assert_eq!(extras, [1, 2, 4, 8, 16, 32], "{v:#}");
    for p in power {
        assert_eq!(p["reps"], 1, "{p}");
        assert!(p["detected"].as_u64().unwrap() + p["wrong"].as_u64().unwrap() <= 1, "{p}");
        assert!(p["true_delta_pct"].as_f64().unwrap().is_finite(), "{p}");
    }
    // The power curve on the build: the default slowdowns, one run each over the four cases.
    let injected = v["injected"].as_array().expect("injected points");
    let sizes: Vec<f64> = injected.iter().map(|p| p["inject_pct"].as_f64().unwrap()).collect();
    assert_eq!(sizes, [1.0, 2.0, 3.0, 5.0], "{v:#}");
    for p in injected {
        assert_eq!(p["runs"], 1, "{p}");
        let cases = p["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4, "{p}");
        assert!(cases.iter().all(|c| c["verdicts"] == 1 && c["mean_rounds"].as_f64().unwrap() >= 8.0), "{p}");
    }
    assert_eq!(run.stdout.lines().filter(|l| l.contains("  injected +")).count(), 4, "{}", run.stdout);
    // One stdout line per power point.
    assert_eq!(run.stdout.lines().filter(|l| l.contains(" insns: true slowdown ")).count(), 6, "{}", run.stdout);
    // The A/A runs load the prebuilt bfcli's chains from the measuring thread only.
    bfperf_tests::assert_measuring_thread_isolated(&record, false);
}

#[test]
fn doctor_checks_the_sources_and_a_failed_check_exits_1_with_its_fix() {
    require_bpf!(); // the bpf() and BPF_PROG_TEST_RUN checks pass only as root
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let src = repo.path().to_str().unwrap();
    let run = bfperf_tests::run_with_hang_guard(
        xtask_command(&["doctor", "--sources", src], cache.path()),
        Duration::from_secs(120),
    );
    let checkout = format!("✔ bpfilter checkout: {}", repo.path().canonicalize().unwrap().display());
    assert!(run.stdout.lines().any(|l| l == checkout), "no `{checkout}` in:\n{}", show(&run));
    if run.stdout.lines().any(|l| l.starts_with('✘')) {
        // A required tool is missing on this host: then the run must say so and exit 1.
        assert_eq!(run.code, 1, "{}", show(&run));
    } else {
        assert_eq!(run.code, 0, "{}", show(&run));
        assert_eq!(run.stdout.lines().last(), Some("ready"), "{}", show(&run));
    }

    // Sources that are not a bpfilter checkout: the one required check that fails, its fix, exit 1.
    let not_a_repo = tempfile::tempdir().unwrap();
    let bad = not_a_repo.path().to_str().unwrap();
    let run = bfperf_tests::run_with_hang_guard(
        xtask_command(&["doctor", "--sources", bad], cache.path()),
        Duration::from_secs(120),
    );
    assert_eq!(run.code, 1, "{}", show(&run));
    let failed: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('✘')).collect();
    let line =
        failed.iter().find(|l| l.starts_with("✘ bpfilter checkout: ")).unwrap_or_else(|| panic!("{}", show(&run)));
    assert!(line.contains(bad), "the line names the path: {line}");
    assert!(
        line.ends_with(
            "— fix: git clone https://github.com/facebook/bpfilter && export BPFILTER_SOURCES=$PWD/bpfilter"
        ),
        "{line}"
    );
    assert_eq!(run.stdout.lines().last(), Some(format!("{} required check(s) failed", failed.len()).as_str()));

    // A required tool missing from PATH: its own ✘ line with the package to install, exit 1.
    let bin = tempfile::tempdir().unwrap();
    let mut cmd = xtask_command(&["doctor", "--sources", src], cache.path());
    cmd.env("PATH", bin.path());
    let run = bfperf_tests::run_with_hang_guard(cmd, Duration::from_secs(120));
    assert_eq!(run.code, 1, "{}", show(&run));
    assert!(run.stdout.lines().any(|l| l == "✘ cmake: not on PATH — fix: apt-get install -y cmake"), "{}", show(&run));
}
