//! The sandbox of optimize's validation commands (xtask/src/sandbox.rs), on
//! the real kernel: what a command sees and may do, driven through the
//! library with the real bfperf binary as the helper. The end-to-end check
//! through `xtask optimize` is in optimize.rs
//! (`validation_runs_in_the_sandbox`).

use bfperf_tests::{require_bpf, xtask_bin};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use xtask::sandbox::Policy;

fn policy() -> Policy {
    Policy { helper: Some(xtask_bin().to_owned()), ..Policy::default() }
}

/// `bash -c script` in `dir`, sandboxed with `dir` writable.
fn sandboxed(dir: &Path, script: &str) -> Output {
    let mut inner = Command::new("bash");
    inner.arg("-c").arg(script).current_dir(dir);
    let out = policy().output(&inner, &[dir], &[]).expect("the sandbox is set up");
    eprintln!(
        "--- {script}\nexit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_network_but_its_own_loopback() {
    require_bpf!(); // root, as bfperf runs
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "echo > /dev/tcp/127.0.0.1/{port} && echo HOST-REACHED || echo host-refused; \
         /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); \
         c = socket.create_connection(s.getsockname(), timeout=5); s.accept(); print(\"loopback-ok\")'; \
         ls /sys/class/net"
    );
    let out = sandboxed(dir.path(), &script);
    let text = stdout(&out);
    assert!(text.contains("host-refused") && !text.contains("HOST-REACHED"), "{text}");
    assert!(text.contains("loopback-ok"), "{text}");
    assert_eq!(text.lines().last(), Some("lo"), "only a loopback interface: {text}");
    match host.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host's listener was reached: {other:?}"),
    }
}

#[test]
fn writes_only_where_allowed() {
    require_bpf!();
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join(".git/hooks")).unwrap();
    std::fs::write(repo.path().join(".git/config"), "[core]\n").unwrap();
    // Outside /tmp, so a failure comes from the read-only mount, not from the private /tmp.
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut inner = Command::new("bash");
    let (git, h) = (repo.path().join(".git"), home.path());
    inner
        .arg("-c")
        .arg(format!(
            "touch in-dir && echo wrote-dir; touch /tmp/x && echo wrote-tmp; touch /run/x && echo wrote-run; \
             touch {git}/hooks/pre-commit; echo x >> {git}/config; touch {h}/x; touch /etc/bfperf-x; \
             test -d {git}/hooks && echo repo-visible",
            git = git.display(),
            h = h.display()
        ))
        .current_dir(dir.path());
    let out = policy().output(&inner, &[dir.path()], &[&git]).unwrap();
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr).into_owned());
    for line in ["wrote-dir", "wrote-tmp", "wrote-run", "repo-visible"] {
        assert!(text.contains(line), "{line}: {text}\n{err}");
    }
    assert!(dir.path().join("in-dir").is_file());
    assert_eq!(err.matches("Read-only file system").count(), 4, "hooks, config, home, /etc refused:\n{err}");
    assert!(!git.join("hooks/pre-commit").exists());
    assert_eq!(std::fs::read_to_string(git.join("config")).unwrap(), "[core]\n");
    assert!(!h.join("x").exists() && !Path::new("/etc/bfperf-x").exists());
}

#[test]
fn the_host_processes_are_invisible() {
    require_bpf!();
    // A process of the host with a secret in its environment (like bfperf's own).
    let mut witness = Command::new("sleep").arg("60").env("BFPERF_WITNESS", "w-9f3a").spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out =
        sandboxed(dir.path(), "cat /proc/[0-9]*/environ | tr '\\0' '\\n' | grep -c w-9f3a; ls -d /proc/[0-9]* | wc -l");
    witness.kill().unwrap();
    witness.wait().unwrap();
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "the witness's environment was read: {text}");
    let procs: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(procs <= 6, "only the sandbox's few processes: {text}");
}

#[test]
fn nothing_started_inside_outlives_the_command() {
    require_bpf!();
    let dir = tempfile::tempdir().unwrap();
    // The background sleep holds the output pipe: output() returns only once it is gone.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_owned();
    std::thread::spawn(move || tx.send(sandboxed(&path, "sleep 600 & echo started")).unwrap());
    let out = rx.recv_timeout(Duration::from_secs(60)).expect("the background process was killed with the sandbox");
    assert_eq!(stdout(&out), "started\n");
}

#[test]
fn bpf_works_with_a_private_bpffs() {
    require_bpf!();
    let dir = tempfile::tempdir().unwrap();
    // BPF_PROG_LOAD of `r0 = 0; exit` (a socket filter), then BPF_OBJ_PIN in /sys/fs/bpf.
    let py = r#"
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
insns = ctypes.create_string_buffer(bytes.fromhex("b700000000000000" "9500000000000000"))
lic = ctypes.create_string_buffer(b"GPL")
attr = struct.pack("<IIQQIIQI", 1, 2, ctypes.addressof(insns), ctypes.addressof(lic), 0, 0, 0, 0)
attr = ctypes.create_string_buffer(attr + bytes(128 - len(attr)), 128)
fd = libc.syscall(321, 5, attr, 128)
assert fd >= 0, "BPF_PROG_LOAD errno %d" % ctypes.get_errno()
path = ctypes.create_string_buffer(b"/sys/fs/bpf/bfperf-sandbox-test")
pin = ctypes.create_string_buffer(struct.pack("<QI", ctypes.addressof(path), fd) + bytes(116), 128)
assert libc.syscall(321, 6, pin, 128) == 0, "BPF_OBJ_PIN errno %d" % ctypes.get_errno()
print("loaded-and-pinned")
"#;
    let out = sandboxed(dir.path(), &format!("/usr/bin/python3 -c '{py}' && ls /sys/fs/bpf"));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("loaded-and-pinned\n") && text.lines().any(|l| l == "bfperf-sandbox-test"), "{text}");
    assert!(!Path::new("/sys/fs/bpf/bfperf-sandbox-test").exists(), "pinned in the sandbox's own bpffs");
}

/// Run `touch ran` through a helper that is `script` (given the real
/// helper's path): the sandbox must refuse with one error line, returned,
/// and the command must not have run unconfined.
fn refused_through(script: impl FnOnce(&Path) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("helper");
    std::fs::write(&wrapper, script(dir.path())).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut inner = Command::new("touch");
    inner.arg("ran").current_dir(work.path());
    let policy = Policy { helper: Some(wrapper), ..Policy::default() };
    let err = policy.output(&inner, &[work.path()], &[]).expect_err("refused");
    let msg = format!("{err:#}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(!work.path().join("ran").exists(), "the command must not run unconfined");
    msg
}

#[test]
fn a_refused_sandbox_is_one_clear_error_not_an_unconfined_run() {
    require_bpf!();
    // The helper without CAP_SYS_ADMIN: the kernel refuses the namespaces.
    let msg = refused_through(|_| {
        format!("#!/bin/sh\nexec setpriv --bounding-set -sys_admin {} \"$@\"\n", xtask_bin().display())
    });
    assert!(msg.contains("the kernel refused new namespaces") && msg.contains("--no-sandbox"), "{msg}");
}

#[test]
fn a_root_that_is_no_mount_point_is_one_error_that_says_what_to_do() {
    require_bpf!();
    // The helper in a plain chroot: its `/` is a directory, not a mount point
    // (what a debootstrap'd chroot gives), so the sandbox cannot make its
    // mounts private. Every top-level directory is bound in, links copied.
    let msg = refused_through(|dir| {
        format!(
            "#!/bin/sh\nexec unshare -m sh -c '\
             R={root}; mkdir -p $R; \
             for d in /*; do if [ -L $d ]; then cp -P $d $R$d; elif [ -d $d ]; then mkdir -p $R$d; \
             mount --rbind $d $R$d; fi; done; \
             exec chroot $R {xtask} \"$@\"' sh \"$@\"\n",
            root = dir.join("root").display(),
            xtask = xtask_bin().display()
        )
    });
    assert!(msg.contains("/ is not a mount point") && msg.contains("mount --bind"), "{msg}");
}
