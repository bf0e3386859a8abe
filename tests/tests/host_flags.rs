//! The host flags every measuring command shares, end to end: `--no-wait` on each command while
//! another run holds the host lock, and `--bind-node` (a real binding of the measuring thread,
//! and one clear error for a node this host lacks). `--cpu-pin` and `--no-preempt` are checked
//! on each command's own end-to-end test (cli_bench, compare, history, selfcheck_demo,
//! optimize) through the fixture's isolation record.

use bfperf_tests::{require_bpf, run_with_hang_guard, show, xtask_command, FixtureRepo, Run};
use std::time::Duration;

/// A refused run must end long before this (it builds nothing): a hang guard only.
const GUARD: Duration = Duration::from_secs(120);

/// The failure's `error: ` lines (there must be one) and exit code 1.
fn one_error(run: &Run) -> &str {
    assert_eq!(run.code, 1, "{}", show(run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", show(run));
    errors[0]
}

#[test]
fn no_wait_fails_at_once_on_every_command_while_another_run_holds_the_lock() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.write("README.md", "a second commit\n");
    repo.commit("docs: a second commit");
    let branches = bfperf_tests::git(repo.path(), &["branch", "--list"]);
    let src = repo.path().to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["bench", "--sources", src],
        &["bench-compare", "HEAD~1", "HEAD", "--sources", src],
        &["bench-history", "--since", "HEAD~1", "--sources", src],
        &["bench-selfcheck", "--power-only"],
        &["optimize", "--sources", src, "--agent-command", "true", "--run-id", "nowait"],
        &["demo"],
    ];
    let cache = tempfile::tempdir().unwrap();
    // Held by this test process: the runs below open the file themselves and find it locked
    // (this may first queue behind another benchmark of the host).
    let lock_path = xtask::lock::default_path(cache.path());
    let _held = xtask::lock::RunLock::acquire(&lock_path, xtask::lock::Wait::Yes, "the no-wait test").unwrap();
    for args in commands {
        let run = run_with_hang_guard(xtask_command(&[args, &["--no-wait"]].concat(), cache.path()), GUARD);
        let line = one_error(&run);
        assert!(
            line.contains("another benchmark is running on this host")
                && line.contains("the no-wait test")
                && line.contains("drop --no-wait"),
            "{args:?}: {line}"
        );
        assert!(!run.stderr.contains("waiting for another benchmark"), "{args:?} queued:\n{}", show(&run));
        let left: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "bfperf.lock")
            .collect();
        assert!(!left.iter().any(|n| n == "builds" || n == "worktrees"), "{args:?} built something: {left:?}");
    }
    assert_eq!(repo.status(), "", "the tree is untouched");
    assert_eq!(bfperf_tests::git(repo.path(), &["branch", "--list"]), branches, "no branch was added");
}

/// `--bind-node N` binds the measuring thread's CPUs and memory to node N while it measures
/// (bfcli started then inherits both, as the fixture records), and nothing that builds; a node
/// the host lacks is one error before anything is built.
#[test]
fn bind_node_binds_the_measuring_thread_and_a_missing_node_is_one_error() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();

    let args = ["--filter", "xdp__prologue", "--samples", "3", "--sample-ms", "2", "--bind-node", "99"];
    let cmd = bfperf_tests::subcommand("bench", repo.path(), &args, cache.path());
    let run = run_with_hang_guard(cmd, GUARD);
    assert!(one_error(&run).contains("--bind-node 99: no such NUMA node on this host"), "{}", show(&run));
    assert!(!cache.path().join("builds").exists(), "a refused run built something");

    let Ok(cpulist) = std::fs::read_to_string("/sys/devices/system/node/node0/cpulist") else {
        bfperf_tests::skip("this kernel has no NUMA node 0 (CONFIG_NUMA off): --bind-node 0 cannot bind");
        return;
    };
    let record = cache.path().join("sched.txt");
    let args = ["--filter", "xdp__prologue", "--samples", "3", "--sample-ms", "2", "--bind-node", "0"];
    let mut cmd = bfperf_tests::subcommand("bench", repo.path(), &args, cache.path());
    cmd.env("MINIFILTER_RECORD_SCHED", &record);
    let run = bfperf_tests::finish_leaving_no_mount(cmd.spawn().unwrap());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stderr.contains("host: while measuring: bound to NUMA node 0"), "{}", show(&run));

    let text = std::fs::read_to_string(&record).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_owned();
    for step in ["configure", "build"] {
        let expected = format!("{step} policy=0 cpus={ours} mem=default");
        assert!(text.lines().any(|l| l == expected), "no `{expected}` in:\n{text}");
        assert!(text.lines().filter(|l| l.starts_with(step)).all(|l| l == expected), "{text}");
    }
    // The node's CPUs as the fixture prints them (a comma-separated list).
    let mut node_cpus = vec![];
    for part in cpulist.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        node_cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
    }
    let node_cpus = node_cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let bound = format!("bfcli policy=0 cpus={node_cpus} mem=bind:0 parent_fifo_threads=0");
    assert!(text.lines().any(|l| l == bound), "no bfcli started by the bound thread (`{bound}`) in:\n{text}");
    let bfcli: Vec<&str> = text.lines().filter(|l| l.starts_with("bfcli ")).collect();
    assert!(
        bfcli.iter().all(|l| *l == bound || l.contains(" mem=default ")),
        "a bfcli with another memory policy:\n{text}"
    );
}
