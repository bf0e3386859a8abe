//! `cargo xtask bench` end to end, and each of its bad inputs: one clear
//! line, a non-zero exit, and the user's tree untouched.

use bfperf_tests::{require_bpf, xtask, FixtureRepo};
use std::os::unix::fs::PermissionsExt;

#[test]
fn bench_builds_the_tree_out_of_place_and_writes_json() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let json = cache.path().join("out/results.json");
    let src = repo.path().to_str().unwrap();
    let args = ["bench", "--sources", src, "--filter", "prologue", "--samples", "3", "--sample-ms", "2"];
    let run = xtask(&[&args[..], &["--json-output", json.to_str().unwrap()]].concat(), cache.path());
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    for case in ["xdp__prologue", "tc__prologue", "netfilter__prologue", "cgroup_skb__prologue"] {
        assert!(run.stdout.contains(case), "{case} missing from:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("4 ok, 0 failed, 0 unsupported"), "{}", run.stdout);
    assert!(run.stdout.contains("floor xdp/local_ip6_tcp"), "{}", run.stdout);
    let results =
        bench_harness::results::RunResults::from_json(&std::fs::read_to_string(&json).unwrap()).expect("valid results");
    assert_eq!(results.cases.len(), 4);
    assert_eq!(results.source.commit.as_deref(), Some(repo.head().as_str()));
    assert!(!results.source.dirty);
    assert_eq!(repo.status(), "", "the user's tree is untouched (no build dir, no change)");

    // Second run: cmake is not configured again (incremental build).
    let log = std::fs::read_dir(cache.path().join("builds"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("bfperf-build.log");
    let configures = |l: &str| l.matches("$ cmake").count();
    let before = configures(&std::fs::read_to_string(&log).unwrap());
    let run = xtask(&args, cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(configures(&std::fs::read_to_string(&log).unwrap()), before, "cmake ran again");
    assert!(run.stdout.contains("results: "), "default JSON path printed");
}

#[test]
fn list_needs_no_sources_and_filters() {
    let cache = tempfile::tempdir().unwrap();
    let run = xtask(&["bench", "--list", "--filter", "chain_set"], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains("chain_set__ip4_saddr__x_elem_set/1048576"));
}

fn one_error_line(run: &bfperf_tests::Run) -> &str {
    assert_ne!(run.code, 0, "expected a failure, got stdout:\n{}", run.stdout);
    let line = run
        .stderr
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", run.stderr));
    line
}

#[test]
fn sources_that_are_not_a_bpfilter_tree_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let not_bpfilter = tempfile::tempdir().unwrap();
    let run = xtask(&["bench", "--sources", not_bpfilter.path().to_str().unwrap()], cache.path());
    assert!(one_error_line(&run).contains("is not a bpfilter source tree"), "{}", run.stderr);
    let run = xtask(&["bench"], cache.path());
    assert!(one_error_line(&run).contains("no bpfilter sources given"), "{}", run.stderr);
    assert!(one_error_line(&run).contains("BPFILTER_SOURCES"), "{}", run.stderr);
}

#[test]
fn missing_or_non_executable_bfcli_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bfcli");
    let run = xtask(&["bench", "--bfcli", path.to_str().unwrap()], cache.path());
    assert!(one_error_line(&run).contains("bfcli not found"), "{}", run.stderr);
    std::fs::write(&path, "not a program").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = xtask(&["bench", "--bfcli", path.to_str().unwrap()], cache.path());
    assert!(one_error_line(&run).contains("is not an executable file"), "{}", run.stderr);
}

#[test]
fn a_build_failure_shows_the_log_tail() {
    let repo = FixtureRepo::new();
    repo.write("src/libbpfilter/cgen/prologue.c", "this is not C;\n");
    repo.commit("break the build");
    let cache = tempfile::tempdir().unwrap();
    let run = xtask(&["bench", "--sources", repo.path().to_str().unwrap()], cache.path());
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("make bfcli failed"), "{}", run.stderr);
    assert!(run.stderr.contains("full log:"), "{}", run.stderr);
    assert!(run.stderr.contains("prologue.c"), "the tail names the broken file:\n{}", run.stderr);
}

#[test]
fn an_unprivileged_user_gets_one_line_saying_what_to_do() {
    require_bpf!(); // we need to be root to drop to an unprivileged user
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // setpriv (util-linux) drops to nobody with no capabilities.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(bfperf_tests::xtask_bin())
        .args(["bench", "--bfcli", bfcli.to_str().unwrap(), "--cache-dir", cache.path().to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .expect("setpriv runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    let line = stderr.lines().rfind(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("refused bpf()") && line.contains("run as root"), "{line}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
}

/// `--cpu-pin` and `--no-preempt` hold for the measuring thread only, and only while it
/// measures: cmake, make and what they run keep the normal policy on every CPU. The fixture
/// records how its build steps and its bfcli run (MINIFILTER_RECORD_SCHED); a bfcli started
/// while measuring also counts the SCHED_FIFO threads of the process that started it.
#[test]
fn isolation_applies_to_the_measuring_thread_only() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let record = cache.path().join("sched.txt");
    let args = ["--filter", "xdp__prologue", "--samples", "3", "--sample-ms", "2", "--cpu-pin", "0", "--no-preempt"];
    let mut cmd = bfperf_tests::subcommand("bench", repo.path(), &args, cache.path());
    cmd.env("MINIFILTER_RECORD_SCHED", &record);
    let run = bfperf_tests::finish_leaving_no_mount(cmd.spawn().unwrap());
    assert_eq!(run.code, 0, "{}", bfperf_tests::show(&run));
    assert!(run.stderr.contains("host: while measuring: pinned to CPU 0"), "{}", run.stderr);
    assert!(run.stderr.contains("host: while measuring: SCHED_FIFO priority 1"), "{}", run.stderr);

    bfperf_tests::assert_measuring_thread_isolated(&record, true);
}

#[test]
fn progress_is_plain_lines_when_stderr_is_not_a_terminal_and_quiet_removes_it() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let src = repo.path().to_str().unwrap();
    let args = ["bench", "--sources", src, "--filter", "prologue", "--samples", "3", "--sample-ms", "2"];
    // The cases in the suite's order, as --list prints them.
    let list = xtask(&["bench", "--list", "--filter", "prologue"], cache.path());
    let cases: Vec<&str> = list.stdout.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(cases.len(), 4, "{}", list.stdout);

    let run = xtask(&args, cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains('\r') && !run.stderr.contains('\x1b'), "no bar drawing:\n{:?}", run.stderr);
    assert!(run.stderr.lines().any(|l| l.starts_with("building bfcli of ")), "the build phase:\n{}", run.stderr);
    assert!(run.stderr.lines().any(|l| l == "bench: 4 steps"), "the bench phase:\n{}", run.stderr);
    let done: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("bench [")).collect();
    let expected: Vec<String> = cases.iter().enumerate().map(|(i, c)| format!("bench [{}/4] {c}: ok", i + 1)).collect();
    assert_eq!(done, expected, "one line per finished case, in order:\n{}", run.stderr);

    let quiet = xtask(&[&args[..], &["-q"]].concat(), cache.path());
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(quiet.stdout.contains("4 ok, 0 failed, 0 unsupported"), "results still on stdout:\n{}", quiet.stdout);
    assert!(!quiet.stderr.contains("bench") && !quiet.stderr.contains("building"), "{}", quiet.stderr);
    // Errors are not silenced.
    let failed = xtask(&["bench", "--quiet"], cache.path());
    assert!(one_error_line(&failed).contains("no bpfilter sources given"), "{}", failed.stderr);
}

#[test]
fn color_always_colors_a_piped_table_and_never_does_not() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let src = repo.path().to_str().unwrap();
    // minifilter rejects `log`: single_rule__ip4_saddr_l is unsupported, a row the table colors.
    let filter = "xdp__prologue,single_rule__ip4_saddr_l";
    let args = ["bench", "--sources", src, "--filter", filter, "--samples", "3", "--sample-ms", "2"];
    // stdout is a pipe and NO_COLOR is set (bfperf_tests::xtask): auto means no colors.
    let auto = xtask(&args, cache.path());
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert!(!auto.stdout.contains("\x1b["), "{:?}", auto.stdout);
    let always = xtask(&[&args[..], &["--color", "always"]].concat(), cache.path());
    assert_eq!(always.code, 0, "{}", always.stderr);
    let row = always.stdout.lines().find(|l| l.contains("single_rule__ip4_saddr_l")).expect("the case's row");
    assert!(row.contains("\x1b[") && row.contains("unsupported"), "an escape in the row:\n{:?}", always.stdout);
    let never = xtask(&[&args[..], &["--color", "never"]].concat(), cache.path());
    assert_eq!(never.code, 0, "{}", never.stderr);
    assert!(never.stdout.contains("unsupported") && !never.stdout.contains("\x1b["), "{:?}", never.stdout);
    let bad = xtask(&["bench", "--color", "sometimes"], cache.path());
    assert_eq!(bad.code, 1, "a usage error:\n{}", bad.stderr);
}

#[test]
fn a_rule_on_the_command_line_is_a_case_of_its_own_in_bench_and_compare() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let src = repo.path().to_str().unwrap();
    let json = cache.path().join("adhoc.json");
    let rule = "ip4.saddr eq 192.168.1.1 counter DROP";
    let quick = ["--samples", "3", "--sample-ms", "2"];
    let args = [&["bench", "--sources", src, "--rule", rule, "--hook", "xdp", "--policy", "ACCEPT"][..], &quick[..]];
    let run = xtask(&[&args.concat()[..], &["--json-output", json.to_str().unwrap()]].concat(), cache.path());
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("adhoc__xdp"), "{}", run.stdout);
    assert!(run.stdout.contains("1 ok, 0 failed, 0 unsupported"), "only the ad-hoc case:\n{}", run.stdout);
    let results = bench_harness::results::RunResults::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(results.cases.len(), 1);
    let case = &results.cases[0];
    assert_eq!(
        (case.name.as_str(), case.label.as_str()),
        ("adhoc__xdp", "ad-hoc rule: ip4.saddr eq 192.168.1.1 counter DROP")
    );
    assert!(case.metrics.unwrap().xlated_insns > 2 && !case.samples.is_empty());
    assert_eq!(case.retval, Some(2), "XDP_PASS: the rule does not match the packet, the policy applies");

    // With --filter: the cases it selects, then the ad-hoc one; the packet and
    // the expected verdict can be chosen (this rule matches the IPv4 packets).
    let matching = "ip4.saddr eq 127.2.10.10 DROP";
    let run = xtask(
        &[
            &["bench", "--sources", src, "--filter", "xdp__prologue", "--rule", matching][..],
            &["--hook", "tc", "--packet", "local_ip4_tcp", "--expect", "DROP"],
            &quick,
        ]
        .concat(),
        cache.path(),
    );
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("xdp__prologue") && run.stdout.contains("adhoc__tc"), "{}", run.stdout);
    assert!(run.stdout.contains("2 ok, 0 failed"), "{}", run.stdout);

    // A rule bfcli rejects: bfcli's message, one line.
    let run = xtask(
        &[&["bench", "--sources", src, "--rule", "ip4.saddr frobnicate 1 DROP", "--hook", "xdp"][..], &quick].concat(),
        cache.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = one_error_line(&run);
    assert!(line.starts_with("error: bfcli rejected the rule: "), "{line}");
    assert!(line.contains("frobnicate"), "bfcli's own message: {line}");
    // A verdict other than expected: one line saying how to fix it.
    let run =
        xtask(&[&["bench", "--sources", src, "--rule", matching, "--hook", "xdp"][..], &quick].concat(), cache.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(one_error_line(&run).contains("--expect"), "{}", run.stderr);
    // --hook without --rule is a usage error.
    let run = xtask(&["bench", "--sources", src, "--hook", "xdp"], cache.path());
    assert_eq!(run.code, 1, "{}", run.stderr);

    // bench-compare measures it too, paired, as a case of its own.
    let cmp = cache.path().join("cmp.json");
    let run = xtask(
        &[
            "bench-compare",
            "HEAD",
            "HEAD",
            "--sources",
            src,
            "--rule",
            rule,
            "--hook",
            "xdp",
            "--quick",
            // HEAD against itself loads the same program: timed only when asked.
            "--measure-identical",
            "--time-budget",
            "3",
            "--json-output",
            cmp.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cmp).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{v:#}");
    assert_eq!(cases[0]["name"], "adhoc__xdp");
    assert!(cases[0]["estimate"]["n"].as_u64().unwrap() >= 6, "{v:#}");
    let run = xtask(
        &["bench-compare", "HEAD", "HEAD", "--sources", src, "--rule", "ip4.saddr frobnicate 1 DROP", "--quick"],
        cache.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(one_error_line(&run).starts_with("error: bfcli rejected the rule: "), "{}", run.stderr);
}

/// Issue 14: `chain_set__*` times what upstream times, the `bf_chain_set`
/// call inside bfcli (uprobes), and says so; a bfcli where no `bf_chain_set`
/// can be found is timed with bfcli's start-up subtracted, and says that.
#[test]
fn chain_set_cases_time_bf_chain_set_in_process_and_say_how() {
    use bench_harness::chainset::Method;
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let cache = tempfile::tempdir().unwrap();
    let case_results = |bfcli: &std::path::Path, case: &str| {
        let json = cache.path().join("chain_set.json");
        let args = ["bench", "--bfcli", bfcli.to_str().unwrap(), "--filter", case, "--json-output"];
        let run = xtask(&[&args[..], &[json.to_str().unwrap()]].concat(), cache.path());
        assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        let results = bench_harness::results::RunResults::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(results.cases.len(), 1);
        (run, results.cases.into_iter().next().unwrap())
    };
    let sane = |c: &bench_harness::results::CaseResult| {
        assert_eq!(c.status, bench_harness::results::Status::Ok, "{c:?}");
        assert!(c.samples.len() >= 2 && c.samples.iter().all(|&ms| ms.is_finite() && ms > 0.0), "{c:?}");
        assert_eq!(c.load_ms, c.summary.map(|s| s.median));
    };

    // minifilter's bfcli links its library statically: bf_chain_set is in
    // the executable's symbol table.
    let (run, case) = case_results(&bfcli, "chain_set__ip4_saddr__x_elem_set/8");
    assert_eq!(case.load_method, Some(Method::InProcess));
    sane(&case);
    assert!(
        run.stdout.contains("ms: bf_chain_set in-process, as upstream: chain_set__ip4_saddr__x_elem_set/8"),
        "{}",
        run.stdout
    );

    // Stripped, it has no symbol table, and no library it loads defines
    // bf_chain_set: each sample is its chain minus the empty chain.
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("bfcli");
    std::fs::copy(&bfcli, &stripped).unwrap();
    let out = std::process::Command::new("strip").arg("--strip-all").arg(&stripped).output().expect("strip runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (run, case) = case_results(&stripped, "chain_set__ip4_saddr__x_elem_set/65536");
    assert_eq!(case.load_method, Some(Method::StartupSubtracted));
    sane(&case);
    assert!(run.stdout.contains("ms: bfcli start-up subtracted"), "{}", run.stdout);
    assert!(!run.stderr.contains("warning"), "nothing failed, nothing to warn about:\n{}", run.stderr);

    // bench-compare times both sides the same way and says which.
    let cmp = cache.path().join("cmp.json");
    let src = repo.path().to_str().unwrap();
    let args = ["bench-compare", "HEAD", "HEAD", "--sources", src, "--filter", "chain_set__ip4_saddr__x_elem_set/8"];
    let quick = ["--quick", "--time-budget", "3", "--json-output", cmp.to_str().unwrap()];
    let run = xtask(&[&args[..], &quick[..]].concat(), cache.path());
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ms: bf_chain_set in-process, as upstream"), "{}", run.stdout);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cmp).unwrap()).unwrap();
    let case = &v["cases"][0];
    assert_eq!(case["load_method"], "in_process", "{v:#}");
    assert!(case["estimate"]["n"].as_u64().unwrap() >= 6, "{v:#}");
    assert!(case["base_samples"].as_array().unwrap().iter().all(|x| x.as_f64().unwrap() > 0.0), "{v:#}");
}
