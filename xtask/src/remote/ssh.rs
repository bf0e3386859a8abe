//! The system OpenSSH client, one multiplexed connection per run: a control
//! master that bfperf starts and stops itself, so every later command costs
//! a channel, not a handshake, and nothing stays behind when bfperf exits.

use super::HostSpec;
use crate::flags::RemoteFlags;
use anyhow::{bail, Context as _, Result};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// `/tmp/bfperf-ssh-<pid>-XXXX`: the control socket's directory of process `<pid>`.
pub const SOCKET_DIR_PREFIX: &str = "bfperf-ssh-";

/// Remove the socket directories of bfperf processes that are gone (killed
/// before their destructors ran; their ssh children died with them).
fn sweep_stale_sockets() {
    let Ok(entries) = std::fs::read_dir("/tmp") else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(SOCKET_DIR_PREFIX).and_then(|r| r.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Run ssh children in their own process group (the terminal's Ctrl-C
/// reaches bfperf only, which then stops the host's side in order) and let
/// them die with bfperf even when it is killed outright.
fn detach_but_die_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// An open connection to a host.
#[derive(Debug)]
pub struct Connection {
    host: HostSpec,
    /// Holds the control socket; removed on drop.
    dir: tempfile::TempDir,
    master: Child,
}

/// Quote `s` for the remote shell.
pub fn quote(s: &str) -> String {
    shlex::try_quote(s).map(|q| q.into_owned()).unwrap_or_else(|_| "''".into())
}

impl Connection {
    /// Connect (authenticate once) to `host` with `--ssh-key` and
    /// `--ssh-option` of `flags`, or explain, in one line, why not.
    pub fn open(host: &HostSpec, flags: &RemoteFlags) -> Result<Self> {
        if let Some(key) = &flags.ssh_key {
            std::fs::File::open(key).with_context(|| {
                format!(
                    "--ssh-key {}: cannot read the key (give the private key file, e.g. ~/.ssh/id_ed25519)",
                    key.display()
                )
            })?;
        }
        for o in &flags.ssh_option {
            if !o.contains('=') || o.starts_with('-') {
                bail!("--ssh-option {o:?}: give it as NAME=VALUE, e.g. --ssh-option UserKnownHostsFile=~/.ssh/bench_hosts");
            }
        }
        sweep_stale_sockets();
        // The socket path must stay under the 108 bytes of sun_path, hence /tmp.
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SOCKET_DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in("/tmp")
            .context("cannot create a temporary directory")?;
        let socket = dir.path().join("s");
        let errors = dir.path().join("err");
        let mut cmd = base_command(host, flags, &socket);
        cmd.args(["-M", "-N", "-o", "ControlPersist=no"])
            .arg(host.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors)?);
        let master = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("the OpenSSH client is not installed: apt-get install openssh-client")
            } else {
                anyhow::anyhow!("cannot run ssh: {e}")
            }
        })?;
        let mut conn = Connection { host: host.clone(), dir, master };
        let start = Instant::now();
        loop {
            if let Some(status) = conn.master.try_wait()? {
                let text = std::fs::read_to_string(&errors).unwrap_or_default();
                return Err(explain(host, flags, status.code(), &text));
            }
            if conn.control(&["-O", "check"]).is_ok_and(|o| o.status.success()) {
                return Ok(conn);
            }
            if start.elapsed() > CONNECT_TIMEOUT {
                bail!(
                    "cannot reach {host}: no answer after {} s: is the host up and sshd running?",
                    CONNECT_TIMEOUT.as_secs()
                );
            }
            if bench_harness::interrupt::requested() {
                bail!("interrupted while connecting to {host}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host.
    pub fn host(&self) -> &HostSpec {
        &self.host
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    fn control(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new("ssh")
            .arg("-S")
            .arg(self.socket())
            .args(NEVER_CONNECT)
            .args(args)
            .arg(self.host.destination())
            .stdin(Stdio::null())
            .output()
    }

    /// A command running `script` on the host over the shared connection.
    /// It runs in its own process group: the terminal's Ctrl-C reaches
    /// bfperf only, which then ends the remote side in order.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-S").arg(self.socket()).args(NEVER_CONNECT).args(["-o", "BatchMode=yes"]);
        cmd.arg(self.host.destination()).arg("--").arg(script);
        detach_but_die_with_parent(&mut cmd);
        cmd
    }

    /// Run `script` and return its output, failing with its stderr when it fails.
    pub fn run(&self, script: &str) -> Result<String> {
        let out = self.command(script).stdin(Stdio::null()).output().context("cannot run ssh")?;
        if !out.status.success() {
            bail!("on {}: `{script}` failed: {}", self.host, last_line(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run `script` with `input` on its stdin.
    pub fn run_with_input(
        &self,
        script: &str,
        input: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<()> {
        let mut child =
            self.command(script).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        // Drained while writing: a chatty remote (one tar warning per file) must not block us.
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let mut stdin = child.stdin.take().expect("piped");
        let wrote = input(&mut stdin);
        drop(stdin);
        let status = child.wait()?;
        let err = errors.join().unwrap_or_default();
        if !status.success() {
            bail!("on {}: `{script}` failed: {}", self.host, last_line(&err));
        }
        wrote
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.control(&["-O", "exit"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

fn base_command(host: &HostSpec, flags: &RemoteFlags, socket: &Path) -> Command {
    let mut cmd = Command::new("ssh");
    // Never prompt (a prompt would hang a benchmark), give up on a dead link.
    cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]);
    cmd.args(["-o", "ServerAliveCountMax=4"]);
    cmd.arg("-S").arg(socket);
    if let Some(p) = host.port {
        cmd.args(["-p", &p.to_string()]);
    }
    if let Some(key) = &flags.ssh_key {
        cmd.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
    }
    for o in &flags.ssh_option {
        cmd.args(["-o", o]);
    }
    detach_but_die_with_parent(&mut cmd);
    cmd
}

/// Options of every command after the master's: use its socket, and never
/// connect on one's own. Without them a lost master would make ssh open a
/// fresh connection without the port, key and known-hosts options given.
const NEVER_CONNECT: &[&str] = &["-o", "ControlMaster=no", "-o", "ProxyCommand=false"];

/// The last non-empty line of a command's stderr: where ssh and shells say why.
fn last_line(stderr: &str) -> &str {
    stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message")
}

/// One line saying why ssh could not connect and what to do.
fn explain(host: &HostSpec, flags: &RemoteFlags, code: Option<i32>, stderr: &str) -> anyhow::Error {
    let last = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Warning:"))
        .unwrap_or("no message")
        .trim_end_matches('.')
        .to_owned();
    let port = host.port.map(|p| format!(" -p {p}")).unwrap_or_default();
    let has = |s: &str| stderr.contains(s);
    if has("Permission denied") {
        let key = match &flags.ssh_key {
            Some(k) => format!("the key {}", k.display()),
            None => "every key ssh offered".to_owned(),
        };
        anyhow::anyhow!(
            "{host} refused {key} ({last}): add its public key to ~/.ssh/authorized_keys of {} there, or pass --ssh-key PATH",
            host.user.as_deref().unwrap_or("the user")
        )
    } else if has("Host key verification failed") || has("No ED25519 host key") || has("host key is known") {
        anyhow::anyhow!(
            "the host key of {host} is not known to ssh: check and accept it once with `ssh{port} {} true`, or pass --ssh-option UserKnownHostsFile=FILE",
            host.destination()
        )
    } else if has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        anyhow::anyhow!("the host key of {host} has CHANGED since it was accepted ({last}): check with the host's owner before trusting it")
    } else if has("Could not resolve hostname") {
        anyhow::anyhow!(
            "cannot reach {host}: the name does not resolve ({last}): check the spelling or your ~/.ssh/config"
        )
    } else if has("Connection refused")
        || has("timed out")
        || has("No route to host")
        || has("Network is unreachable")
        || has("Connection closed")
    {
        anyhow::anyhow!(
            "cannot reach {host}: {last}: is the host up, and sshd listening on port {}?",
            host.port.unwrap_or(22)
        )
    } else {
        anyhow::anyhow!(
            "ssh to {host} failed (exit {}): {last}",
            code.map(|c| c.to_string()).unwrap_or("by signal".into())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_arguments_are_quoted() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("plain/path"), "plain/path");
        assert_eq!(quote("x'; rm -rf /"), r#""x'; rm -rf /""#);
    }

    #[test]
    fn connection_errors_say_what_to_do() {
        let h = HostSpec::parse("root@127.0.0.1:2222").unwrap();
        let o = RemoteFlags {
            host: vec![h.to_string()],
            ssh_key: Some("/k".into()),
            ssh_option: vec![],
            remote_dir: crate::remote::DEFAULT_REMOTE_DIR.into(),
        };
        let e = explain(&h, &o, Some(255), "root@127.0.0.1: Permission denied (publickey).\n").to_string();
        assert!(e.contains("refused the key /k") && e.contains("authorized_keys"), "{e}");
        let e = explain(&h, &o, Some(255), "Host key verification failed.\n").to_string();
        assert!(e.contains("not known") && e.contains("ssh -p 2222 root@127.0.0.1 true"), "{e}");
        let e =
            explain(&h, &o, Some(255), "ssh: connect to host 127.0.0.1 port 2222: Connection refused\n").to_string();
        assert!(e.starts_with("cannot reach root@127.0.0.1:2222") && e.contains("port 2222?"), "{e}");
    }
}
