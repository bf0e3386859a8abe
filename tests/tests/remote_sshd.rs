//! The test sshd the `--host` tests run against (`bfperf_tests::sshd`): a real OpenSSH server on
//! 127.0.0.1 that accepts its one key, refuses any other, can run sessions without bpf(), and
//! leaves nothing running once dropped.

use bfperf_tests::sshd::{processes_using, SshdOptions, TestSshd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// A bpf() call: create a one-entry array map. Prints `bpf: ok` or `bpf: <errno text>`.
const BPF_PROBE: &str = r#"
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
    printf("bpf: %s\n", fd < 0 ? strerror(errno) : "ok");
    return fd < 0;
}
"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ssh` to the fixture as root with `key`, strict host key checking, no agent, no prompt.
fn ssh_with_key(sshd: &TestSshd, key: &Path, command: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.arg("-p")
        .arg(sshd.port().to_string())
        .arg("-i")
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(sshd.ssh_option())
        .arg("root@127.0.0.1")
        .arg(command)
        .stdin(Stdio::null());
    cmd
}

/// The capability bounding set (`CapBnd`) of a process's `/proc/<pid>/status`.
fn cap_bnd(status: &str) -> u64 {
    let line =
        status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap_or_else(|| panic!("no CapBnd in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// The local addresses (hex, as the kernel prints them) of the TCP sockets listening on `port`,
/// IPv4 and IPv6.
fn listening_addresses(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
            let (addr, p) = local.split_once(':').unwrap();
            if *state == "0A" && u16::from_str_radix(p, 16).unwrap() == port {
                found.push(addr.to_owned());
            }
        }
    }
    found
}

/// Pids of the fixture's processes running `comm`.
fn fixture_processes_named(config: &Path, comm: &str) -> Vec<u32> {
    processes_using(config)
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next().unwrap_or("");
        state != "Z" && state != "X"
    })
}

/// Compile [`BPF_PROBE`] into `dir`, or `None` without a C compiler.
fn bpf_probe(dir: &Path) -> Option<std::path::PathBuf> {
    let source = dir.join("bpf_probe.c");
    let binary = dir.join("bpf_probe");
    std::fs::write(&source, BPF_PROBE).unwrap();
    let out = Command::new("cc").arg("-o").arg(&binary).arg(&source).output().ok()?;
    assert!(out.status.success(), "cc bpf_probe.c: {}", text(&out.stderr));
    Some(binary)
}

fn assert_ran(out: &Output, sshd: &TestSshd) {
    assert!(
        out.status.success(),
        "ssh failed ({}):\nstdout:\n{}\nstderr:\n{}\nsshd log:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr),
        sshd.log()
    );
}

#[test]
fn fixture_sshd_accepts_only_its_key_on_loopback() {
    let Some(sshd) = TestSshd::start(SshdOptions::default()) else { return };
    assert_eq!(sshd.host(), format!("root@127.0.0.1:{}", sshd.port()));

    // Its key logs in, with strict host key checking against the fixture's known_hosts.
    let out = sshd.ssh("echo ok");
    assert_ran(&out, &sshd);
    assert_eq!(text(&out.stdout), "ok\n");
    // Sessions carry the marker the fixture finds its processes by.
    let out = sshd.ssh("echo \"$BFPERF_TEST_SSHD_CONFIG\"");
    assert_ran(&out, &sshd);
    assert_eq!(text(&out.stdout).trim_end(), sshd.config().to_str().unwrap());

    // Another key is refused.
    let out = ssh_with_key(&sshd, &sshd.other_key(), "echo ok").output().unwrap();
    assert!(!out.status.success(), "the other key logged in:\n{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("Permission denied"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(sshd.log().contains("Failed publickey for root"), "{}", sshd.log());

    // Bound on 127.0.0.1 only (0100007F: the kernel's hex for 127.0.0.1).
    assert_eq!(listening_addresses(sshd.port()), ["0100007F"], "{}", sshd.log());

    // A session keeps the test process's capabilities.
    let ours = cap_bnd(&std::fs::read_to_string("/proc/self/status").unwrap());
    let out = sshd.ssh("grep Cap /proc/self/status");
    assert_ran(&out, &sshd);
    assert_eq!(cap_bnd(&text(&out.stdout)), ours, "{}", text(&out.stdout));

    // A session still running when the fixture is dropped (sshd's SIGTERM spares sessions and
    // their commands) goes with it.
    let config = sshd.config();
    let mut client =
        ssh_with_key(&sshd, &sshd.key(), "sleep 600").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleeper = loop {
        if let Some(p) = fixture_processes_named(&config, "sleep").first() {
            break *p;
        }
        assert!(Instant::now() < deadline, "no remote sleep after 10 s:\n{}", sshd.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(processes_using(&config).len() >= 3, "listener, session, sleep: {:?}", processes_using(&config));
    drop(sshd);
    assert_eq!(processes_using(&config), Vec::<u32>::new(), "processes of the dropped sshd");
    assert!(!alive(sleeper), "the remote sleep survived");
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the ssh client did not notice the dropped server");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Without bpf: root sessions whose bounding set lacks CAP_BPF and CAP_SYS_ADMIN.
    let sshd = TestSshd::start(SshdOptions { without_bpf: true }).unwrap();
    let out = sshd.ssh("grep Cap /proc/self/status");
    assert_ran(&out, &sshd);
    let caps = cap_bnd(&text(&out.stdout));
    for (name, cap) in [
        ("CAP_BPF", CAP_BPF),
        ("CAP_SYS_ADMIN", CAP_SYS_ADMIN),
        ("CAP_PERFMON", CAP_PERFMON),
        ("CAP_NET_ADMIN", CAP_NET_ADMIN),
    ] {
        assert!(!has(caps, cap), "{name} in the session's CapBnd {caps:x}");
    }
    assert_eq!(caps, ours & !(1 << CAP_BPF | 1 << CAP_SYS_ADMIN | 1 << CAP_PERFMON | 1 << CAP_NET_ADMIN));
    // And bpf() itself: allowed here, refused there, where only CAP_BPF or CAP_SYS_ADMIN would
    // lift kernel.unprivileged_bpf_disabled.
    let work = tempfile::tempdir().unwrap();
    let unprivileged_bpf =
        std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled").is_ok_and(|v| v.trim() == "0");
    match (bfperf_tests::bpf_unavailable(), bpf_probe(work.path())) {
        _ if unprivileged_bpf => bfperf_tests::skip(
            "the bpf() call without CAP_BPF: kernel.unprivileged_bpf_disabled is 0, so it would succeed \
             anyway (sysctl kernel.unprivileged_bpf_disabled=2)",
        ),
        (None, Some(probe)) => {
            let local = Command::new(&probe).output().unwrap();
            assert_eq!(text(&local.stdout), "bpf: ok\n");
            let out = sshd.ssh(&probe.display().to_string());
            assert_eq!(text(&out.stdout), "bpf: Operation not permitted\n", "{}", text(&out.stderr));
        }
        (Some(reason), _) => bfperf_tests::skip(&format!(
            "the bpf() call without CAP_BPF: the kernel refuses bpf() here too: {reason} (run the tests as root)"
        )),
        (None, None) => bfperf_tests::skip("the bpf() call without CAP_BPF: no C compiler (apt-get install gcc)"),
    }
    let config = sshd.config();
    drop(sshd);
    assert_eq!(processes_using(&config), Vec::<u32>::new(), "processes of the dropped sshd");
}
