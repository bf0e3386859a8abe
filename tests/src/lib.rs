//! Shared support for bfperf's end-to-end tests: the minifilter fixture in a
//! temporary git repository, its build, the xtask binary, and the check that
//! the kernel lets us use bpf() (tests skip, loudly, only where it refuses:
//! see [`skip`]);
//! [`sshd`]: a throwaway OpenSSH server on 127.0.0.1 for the `--host` tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use xshell::{cmd, Shell};

pub mod sshd;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_owned()
}

/// The pristine minifilter sources.
pub fn minifilter_sources() -> PathBuf {
    workspace_root().join("tests/fixtures/minifilter")
}

/// `Some(reason)` when this process may not load BPF programs (not root, no
/// bpf()); [`require_bpf!`] turns it into a [`skip`].
pub fn bpf_unavailable() -> Option<String> {
    match bench_harness::program::check_bpf_access() {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Skip the current test when the kernel refuses bpf(): a [`skip`] (a failure
/// under `BFPERF_NO_SKIP=1`), then `return`.
#[macro_export]
macro_rules! require_bpf {
    () => {
        if let Some(reason) = $crate::bpf_unavailable() {
            $crate::skip(&format!("the kernel refuses bpf(): {reason}"));
            return;
        }
    };
}

/// Set to `1` (`.ci/run` does) to make every skip a failure that names what is missing.
pub const NO_SKIP_ENV: &str = "BFPERF_NO_SKIP";

/// Is `BFPERF_NO_SKIP=1` set?
pub fn no_skip() -> bool {
    std::env::var_os(NO_SKIP_ENV).is_some_and(|v| v == "1")
}

/// The cargo target directory the tests were built in (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// The list of skipped tests, one `SKIPPED <binary>::<test>: <what is missing>` line each,
/// appended by [`skip`]: `target/tmp/bfperf-skipped.txt`. `.ci/run` empties it before
/// `cargo test` and prints it after.
pub fn skip_summary() -> PathBuf {
    target_dir().join("tmp/bfperf-skipped.txt")
}

/// `<test binary>::<test>`: libtest runs each test on a thread named after it.
fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            // Cargo names test binaries `<name>-<16 hex digits>`.
            Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".into());
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("?"))
}

/// The running test skips (part of) its checks because `missing` is missing; `missing` says
/// what and how to get it. Under `BFPERF_NO_SKIP=1` this panics instead. Otherwise the skip is
/// written to the process's stderr, which `cargo test` shows even for a passing test (it
/// captures `eprintln!`, not direct writes), and appended to [`skip_summary`]. The caller
/// returns (or leaves out the skipped part) after it.
#[track_caller]
pub fn skip(missing: &str) {
    let test = current_test();
    if no_skip() {
        panic!("{NO_SKIP_ENV}=1 and {test} would be skipped: {missing}");
    }
    let line = format!("SKIPPED {test}: {missing}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    let summary = skip_summary();
    let written = std::fs::create_dir_all(summary.parent().expect("a file in target/tmp")).and_then(|()| {
        // One write per line, in append mode: lines of parallel tests do not mix.
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&summary)?;
        std::io::Write::write_all(&mut file, line.as_bytes())
    });
    if let Err(e) = written {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            format!("warning: cannot list the skip in {}: {e}\n", summary.display()).as_bytes(),
        );
    }
}

/// minifilter in a temporary git repository, with one initial commit.
pub struct FixtureRepo {
    dir: tempfile::TempDir,
}

impl FixtureRepo {
    /// A fresh copy of minifilter, committed.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("bfperf-fixture-").tempdir().unwrap();
        let repo = FixtureRepo { dir };
        xtask::demo::copy_tree(&minifilter_sources(), repo.path()).unwrap();
        let sh = repo.shell();
        cmd!(sh, "git init -q -b main").run().unwrap();
        cmd!(sh, "git config user.email tests@bfperf.invalid").run().unwrap();
        cmd!(sh, "git config user.name bfperf-tests").run().unwrap();
        repo.commit("initial import of minifilter");
        repo
    }

    /// The repository's work tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A shell in the work tree.
    pub fn shell(&self) -> Shell {
        let sh = Shell::new().unwrap();
        sh.change_dir(self.path());
        sh
    }

    /// Set the prologue padding knob (redundant instructions per program).
    pub fn set_padding(&self, n: u32) {
        xtask::demo::set_padding(self.path(), n).unwrap();
    }

    /// Write a file relative to the work tree.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commit everything; returns the new HEAD.
    pub fn commit(&self, message: &str) -> String {
        let sh = self.shell();
        cmd!(sh, "git add -A").run().unwrap();
        cmd!(sh, "git commit -q --allow-empty -m {message}").run().unwrap();
        self.head()
    }

    /// The HEAD commit id.
    pub fn head(&self) -> String {
        let sh = self.shell();
        cmd!(sh, "git rev-parse HEAD").read().unwrap()
    }

    /// Build the work tree's bfcli into a build directory next to the repository.
    pub fn build_bfcli(&self) -> PathBuf {
        let build = self.path().with_extension("build");
        let sh = self.shell();
        let src = self.path();
        cmd!(sh, "cmake -S {src} -B {build} -DNO_DOCS=1 -DNO_TESTS=1").quiet().ignore_stdout().run().unwrap();
        cmd!(sh, "make -C {build} -j2 bfcli").quiet().ignore_stdout().run().unwrap();
        build.join("output/sbin/bfcli")
    }

    /// `git status --porcelain`, to check a tool left the tree untouched.
    pub fn status(&self) -> String {
        let sh = self.shell();
        cmd!(sh, "git status --porcelain --ignored").read().unwrap()
    }
}

impl Default for FixtureRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FixtureRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.path().with_extension("build"));
    }
}

/// The `xtask` binary, built once per test process (debug profile).
pub fn xtask_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = workspace_root();
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "xtask"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building xtask failed");
        target_dir().join("debug/xtask")
    })
}

/// `bench-compare` flags for tests: two cases, few rounds, a short budget
/// (a few seconds of measuring per run), and identical programs timed too:
/// most of these tests compare the same programs and check the timed rows.
pub const COMPARE_CHEAP: &[&str] = &[
    "--filter",
    "xdp__prologue,tc__prologue",
    "--min-rounds",
    "8",
    "--max-rounds",
    "16",
    "--time-budget",
    "5",
    "--measure-identical",
];

/// `optimize` flags for tests: two cases, quick rounds, a short budget, and
/// minifilter's validation (build, test binary, ctest).
pub const OPTIMIZE_CHEAP: &[&str] = &[
    "--quick",
    "--filter",
    "xdp__prologue,tc__prologue",
    "--time-budget",
    "5",
    "--validate",
    "make -C {build} -j{jobs}",
    "--validate",
    "make -C {build} test_bin",
    "--validate",
    "test:make -C {build} test",
];

/// A run's exit code and both streams, for assertion messages.
pub fn show(run: &Run) -> String {
    format!("exit {}\nstdout:\n{}\nstderr:\n{}", run.code, run.stdout, run.stderr)
}

/// Output of one xtask run.
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// An xtask command with `args` and a private cache directory: no colour, no
/// `BPFILTER_SOURCES` or `ANTHROPIC_API_KEY` from the caller, no standard input.
pub fn xtask_command(args: &[&str], cache: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(xtask_bin());
    cmd.args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("NO_COLOR", "1")
        .env_remove("BPFILTER_SOURCES")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("ANTHROPIC_API_KEY")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Run xtask with `args` and a private cache directory.
pub fn xtask(args: &[&str], cache: &Path) -> Run {
    let out = xtask_command(args, cache).output().expect("xtask runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Names of loaded BPF programs whose name starts with `prefix` (from the
/// kernel's program list), to check nothing is left behind.
pub fn loaded_programs_named(prefix: &str) -> Vec<String> {
    libbpf_rs::query::ProgInfoIter::default()
        .map(|p| p.name.to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// The bfperf bpffs mounts of process `pid` (`bfperf-bpffs-<pid>-*`), from /proc/self/mountinfo.
pub fn mounts_of(pid: u32) -> Vec<PathBuf> {
    let needle = format!("/bfperf-bpffs-{pid}-");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mount_point| mount_point.contains(&needle))
        .map(PathBuf::from)
        .collect()
}

/// `xtask SUBCOMMAND ARGS --sources SOURCES --cache-dir CACHE`, output piped.
pub fn subcommand(sub: &str, sources: &Path, args: &[&str], cache: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(xtask_bin());
    cmd.arg(sub)
        .args(args)
        .arg("--sources")
        .arg(sources)
        .arg("--cache-dir")
        .arg(cache)
        .env("NO_COLOR", "1")
        .env_remove("BPFILTER_SOURCES")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Wait for a spawned xtask to end; whatever the outcome, it must have left
/// no bpffs mount behind.
pub fn finish_leaving_no_mount(child: std::process::Child) -> Run {
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(
        mounts_of(pid),
        Vec::<PathBuf>::new(),
        "bpffs left mounted:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Run [`subcommand`] to completion (see [`finish_leaving_no_mount`]).
pub fn run_leaving_no_mount(sub: &str, sources: &Path, args: &[&str], cache: &Path) -> Run {
    finish_leaving_no_mount(subcommand(sub, sources, args, cache).spawn().expect("xtask runs"))
}

/// `git ARGS` in `dir`, which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file of the work tree (not .git) with its bytes, to check a tool
/// left the user's checkout byte-for-byte unchanged.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), root, out);
            } else {
                out.insert(entry.path().strip_prefix(root).unwrap().to_owned(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Send SIGINT (Ctrl-C) to a spawned xtask and wait for it to end within `limit` (a hang guard,
/// not a speed check: past it the run is killed and the test fails), leaving no mount behind.
pub fn interrupt_and_finish(mut child: std::process::Child, limit: std::time::Duration) -> Run {
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).expect("the run is still there to interrupt");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("waitable").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("xtask still running {limit:?} after SIGINT:\n{}", show(&finish_leaving_no_mount(child)));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    finish_leaving_no_mount(child)
}

/// The members of process group `pgid` still alive (zombies count as gone).
pub fn live_process_group_members(pgid: i32) -> Vec<i32> {
    let mut live = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        // Fields 3 (state) and 5 (process group) of stat.
        if fields.get(2).and_then(|f| f.parse().ok()) == Some(pgid) && fields[0] != "Z" {
            live.push(pid);
        }
    }
    live
}

/// Checks the minifilter fixture's isolation record (`MINIFILTER_RECORD_SCHED=FILE`, see its
/// README) of a run with `--cpu-pin 0 --no-preempt`: cmake and make ran under the normal policy
/// on every CPU this test may use, with the default memory policy; every bfcli ran under the
/// normal policy; and at least one bfcli was started by the measuring thread, which ran
/// SCHED_FIFO (the only such thread of its process) pinned to CPU 0 (bfcli inherits the pin).
/// `builds` says whether the run built the fixture (configure and build lines expected).
pub fn assert_measuring_thread_isolated(record: &Path, builds: bool) {
    let text = std::fs::read_to_string(record).unwrap_or_else(|e| panic!("{}: {e}", record.display()));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    for step in ["configure", "build"] {
        let expected = format!("{step} policy=0 cpus={ours} mem=default");
        if builds {
            assert!(lines.contains(&expected.as_str()), "no `{expected}` (normal policy, every CPU) in:\n{text}");
        }
        let of_step = lines.iter().filter(|l| l.starts_with(&format!("{step} ")));
        assert!(of_step.clone().all(|l| *l == expected), "{step} not under the normal policy:\n{text}");
    }
    let bfcli: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("bfcli ")).collect();
    assert!(bfcli.iter().all(|l| l.starts_with("bfcli policy=0 ")), "a bfcli ran SCHED_FIFO:\n{text}");
    let measuring: Vec<&&str> = bfcli.iter().filter(|l| !l.ends_with("parent_fifo_threads=0")).collect();
    assert!(!measuring.is_empty(), "no bfcli was started by a SCHED_FIFO thread:\n{text}");
    assert!(
        measuring.iter().all(|l| **l == "bfcli policy=0 cpus=0 mem=default parent_fifo_threads=1"),
        "the measuring thread was not the one SCHED_FIFO thread, pinned to CPU 0:\n{text}"
    );
}

/// Run `cmd` (output piped) to its end, killing it and failing the test if it takes longer
/// than `limit`: a hang guard, not a speed check.
pub fn run_with_hang_guard(mut cmd: std::process::Command, limit: std::time::Duration) -> Run {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the command runs");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}:\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Run { code: status.code().unwrap_or(-1), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}
