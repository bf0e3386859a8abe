//! `--host` end to end: a real sshd on 127.0.0.1 (the `sshd` fixture, keys
//! generated per test) stands for the benchmark host. bench, bench-compare,
//! bench-history and optimize upload minifilter and the harness over the
//! system OpenSSH client, build and measure "there" and bring the results
//! back; the local cache keeps them per host. An unreachable host, a refused
//! key, an unknown host key and a host without bpf() each fail in one line
//! and leave nothing on either side; so does Ctrl-C in the middle of a run.

use bfperf_tests::sshd::{unused_port, SshdOptions, TestSshd};
use bfperf_tests::{require_bpf, show, FixtureRepo, Run, COMPARE_CHEAP, OPTIMIZE_CHEAP};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway sshd and where bfperf may keep its files "on the host".
struct Host {
    sshd: TestSshd,
    remote: tempfile::TempDir,
}

impl Host {
    fn start(opts: SshdOptions) -> Option<Host> {
        let sshd = TestSshd::start(opts)?;
        Some(Host { sshd, remote: tempfile::Builder::new().prefix("bfperf-remote-").tempdir().unwrap() })
    }

    /// The bfperf directory on the host (created by bfperf).
    fn dir(&self) -> PathBuf {
        self.remote.path().join("bfperf")
    }

    /// `--host ... --ssh-key ... --ssh-option ... --remote-dir ...`.
    fn args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.sshd.host(),
            "--ssh-key".into(),
            self.sshd.key().display().to_string(),
            "--ssh-option".into(),
            self.sshd.ssh_option(),
            "--remote-dir".into(),
            self.dir().display().to_string(),
        ]
    }

    /// Local cache directory of this host.
    fn cache_of(&self, cache: &Path) -> PathBuf {
        cache.join("hosts").join(format!("root@127.0.0.1_{}", self.sshd.port()))
    }
}

fn command(sub: &str, sources: &Path, args: &[&str], host: &[String], cache: &Path) -> Command {
    let mut cmd = bfperf_tests::subcommand(sub, sources, args, cache);
    cmd.args(host);
    cmd
}

/// Run to the end; whatever the outcome, no bpffs mount, ssh process or
/// control socket of that run may be left.
fn run(sub: &str, sources: &Path, args: &[&str], host: &[String], cache: &Path) -> Run {
    let child = command(sub, sources, args, host, cache).spawn().expect("xtask runs");
    let pid = child.id();
    let out = bfperf_tests::finish_leaving_no_mount(child);
    assert_no_ssh_left(pid);
    out
}

/// The failure's one `error: ` line, checked to be the only line of its kind.
fn error_line(run: &Run) -> String {
    assert_eq!(run.code, 1, "expected a failure:\n{}", show(run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(run));
    errors[0].to_owned()
}

/// `/tmp/bfperf-ssh-<pid>-`: where bfperf process `pid` keeps its control socket.
fn socket_prefix(pid: u32) -> String {
    format!("/tmp/bfperf-ssh-{pid}-")
}

/// ssh processes (the control master, sessions) of bfperf process `pid`: every
/// one names its control socket.
fn ssh_clients_of(pid: u32) -> Vec<String> {
    let prefix = socket_prefix(pid);
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a == "ssh") && args.iter().any(|a| a.starts_with(&prefix)) {
            found.push(args.join(" "));
        }
    }
    found
}

/// Neither an ssh process nor a control socket directory of bfperf process `pid` is left.
fn assert_no_ssh_left(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ssh_clients_of(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ssh_clients_of(pid), Vec::<String>::new(), "ssh processes left behind");
    let prefix = socket_prefix(pid);
    let dirs: Vec<PathBuf> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.display().to_string().starts_with(&prefix))
        .collect();
    assert!(dirs.is_empty(), "control socket directories left: {dirs:?}");
}

/// Regular files named `name` under `dir`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let out = Command::new("find").arg(dir).args(["-name", name, "-type", "f"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(PathBuf::from).collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON")
}

#[test]
fn bench_compare_and_history_build_and_measure_on_the_host() {
    require_bpf!();
    let Some(host) = Host::start(SshdOptions::default()) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    repo.commit("cgen: pad every prologue (slower)");

    // bench-compare: minifilter goes to the host, is built there, measured there.
    let json = cache.path().join("cmp.json");
    let mut args = COMPARE_CHEAP.to_vec();
    args.extend(["--json-output", json.to_str().unwrap()]);
    let out =
        run("bench-compare", repo.path(), &[&["HEAD~1", "HEAD"], args.as_slice()].concat(), &host.args(), cache.path());
    assert_eq!(out.code, 0, "{}", show(&out));
    assert!(out.stderr.contains(&format!("host: {} (kernel ", host.sshd.host())), "{}", show(&out));
    let v = read_json(&json);
    for case in v["cases"].as_array().unwrap() {
        assert_eq!(case["change"], "slower", "{case}");
        let bfcli = case["base_metrics"]["xlated_insns"].as_u64().unwrap();
        assert!(case["ref_metrics"]["xlated_insns"].as_u64().unwrap() > bfcli, "{case}");
    }
    // The bfclis measured are the host's builds, under the remote directory.
    let base_bfcli = v["base"]["source"]["bfcli"].as_str().unwrap();
    assert!(base_bfcli.starts_with(host.dir().to_str().unwrap()), "{base_bfcli}");
    assert!(Path::new(base_bfcli).is_file(), "the host's build is kept for the next run");
    assert!(host.dir().join("bin").read_dir().unwrap().count() == 1, "one harness binary on the host");
    // Locally: the worktrees, under the cache of this host only.
    let local = host.cache_of(cache.path());
    assert!(local.join("worktrees").is_dir(), "{}", local.display());
    assert!(!cache.path().join("worktrees").exists(), "nothing in the cache of this machine");
    assert_eq!(files_named(&local, "bfcli"), Vec::<PathBuf>::new(), "no bfcli built here");

    // bench: one tree, on the host.
    let results = cache.path().join("bench.json");
    let out = run(
        "bench",
        repo.path(),
        &["--filter", "xdp__prologue", "--samples", "5", "--json-output", results.to_str().unwrap()],
        &host.args(),
        cache.path(),
    );
    assert_eq!(out.code, 0, "{}", show(&out));
    let r = read_json(&results);
    assert_eq!(r["schema"], "bfperf.results.v1");
    assert_eq!(r["cases"][0]["status"]["state"], "ok", "{r}");
    assert!(r["source"]["bfcli"].as_str().unwrap().starts_with(host.dir().to_str().unwrap()), "{r}");

    // bench-history: measured once, then served from this host's cache.
    let hist_args =
        ["--since", "HEAD~1", "--until", "HEAD", "--quick", "--filter", "xdp__prologue", "--time-budget", "5"];
    let first = run("bench-history", repo.path(), &hist_args, &host.args(), cache.path());
    assert_eq!(first.code, 0, "{}", show(&first));
    assert!(first.stdout.contains("measured"), "{}", show(&first));
    assert!(first.stdout.contains("slower"), "{}", show(&first));
    let again = run("bench-history", repo.path(), &hist_args, &host.args(), cache.path());
    assert_eq!(again.code, 0, "{}", show(&again));
    let head = &repo.head()[..12];
    let line = again.stdout.lines().find(|l| l.starts_with(head)).unwrap_or_else(|| panic!("{}", show(&again)));
    assert!(line.contains("cached"), "{}", show(&again));
}

#[test]
fn optimize_validates_and_evaluates_on_the_host() {
    require_bpf!();
    let Some(host) = Host::start(SshdOptions::default()) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    repo.commit("cgen: a slow prologue to optimize");
    // An external agent: proposes a plan, then removes the padding (a real speed-up).
    let agent = r#"if grep -q 'Implement this plan' "$BFPERF_PROMPT_FILE"; then
        sed -i 's/MF_PROLOGUE_PADDING [0-9]*/MF_PROLOGUE_PADDING 16/' src/libbpfilter/cgen/knobs.h; echo done
    else printf 'TITLE: shorten the prologue padding\nWHY: fewer instructions on every packet\n'; fi"#;
    let args = [&["--iterations", "1", "--run-id", "remote", "--agent-command", agent], OPTIMIZE_CHEAP].concat();
    let out = run("optimize", repo.path(), &args, &host.args(), cache.path());
    assert_eq!(out.code, 0, "{}", show(&out));
    let local = host.cache_of(cache.path()).join("optimize/remote");
    let h = read_json(&local.join("history.json"));
    let attempt = &h["attempts"][0];
    assert_eq!(attempt["outcome"]["result"], "kept", "{h}");
    // Validation ran on the host; its logs came back.
    let logs: Vec<PathBuf> = std::fs::read_dir(local.join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
    let test_log = logs.iter().find(|p| p.to_str().unwrap().contains("attempt1-try0-2")).expect("ctest log");
    let text = std::fs::read_to_string(test_log).unwrap();
    assert!(text.contains(host.dir().to_str().unwrap()), "commands ran in the host's tree: {text}");
    assert!(text.contains("tests passed"), "{text}");
    let built = files_named(&host.dir(), "bfcli");
    assert!(built.iter().any(|p| p.ends_with("optimize/remote/build/output/sbin/bfcli")), "{built:?}");
}

#[test]
fn bad_hosts_fail_in_one_line_and_leave_nothing_on_either_side() {
    require_bpf!();
    let Some(host) = Host::start(SshdOptions::default()) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    let with = |args: Vec<String>| run("bench", repo.path(), &["--filter", "xdp__prologue"], &args, cache.path());
    let nothing_left = || {
        assert!(!cache.path().join("hosts").exists(), "no per-host cache for a host never reached");
        assert!(!host.dir().exists(), "nothing on the host");
    };

    // Nothing listens there.
    let port = unused_port();
    let mut args = host.args();
    args[1] = format!("root@127.0.0.1:{port}");
    let e = error_line(&with(args));
    assert!(e.contains(&format!("cannot reach root@127.0.0.1:{port}")) && e.contains("Connection refused"), "{e}");
    nothing_left();

    // A key the host does not know.
    let mut args = host.args();
    args[3] = host.sshd.other_key().display().to_string();
    let e = error_line(&with(args));
    assert!(e.contains("refused the key") && e.contains("authorized_keys"), "{e}");
    nothing_left();

    // A host key ssh does not know (no known_hosts given): never accepted blindly.
    let mut args = host.args();
    args.drain(4..6);
    let e = error_line(&with(args));
    assert!(e.contains("host key") && e.contains("not known"), "{e}");
    nothing_left();

    // Bad flags, before any connection: an ssh option smuggled in as a host,
    // a missing key, a remote directory that is not bfperf's own.
    let mut args = host.args();
    args[0] = "--host=-oProxyCommand=false".into();
    args.remove(1);
    let e = error_line(&with(args));
    assert!(e.contains("\"-oProxyCommand=false\" is not a host"), "{e}");
    let mut args = host.args();
    args[3] = "/nonexistent/key".into();
    assert!(error_line(&with(args)).contains("--ssh-key /nonexistent/key: cannot read the key"));
    for dir in ["", ".", "..", "~", "/", "a/../.."] {
        let mut args = host.args();
        args[7] = dir.into();
        let e = error_line(&with(args));
        assert!(e.contains("--remote-dir") && e.contains("bfperf's own"), "{dir:?}: {e}");
    }
    nothing_left();
}

#[test]
fn a_host_without_bpf_is_refused_and_left_as_it_was() {
    require_bpf!();
    let Some(host) = Host::start(SshdOptions { without_bpf: true }) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    let refused = |out: &Run| {
        let e = error_line(out);
        assert!(e.contains(&format!("{} cannot run benchmarks", host.sshd.host())), "{e}");
        assert!(e.contains("refused bpf()") && e.contains("CAP_BPF"), "says what to do: {e}");
    };
    refused(&run("bench", repo.path(), &["--filter", "xdp__prologue"], &host.args(), cache.path()));
    assert!(!host.dir().exists(), "the directory bfperf created on the host is gone");
    assert!(!cache.path().join("hosts").exists());

    // The same with a directory relative to the login's home (the default's form).
    let home = PathBuf::from(String::from_utf8(host.sshd.ssh("printf %s \"$HOME\"").stdout).unwrap());
    let relative = format!("bfperf-test-{}", std::process::id());
    let mut args = host.args();
    args[7] = relative.clone();
    refused(&run("bench", repo.path(), &["--filter", "xdp__prologue"], &args, cache.path()));
    assert!(home.is_dir() && !home.join(&relative).exists(), "{} is gone", home.join(&relative).display());

    // A directory that was there before stays, with what it held; only the upload goes.
    std::fs::create_dir_all(host.dir().join("builds")).unwrap();
    std::fs::write(host.dir().join("builds/keep"), "mine").unwrap();
    refused(&run("bench", repo.path(), &["--filter", "xdp__prologue"], &host.args(), cache.path()));
    assert_eq!(std::fs::read_to_string(host.dir().join("builds/keep")).unwrap(), "mine");
    assert!(!host.dir().join("bin").exists(), "the uploaded harness and its directory are removed");
}

/// The name bfperf gives its harness on the host (`remote::Remote::connect`): a planted file of
/// that name is what root would run there.
fn harness_name() -> String {
    let meta = bfperf_tests::xtask_bin().metadata().unwrap();
    let mtime = meta.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("bfperf-{:x}-{:x}", meta.len(), mtime)
}

#[test]
fn a_remote_dir_another_user_made_or_may_write_to_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(host) = Host::start(SshdOptions::default()) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    let dir = host.dir();
    let marker = host.remote.path().join("the planted harness ran");
    let listing = |d: &Path| {
        let out = Command::new("find").arg(d).args(["-printf", "%p %U %m\n"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let prefix = format!("error: --remote-dir {} on {}: ", dir.display(), host.sshd.host());
    for (uid, mode, problem) in [
        (65534, 0o755, format!("{} is owned by uid 65534, not by this login (uid 0): another user may have made it; remove it", dir.display())),
        (0, 0o777, format!("{} (drwxrwxrwx) is writable by other users: another user could replace what bfperf runs there; chmod go-w", dir.display())),
    ] {
        // Another user's directory, with a "harness" of the very name this bfperf would run.
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let planted = dir.join("bin").join(harness_name());
        std::fs::write(&planted, format!("#!/bin/sh\ntouch '{}'\n", marker.display())).unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("keep"), "theirs").unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let before = listing(&dir);
        let e = error_line(&run("bench", repo.path(), &["--filter", "xdp__prologue"], &host.args(), cache.path()));
        assert!(e.starts_with(&prefix) && e.contains(&problem), "{e}");
        assert!(!marker.exists(), "nothing ran there");
        assert_eq!(listing(&dir), before, "nothing was removed, added or changed there");
        assert!(!cache.path().join("hosts").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A parent others may write to (not sticky): refused before bfperf creates anything in it.
    std::fs::set_permissions(host.remote.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = error_line(&run("bench", repo.path(), &["--filter", "xdp__prologue"], &host.args(), cache.path()));
    let problem = format!("{} (drwxrwxrwx) is writable by other users", host.remote.path().display());
    assert!(e.starts_with(&prefix) && e.contains(&problem), "{e}");
    assert!(!dir.exists(), "nothing created on the host");
}

#[test]
fn ctrl_c_stops_the_host_side_and_cleans_up_both_ends() {
    require_bpf!();
    let Some(host) = Host::start(SshdOptions::default()) else { return };
    let cache = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::new();
    repo.set_padding(40);
    repo.commit("cgen: more padding");
    let args = ["HEAD~1", "HEAD", "--filter", "prologue", "--min-rounds", "60", "--max-rounds", "80"];
    let mut child = command("bench-compare", repo.path(), &args, &host.args(), cache.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("xtask runs");
    // Wait until the harness measures on the host (its process runs the uploaded binary).
    let harness = host.dir().join("bin");
    let deadline = Instant::now() + Duration::from_secs(240);
    let measuring = loop {
        let pids = processes_running_under(&harness);
        if let Some(pid) = pids.first().filter(|p| !bfperf_tests::mounts_of(**p).is_empty()) {
            break *pid;
        }
        assert!(Instant::now() < deadline, "the host never started measuring");
        assert!(child.try_wait().unwrap().is_none(), "xtask ended early");
        std::thread::sleep(Duration::from_millis(100));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let pid = child.id();
    let out = bfperf_tests::finish_leaving_no_mount(child);
    assert_eq!(out.code, 130, "{}", show(&out));
    assert_no_ssh_left(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_running_under(&harness).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(processes_running_under(&harness).is_empty(), "the host's harness ended");
    assert_eq!(bfperf_tests::mounts_of(measuring), Vec::<PathBuf>::new(), "the host's bpffs is unmounted");
}

/// Processes whose executable lives under `dir`.
fn processes_running_under(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|exe| exe.starts_with(dir)))
        .collect()
}
